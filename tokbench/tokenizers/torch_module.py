"""The GPU path shared by tokenizers that wrap torch modules (diffusers VAEs, Cosmos TorchScript).

CPU float32 is the reference path, and float32 on CUDA stays IEEE float32 (TF32 off during encode/decode).
``to(device, dtype)`` moves and casts the wrapped modules, as the upstream pipelines do (diffusers
``torch_dtype``, Cosmos' bf16 default); in half precision encode/decode also run under autocast so the ops
autocast keeps in float32 (normalisations, softmax) keep their range.
channels_last is used only where it pays: 4-D image convolutions on CUDA.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from tokbench.errors import BadInputError
from tokbench.features.precision import tf32_disabled
from tokbench.tokenizers.base import Tokenizer

HALF_DTYPES = (torch.bfloat16, torch.float16)
DTYPE_NAMES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
               "fp16": torch.float16, "float16": torch.float16, "half": torch.float16}


def parse_dtype(value: str | torch.dtype) -> torch.dtype:
    """``"bf16"`` / ``torch.bfloat16`` -> ``torch.bfloat16`` (what ``--dtype`` accepts)."""
    if isinstance(value, torch.dtype):
        return value
    try:
        return DTYPE_NAMES[str(value).lower().replace("torch.", "")]
    except KeyError:
        raise BadInputError(f"unknown dtype {value!r}; use one of bf16, fp16, fp32") from None


def ieee_fp32():
    """float32 means float32: PyTorch lets cuDNN convolutions use TF32 by default, which moved tiny-model
    reconstructions to 60-80 dB PSNR from the CPU reference instead of 120-160 dB (H100, torch 2.11).
    Handles the legacy and the torch >= 2.9 TF32 flags (tokbench.features.precision.tf32_disabled)."""
    return tf32_disabled()


class ModuleTokenizer(Tokenizer):
    """A tokenizer whose work is done by torch modules listed in ``self.modules``."""

    image_convolutions = False  # True: 4-D convolutions, where channels_last helps on CUDA
    uses_autocast = True  # False where autocast cannot reach the computation (TorchScript graphs)

    def __init__(self, spec, *, channels_last: Optional[bool] = None, **kwargs):
        super().__init__(spec, **kwargs)
        self.channels_last_option = channels_last
        self.modules: list[torch.nn.Module] = []

    @property
    def channels_last(self) -> bool:
        if self.channels_last_option is None:  # auto: only where it helps
            return self.image_convolutions and self.device.type == "cuda"
        return bool(self.channels_last_option) and self.image_convolutions

    def to(self, device: str | torch.device = "cpu", dtype: torch.dtype | str = torch.float32) -> "ModuleTokenizer":
        dtype = parse_dtype(dtype)
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BadInputError(f"tokenizer {self.spec.name}: --device {device} asked for, but CUDA is not available")
        super().to(device, dtype)
        for m in self.modules:
            torch.nn.Module.to(m, device=device, dtype=dtype)  # not ModelMixin.to, which warns on any dtype
            if self.channels_last:
                m.to(memory_format=torch.channels_last)
        return self

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Input on the tokenizer's device, in its dtype, or left in float32 when autocast will run the model
        (autocast casts per op, and ops that need the precision keep it: Mochi's Fourier features multiply
        pixels by 2**7 * 2 * pi, which bf16 pixels cannot survive); channels_last for 4-D inputs."""
        keep_fp32 = x.dtype == torch.float32 and self.uses_autocast and self.dtype in HALF_DTYPES
        x = x.to(device=self.device, dtype=torch.float32 if keep_fp32 else self.dtype)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def precision(self):
        """The numeric context of encode/decode: autocast in half precision; IEEE float32 in float32 (CUDA
        would otherwise run convolutions in TF32)."""
        if self.dtype == torch.float32:
            return ieee_fp32() if self.device.type == "cuda" else contextlib.nullcontext()
        if not self.uses_autocast or self.dtype not in HALF_DTYPES:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> dict:
        d = super().describe()
        d["channels_last"] = self.channels_last
        d["autocast"] = self.uses_autocast and self.dtype in HALF_DTYPES
        d["tf32"] = False  # float32 runs as IEEE float32 on CUDA too
        return d
