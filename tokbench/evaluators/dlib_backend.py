"""dlib ResNet face descriptors (dlib-bin + face-recognition-models): the offline default face backend.

128-d descriptors of 150x150 chips aligned from the ground-truth landmarks (see ``alignment``); dlib's
standard rule: two descriptors are the same person when their L2 distance is below 0.6 (dlib's
face_recognition_model_v1 documentation; 99.38% on LFW). Cosine similarity is reported for parity with
TokBench's F-Sim, but dlib descriptors are not zero-centred, so cosine stays high even across people.

Two ways to run the same network on the chips dlib cuts: ``network="torch"`` (default) parses the released
``.dat`` and runs it in torch (``tokbench.models.dlib_resnet``; descriptors equal dlib's to float32 rounding,
~7-10x less CPU per face: dlib-bin has no BLAS), ``network="dlib"`` runs dlib's own forward pass, in-process or in
``workers`` processes. The report's backend version names the one that ran.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.evaluators.alignment import DLIB_CHIP_PADDING, DLIB_CHIP_SIZE, dlib_chip_points
from tokbench.evaluators.face import FaceEmbedder, SamePersonRule, register_face_backend
from tokbench.evaluators.versions import package_version

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_RULE = SamePersonRule(distance="l2", threshold=0.6, normalized=False,
                           source="dlib face_recognition_model_v1: same person when L2 < 0.6 (dlib docs)")


def face_recognition_models_dir() -> Path:
    """The models folder of face-recognition-models, found without importing it (its __init__ needs
    pkg_resources, gone from setuptools >= 81)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(f"face backend dlib: {RESNET_FILE} comes from the face-recognition-models "
                                  "package, which is not installed; pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


# A worker is a bare interpreter running this loop (no tokbench import: importing the package pulls in torch,
# ~0.8 GB per process): it reads pickled lists of chips on stdin and writes pickled (N, 128) descriptors.
_WORKER = """
import pickle, sys
import dlib, numpy as np
model = dlib.face_recognition_model_v1(sys.argv[1])
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    try:
        chips = pickle.load(inp)
    except EOFError:
        break
    d = np.array([np.asarray(v) for v in model.compute_face_descriptor(chips)], dtype=np.float64)
    pickle.dump(d, out)
    out.flush()
"""


NETWORKS = ("torch", "dlib")
DEFAULT_NETWORK = "torch"
TORCH_BATCH = 16  # chips per torch forward pass, as dlib batches them; bounds activation memory on crowded images


@functools.lru_cache(maxsize=2)
def torch_network(path: str):
    """The torch port of the network, built once per process and file (weights ~22 MB)."""
    from tokbench.models.dlib_resnet.network import load_face_resnet

    return load_face_resnet(path)


def _descriptors(model, chips: list[np.ndarray]) -> np.ndarray:
    return np.array([np.asarray(d) for d in model.compute_face_descriptor(chips)], dtype=np.float64)


def default_workers() -> int:
    """Processes for dlib's network: it holds the GIL and runs one thread, so one per core (at most 2, the
    machine's cores); one under torchrun, where each rank already has its core."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


@register_face_backend("dlib")
class DlibEmbedder(FaceEmbedder):
    """``network="torch"``: dlib's network in torch, in this process on torch's threads (``workers`` must
    stay 1). ``network="dlib"``: dlib's own forward pass; ``workers`` > 1 runs it in that many worker
    processes (bare interpreters with dlib), each image's chips split between them in order (the same
    descriptors as in-process: each chip's forward pass is independent)."""

    name = "dlib"
    dim = 128
    rule = DLIB_RULE

    def __init__(self, device: str = "cpu", workers: int | None = None, network: str | None = None):
        try:
            import dlib
        except ImportError as e:
            raise MissingWeightsError(f"face backend dlib: dlib is not importable ({e}); "
                                      "pip install dlib-bin (never the dlib sdist)") from None
        self._dlib = dlib
        self._model_path = face_recognition_models_dir() / RESNET_FILE
        if not self._model_path.is_file():
            raise MissingWeightsError(f"face backend dlib: missing {self._model_path}; "
                                      "reinstall face-recognition-models")
        self.network = network or DEFAULT_NETWORK
        if self.network not in NETWORKS:
            raise BadInputError(f"face backend dlib: network must be one of {', '.join(NETWORKS)}, "
                                f"got {self.network!r}")
        if self.network == "torch":
            if workers not in (None, 1):
                raise BadInputError("face backend dlib: workers applies to network='dlib'; network='torch' runs "
                                    f"in this process on torch's threads (got workers={workers})")
            self.workers = 1
            self._torch = torch_network(str(self._model_path))
        else:
            self.workers = int(workers or default_workers())
        self._pool = None
        self._model = (dlib.face_recognition_model_v1(str(self._model_path))
                       if self.network == "dlib" and self.workers == 1 else None)
        self._chip_points = dlib.dpoints([dlib.dpoint(float(x), float(y)) for x, y in dlib_chip_points()])

    @property
    def version(self) -> str:
        if self.network == "torch":
            import torch

            ran = f"network in torch {torch.__version__} (weights parsed from the .dat)"
        else:
            ran = "network in dlib"
        return (f"dlib {self._dlib.__version__} (dlib-bin {package_version('dlib-bin')}); "
                f"face-recognition-models {package_version('face-recognition-models')}; {RESNET_FILE}; {ran}")

    @property
    def model_files(self) -> list[str]:
        return [RESNET_FILE]

    def describe(self) -> dict:
        return {**super().describe(),
                "alignment": f"{DLIB_CHIP_SIZE}x{DLIB_CHIP_SIZE} chip, padding {DLIB_CHIP_PADDING}, similarity fit"
                             " of the 5 ground-truth landmarks onto dlib's mean face (dlib extract_image_chip)",
                "jitters": 0, "device": "cpu", "network": self.network}

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The aligned 150x150 chip dlib's network sees for these landmarks."""
        dlib = self._dlib
        img_points = dlib.dpoints([dlib.dpoint(float(x), float(y)) for x, y in landmarks])
        details = dlib.chip_details(self._chip_points, img_points, dlib.chip_dims(DLIB_CHIP_SIZE, DLIB_CHIP_SIZE))
        return dlib.extract_image_chip(image, details)

    def _embed(self, image: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        chips = [self.chip(image, kps) for kps in landmarks]
        if self.network == "torch":
            return np.concatenate([self._torch.descriptors(chips[i:i + TORCH_BATCH])
                                   for i in range(0, len(chips), TORCH_BATCH)])
        if self.workers == 1:
            return _descriptors(self._model, chips)  # one batched forward pass
        import pickle

        if self._pool is None:
            import subprocess
            import sys

            self._pool = [subprocess.Popen([sys.executable, "-c", _WORKER, str(self._model_path)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                          for _ in range(self.workers)]
        parts = [chips[i::self.workers] for i in range(self.workers)]
        busy = [(w, p) for w, p in zip(self._pool, parts) if p]
        for w, part in busy:  # all workers start before any result is read
            pickle.dump(part, w.stdin)
            w.stdin.flush()
        out = np.empty((len(chips), self.dim), dtype=np.float64)
        for i, (w, _) in enumerate(busy):
            try:
                out[i::self.workers] = pickle.load(w.stdout)
            except EOFError:
                raise RuntimeError(f"face backend dlib: worker process exited (code {w.wait()})") from None
        return out

    def close(self) -> None:
        for w in self._pool or []:
            w.stdin.close()
            w.wait()
        self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
