"""Lookup-free quantisation (MAGVIT-v2 LFQ), as Open-MAGVIT2 and MaskBit run it at inference.

Each latent channel is one bit: +1 where the value is strictly positive, else -1 (an exact 0 and NaN give -1).
The token index is sum_c bit_c * 2**c with channel 0 the least significant bit. There are no weights, no
projection and no scaling; both upstreams hand the decoder the straight-through form ``z + (q - z)``, which can
differ from ``q`` by rounding, so it is returned alongside the indices.
"""
from __future__ import annotations

import torch


def bit_weights(bits: int, device=None) -> torch.Tensor:
    """(bits,) int64 powers of two, channel 0 first."""
    return torch.pow(2, torch.arange(bits, device=device, dtype=torch.int64))


def lfq_quantize(z: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, h, w) latents -> (straight-through latent (B, C, h, w), indices (B, h, w) int64).

    ``weights`` are the per-channel powers of two (default ``bit_weights(C)``); MaskBit keeps them in its
    state_dict and multiplies by the stored ones.
    """
    if weights is None:
        weights = bit_weights(z.shape[1], z.device)
    positive = z > 0
    q = torch.where(positive, torch.ones((), dtype=z.dtype, device=z.device),
                    -torch.ones((), dtype=z.dtype, device=z.device))
    indices = (positive.to(torch.int64) * weights.to(z.device, torch.int64).view(1, -1, 1, 1)).sum(1)
    return z + (q - z), indices


def lfq_codes(indices: torch.Tensor, bits: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, h, w) indices -> (B, bits, h, w) codes in {-1, +1} (the exact codebook vectors)."""
    on = (indices.to(torch.int64).unsqueeze(1) & bit_weights(bits, indices.device).view(1, -1, 1, 1)) != 0
    return on.to(dtype) * 2 - 1
