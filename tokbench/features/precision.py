"""Full fp32 (no TF32) while a feature extractor runs on CUDA, and a record of what ran.

cuDNN convolutions default to TF32 on Ampere and newer GPUs; FID/FVD features are reference numbers, so
extractors run in IEEE fp32 and the manifest says so.
"""
from __future__ import annotations

import contextlib
import threading

import torch

_LOCK = threading.Lock()


@contextlib.contextmanager
def ieee_fp32(device: torch.device | str):
    if torch.device(device).type != "cuda":
        yield
        return
    with _LOCK:
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def precision_record(device: torch.device | str) -> dict:
    dev = torch.device(device)
    rec = {"device": dev.type, "dtype": "float32", "tf32": False, "torch": torch.__version__}
    if dev.type == "cuda":
        rec["gpu"] = torch.cuda.get_device_name(dev)
    return rec
