"""Full fp32 (no TF32) while a feature extractor runs on CUDA, and a record of what ran.

cuDNN convolutions default to TF32 on Ampere and newer GPUs; FID/FVD features are reference numbers, so
extractors run in IEEE fp32 and the manifest says so.

torch >= 2.9 has two TF32 APIs: the legacy booleans (``torch.backends.cudnn.allow_tf32``,
``torch.backends.cuda.matmul.allow_tf32``) and per-operator ``fp32_precision`` strings
(``torch.backends.cudnn.conv.fp32_precision = "tf32"``, ...; "none" inherits from the backend, then from
``torch.backends.fp32_precision``). Reading a legacy boolean raises a RuntimeError once the two disagree
(e.g. after a user set only the conv flag), and the legacy ``allow_tf32 = False`` sets conv/rnn to "none",
which still inherits a global "tf32". So ``tf32_disabled`` sets the operator flags themselves to "ieee"
(and the legacy ones consistently), and restores every flag it touched without reading a legacy getter
that could raise.
"""
from __future__ import annotations

import contextlib
import threading

import torch

_LOCK = threading.Lock()


# set to "ieee" inside the block; oneDNN's matmul too, since torch checks it against the legacy matmul precision
_OPERATORS = ("cudnn.conv", "cudnn.rnn", "cuda.matmul", "mkldnn.matmul")


def _operator_flags() -> dict:
    """name -> per-operator fp32_precision holder of torch >= 2.9 (empty on older torch)."""
    holders = {}
    for name in _OPERATORS:
        obj = torch.backends
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
            obj.fp32_precision  # noqa: B018 - probe: older torch has no such attribute
        except (AttributeError, RuntimeError):
            continue
        holders[name] = obj
    return holders


def _read(getter):
    """A legacy flag's value, or None where torch refuses to answer (mixed legacy / new settings)."""
    try:
        return getter()
    except RuntimeError:
        return None


@contextlib.contextmanager
def tf32_disabled():
    """IEEE float32 for cuDNN convolutions / RNNs and cuBLAS matmuls inside the block, whichever TF32 API
    (legacy booleans or torch >= 2.9 ``fp32_precision``) the process used before; never raises on flags."""
    holders = _operator_flags()
    saved_ops = [(h, h.fp32_precision) for h in holders.values()]
    saved_cudnn = _read(lambda: torch.backends.cudnn.allow_tf32)
    saved_matmul = _read(torch.get_float32_matmul_precision)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False  # legacy matmul precision "highest" and, on new torch, "ieee"
    for holder in holders.values():
        holder.fp32_precision = "ieee"
    try:
        yield
    finally:
        if saved_cudnn is not None:
            torch.backends.cudnn.allow_tf32 = saved_cudnn
        if saved_matmul is not None:
            torch.set_float32_matmul_precision(saved_matmul)
        for h, value in saved_ops:  # last: the legacy setters above rewrite these
            h.fp32_precision = value


@contextlib.contextmanager
def ieee_fp32(device: torch.device | str):
    if torch.device(device).type != "cuda":
        yield
        return
    with _LOCK, tf32_disabled():
        yield


def precision_record(device: torch.device | str) -> dict:
    dev = torch.device(device)
    rec = {"device": dev.type, "dtype": "float32", "tf32": False, "torch": torch.__version__}
    if dev.type == "cuda":
        rec["gpu"] = torch.cuda.get_device_name(dev)
    return rec
