"""insightface antelopev2 recognition (glintr100.onnx, ArcFace R100 on Glint360K): the TokBench face scorer.

Reproduces ``insightface.model_zoo.ArcFaceONNX.get`` on ground-truth landmarks without installing
insightface (it would add opencv-python next to opencv-python-headless): ``norm_crop`` to 112x112, input
mean/std chosen the way ArcFaceONNX chooses them (0/1 for converted MXNet graphs that start with Sub/Mul
nodes, else 127.5/127.5), RGB channel order (insightface swaps its BGR input), onnxruntime inference,
batched over the faces of an image when the graph's batch axis is dynamic.

The model comes from an explicit path ($TOKBENCH_ANTELOPEV2 or the ``model_path`` option), the tokbench
weights folder, or an unpacked antelopev2 pack under ~/.insightface/models (the pack needs a manual
download; insightface issue #251). insightface publishes no calibrated threshold per model; the default
is the rule of its own recognition demo, recorded with its source, and can be changed with ``threshold``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from tokbench.errors import MissingWeightsError
from tokbench.evaluators.alignment import norm_crop
from tokbench.evaluators.face import FaceEmbedder, SamePersonRule, register_face_backend
from tokbench.evaluators.versions import file_sha256, package_version
from tokbench.weights import WeightFile, register_weights, resolve

GLINTR100 = register_weights(WeightFile(
    name="antelopev2-glintr100",
    filename="glintr100.onnx",
    description="insightface antelopev2 recognition model (ArcFace ResNet-100, Glint360K), the TokBench face"
                " scorer; unpack antelopev2.zip from the insightface model zoo",
    license="insightface model zoo: non-commercial research use",
))
DEFAULT_COSINE_THRESHOLD = 0.28
# deepinsight/insightface web-demos/src_recognition/main.py (ArcFaceONNX.compute_sim): < 0.2 "NOT the same
# person", 0.2-0.28 "LIKELY", >= 0.28 "ARE the same person". That demo runs buffalo_l's w600k_r50; the same
# ArcFace loss gives glintr100 a similar cosine scale, but no glintr100-specific calibration is published.
THRESHOLD_SOURCE = ("insightface's recognition demo rule, cosine >= 0.28 = same person (deepinsight/insightface "
                    "web-demos/src_recognition/main.py, written for buffalo_l w600k_r50; not calibrated for glintr100)")


def insightface_root() -> Path:
    return Path(os.environ.get("INSIGHTFACE_HOME") or Path.home() / ".insightface")


def locate_glintr100(explicit: Optional[str | Path] = None) -> Path:
    if explicit is not None:
        return resolve(GLINTR100, explicit=explicit, what="face backend insightface")
    try:
        return resolve(GLINTR100, download=False, what="face backend insightface")
    except MissingWeightsError as e:
        packs = insightface_root() / "models" / "antelopev2"
        removed = []
        for candidate in (packs / GLINTR100.filename, packs / "antelopev2" / GLINTR100.filename):
            if candidate.is_file() and candidate.stat().st_size == 0:  # an interrupted unpack or download
                candidate.unlink()
                removed.append(f"; removed partial download {candidate}")
            if candidate.is_file():
                return candidate
        raise MissingWeightsError(f"{e} (or unpack antelopev2 into {packs}){''.join(removed)}") from None


def arcface_input_norm(model_path: Path) -> tuple[float, float]:
    """ArcFaceONNX's rule: MXNet-converted graphs normalise inside (first nodes Sub/_minus and Mul/_mul)."""
    try:
        import onnx
    except ImportError:
        raise MissingWeightsError("face backend insightface needs the onnx package; pip install onnx") from None
    try:
        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception as e:  # protobuf decode errors and friends
        raise MissingWeightsError(f"face backend insightface: cannot read {model_path} as ONNX "
                                  f"({type(e).__name__})") from None
    names = [node.name for node in graph.node[:8]]
    has_sub = any(n.startswith("Sub") or n.startswith("_minus") for n in names)
    has_mul = any(n.startswith("Mul") or n.startswith("_mul") for n in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


@register_face_backend("insightface", "antelopev2")
class InsightFaceEmbedder(FaceEmbedder):
    name = "insightface"

    def __init__(self, device: str = "cpu", model_path: Optional[str | Path] = None,
                 threshold: float = DEFAULT_COSINE_THRESHOLD):
        import onnxruntime

        self._model_path = locate_glintr100(model_path or os.environ.get("TOKBENCH_ANTELOPEV2"))
        self.input_mean, self.input_std = arcface_input_norm(self._model_path)
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session = onnxruntime.InferenceSession(str(self._model_path), providers=providers)
        except Exception as e:
            raise MissingWeightsError(f"face backend insightface: cannot load {self._model_path} "
                                      f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
        inp = self._session.get_inputs()[0]
        outputs = self._session.get_outputs()
        if len(outputs) != 1 or len(inp.shape) != 4:
            raise MissingWeightsError(f"face backend insightface: {self._model_path} is not an ArcFace recogniser "
                                      f"(input {inp.shape}, {len(outputs)} outputs)")
        self._input_name = inp.name
        self._output_name = outputs[0].name
        side = [d if isinstance(d, int) else 112 for d in inp.shape[2:4]]
        self.input_size = (side[1], side[0])  # (W, H), as ArcFaceONNX
        self.dynamic_batch = not isinstance(inp.shape[0], int)
        self.dim = int(outputs[0].shape[-1])
        self.rule = SamePersonRule(distance="cosine", threshold=float(threshold), normalized=True,
                                   source=THRESHOLD_SOURCE if threshold == DEFAULT_COSINE_THRESHOLD else "user")

    @property
    def version(self) -> str:
        return f"onnxruntime {package_version('onnxruntime')}; {self._model_path.name} (antelopev2)"

    @property
    def model_files(self) -> list[str]:
        return [self._model_path.name]

    def describe(self) -> dict:
        return {**super().describe(), "weights_sha256": file_sha256(self._model_path),
                "alignment": "insightface norm_crop (ArcFace 112x112 template, skimage similarity, cv2.warpAffine,"
                             " black border) on the ground-truth landmarks",
                "input": f"RGB {self.input_size[0]}x{self.input_size[1]}, (x - {self.input_mean}) / {self.input_std}",
                "providers": self._session.get_providers()}

    def preprocess(self, image: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        """(N, 3, H, W) float32 network input, as cv2.dnn.blobFromImages in ArcFaceONNX.get_feat."""
        import cv2

        crops = []
        for kps in landmarks:
            crop = norm_crop(image, kps, 112)
            if (crop.shape[1], crop.shape[0]) != self.input_size:
                crop = cv2.resize(crop, self.input_size, interpolation=cv2.INTER_LINEAR)
            crops.append(crop)
        blob = (np.stack(crops).astype(np.float32) - self.input_mean) / self.input_std
        return np.ascontiguousarray(blob.transpose(0, 3, 1, 2))

    def _embed(self, image: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        blob = self.preprocess(image, landmarks)
        if self.dynamic_batch:
            return self._session.run([self._output_name], {self._input_name: blob})[0]
        return np.concatenate([self._session.run([self._output_name], {self._input_name: blob[i:i + 1]})[0]
                               for i in range(len(blob))])
