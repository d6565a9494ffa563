"""docTR PARSeq, the TokBench text evaluator: french vocabulary, 32x128 input, keep-ratio resize.

Preprocessing follows TokBench's eval_text.py: crop -> float [0, 1] -> docTR ``Resize((32, 128),
preserve_aspect_ratio=True)`` (bilinear with antialias, zero padding right/bottom) -> ``Normalize`` with the
model's mean/std -> batches of 64. TokBench also passes the ground-truth words to the model, which caps
decoding at the longest word of each 64-crop batch (and skips whole batches holding a character outside
the vocabulary). ``recognize`` decodes freely, so a prediction never depends on other crops (clean rules);
``recognize(crops, max_lengths)`` decodes each crop with its official batch's cap (official rules, the
caps from ``tokbench.evaluators.ocr_batches``), exactly as docTR's forward does when given targets.

Weights: an explicit path, else ``parseq-56125471.pt`` in the tokbench weights folder or torch hub cache,
else docTR's own cache ($DOCTR_CACHE_DIR or ~/.cache/doctr/models), else docTR's download when the network
is allowed; otherwise one line saying where to put the file. python-doctr is optional (``pip install
--no-deps python-doctr`` plus its light dependencies: it declares opencv-python, which would clash with
opencv-python-headless).
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from tokbench.errors import MissingWeightsError
from tokbench.evaluators.ocr import OCREngine, register_ocr_engine
from tokbench.evaluators.versions import file_sha256, package_version
from tokbench.weights import WeightFile, register_weights, resolve

PARSEQ_URL = "https://doctr-static.mindee.com/models?id=v0.7.0/parseq-56125471.pt&src=0"
PARSEQ_SHA256_PREFIX = "56125471"  # docTR puts the sha256 prefix in the file name and checks it
INPUT_SHAPE = (3, 32, 128)
# checkpoints saved before docTR 0.11.1 carry these decoder norms, which later versions dropped
# (mindee/doctr#1911); docTR's own from_pretrained ignores them the same way
LEGACY_KEYS = ("decoder.attention_norm.weight", "decoder.attention_norm.bias",
               "decoder.cross_attention_norm.weight", "decoder.cross_attention_norm.bias")

PARSEQ_WEIGHTS = register_weights(WeightFile(
    name="doctr-parseq",
    filename="parseq-56125471.pt",
    url=PARSEQ_URL,
    description="docTR PARSeq text recogniser (french vocab, 32x128), the TokBench OCR evaluator",
    license="Apache-2.0 (docTR)",
))


def doctr_cache_file() -> Path:
    root = os.environ.get("DOCTR_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "doctr")
    return Path(root) / "models" / PARSEQ_WEIGHTS.filename


def _online() -> bool:
    return not (os.environ.get("TOKBENCH_OFFLINE") or os.environ.get("HF_HUB_OFFLINE"))


def locate_parseq_weights(explicit: Optional[str | Path] = None, download: Optional[bool] = None) -> Path:
    """Local path of the PARSeq checkpoint, fetching it through docTR when allowed."""
    if explicit is not None:
        return resolve(PARSEQ_WEIGHTS, explicit=explicit, what="OCR engine parseq")
    try:
        path = resolve(PARSEQ_WEIGHTS, download=False, what="OCR engine parseq")
    except MissingWeightsError as e:
        missing = e
        cached = doctr_cache_file()
        if cached.is_file() and cached.stat().st_size == 0:  # an interrupted docTR download
            cached.unlink()
            missing = MissingWeightsError(f"{e}; removed partial download {cached}")
        path = cached if cached.is_file() else None
        if path is None and (download if download is not None else _online()):
            try:
                from doctr.utils.data import download_from_url

                with contextlib.redirect_stdout(sys.stderr):  # docTR prints its progress
                    path = Path(download_from_url(PARSEQ_URL, cache_subdir="models"))
            except Exception as err:  # every network failure ends in the same one-line message
                raise MissingWeightsError(f"{missing}; docTR download failed: {type(err).__name__}") from None
        if path is None:
            raise MissingWeightsError(f"{missing} (or into docTR's cache {doctr_cache_file()})") from None
    if not file_sha256(path).startswith(PARSEQ_SHA256_PREFIX):
        raise MissingWeightsError(f"OCR engine parseq: {path} has sha256 {file_sha256(path)[:12]}…, expected "
                                  f"{PARSEQ_SHA256_PREFIX}… (refusing a mismatched file; pass a path to use others)")
    return path


def _import_doctr():
    try:
        from doctr.datasets import VOCABS
        from doctr.models import recognition
    except ImportError as e:
        raise MissingWeightsError(
            f"OCR engine parseq needs python-doctr ({e}); install it without its opencv-python pin: pip install "
            "--no-deps python-doctr && pip install onnx rapidfuzz anyascii validators langdetect h5py pypdfium2 "
            "'huggingface-hub<2'") from None
    return recognition, VOCABS


def resize_keep_ratio(image, size: tuple[int, int] = INPUT_SHAPE[1:]):
    """docTR ``Resize(size, preserve_aspect_ratio=True, symmetric_pad=False)`` on a (C, H, W) float tensor."""
    import torch.nn.functional as tnf
    from torchvision.transforms import functional as tvf

    target_ratio = size[0] / size[1]
    actual_ratio = image.shape[-2] / image.shape[-1]
    if target_ratio == actual_ratio:
        return tvf.resize(image, list(size), tvf.InterpolationMode.BILINEAR, antialias=True)
    if actual_ratio > target_ratio:
        tmp = (size[0], max(int(size[0] / actual_ratio), 1))
    else:
        tmp = (max(int(size[1] * actual_ratio), 1), size[1])
    image = tvf.resize(image, list(tmp), tvf.InterpolationMode.BILINEAR, antialias=True)
    return tnf.pad(image, (0, size[1] - image.shape[-1], 0, size[0] - image.shape[-2]))


@register_ocr_engine("parseq", "doctr-parseq")
class PARSeqEngine(OCREngine):
    name = "parseq"
    bounded_decoding = True

    def __init__(self, device: str = "cpu", weights: Optional[str | Path] = None, batch_size: int = 64,
                 download: Optional[bool] = None):
        import torch

        recognition, vocabs = _import_doctr()
        self._weights = locate_parseq_weights(weights or os.environ.get("TOKBENCH_PARSEQ_WEIGHTS"), download)
        model = recognition.parseq(pretrained=False, vocab=vocabs["french"], input_shape=INPUT_SHAPE)
        state = torch.load(self._weights, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise MissingWeightsError(f"OCR engine parseq: {self._weights} is not a state_dict")
        for key in LEGACY_KEYS:
            state.pop(key, None)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise MissingWeightsError(
                f"OCR engine parseq: {self._weights} does not fit docTR PARSeq (french vocab): "
                f"missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}")
        self.device = torch.device(device)
        self._model = model.eval().to(self.device)
        self._mean = torch.tensor(model.cfg["mean"]).view(1, 3, 1, 1).to(self.device)
        self._std = torch.tensor(model.cfg["std"]).view(1, 3, 1, 1).to(self.device)
        self.batch_size = int(batch_size)

    @classmethod
    def from_model(cls, model, device: str = "cpu", batch_size: int = 64, label: str = "in-memory model"
                   ) -> "PARSeqEngine":
        """Wrap an already built docTR PARSeq (e.g. random weights in tests): no weights file involved."""
        import torch

        engine = cls.__new__(cls)
        engine._weights = Path(label)
        engine.device = torch.device(device)
        engine._model = model.eval().to(engine.device)
        engine._mean = torch.tensor(model.cfg["mean"]).view(1, 3, 1, 1).to(engine.device)
        engine._std = torch.tensor(model.cfg["std"]).view(1, 3, 1, 1).to(engine.device)
        engine.batch_size = int(batch_size)
        return engine

    @property
    def version(self) -> str:
        return (f"python-doctr {package_version('python-doctr')}; torch {package_version('torch')}; "
                f"{self._weights.name}")

    @property
    def model_files(self) -> list[str]:
        return [self._weights.name]

    def describe(self) -> dict:
        sha = file_sha256(self._weights) if self._weights.is_file() else "none (in-memory model)"
        return {**super().describe(), "weights_sha256": sha,
                "model": "docTR parseq, vocab french, input 3x32x128",
                "preprocess": "float [0,1] RGB, keep-ratio bilinear resize (antialias) into 32x128, zero pad"
                              " right/bottom, normalise with model mean/std",
                "decoding": "free autoregressive decoding, or capped per crop when given caps (official rules)",
                "batch_size": self.batch_size, "device": str(self.device)}

    def _batch(self, chunk: list[np.ndarray]):
        import torch

        batch = torch.stack([resize_keep_ratio(torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1).float()
                                               / 255.0) for c in chunk]).to(self.device)
        return (batch - self._mean) / self._std

    def _recognize(self, crops: list[np.ndarray]) -> list[str]:
        import torch

        preds: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                out = self._model(self._batch(crops[start:start + self.batch_size]), return_preds=True)
                preds.extend(word for word, _ in out["preds"])
        return preds

    def _recognize_bounded(self, crops: list[np.ndarray], max_lengths: list[int]) -> list[str]:
        """docTR's eval forward with targets: ``decode_autoregressive(features, longest target)`` (no early
        stop), one refinement pass, the same post-processing. Crops sharing a cap share a batch."""
        import torch

        preds: list[str] = [""] * len(crops)
        groups: dict[int, list[int]] = {}
        for i, cap in enumerate(max_lengths):
            groups.setdefault(int(cap), []).append(i)
        model = self._model
        with torch.inference_mode():
            for cap, idx in sorted(groups.items()):
                for start in range(0, len(idx), self.batch_size):
                    part = idx[start:start + self.batch_size]
                    features = model.feat_extractor(self._batch([crops[i] for i in part]))["features"][:, 1:, :]
                    logits = model.decode_autoregressive(features, cap).float()
                    for i, (word, _) in zip(part, model.postprocessor(logits)):
                        preds[i] = word
        return preds
