"""dlib's face-recognition ResNet as a torch module, built from the parsed ``.dat`` (``serialization``).

Why: dlib-bin is built without BLAS, so its own forward pass runs dlib's reference gemm (~60 ms per chip on
one core); torch's convolutions give the same descriptors (to float32 rounding) several times cheaper.
The forward pass follows dlib's CPU code: input (pixel - mean) / 256 per channel; convolutions as
cross-correlation with dlib's default padding; each per-channel affine folded into the convolution before it
(an inference-time identity, changes only float rounding); max/avg pooling windows that never leave the
input; add_prev zero-padding the smaller operand (channels and bottom/right) as dlib's ``tt::add`` does;
the global average; fc without bias. The output is the 128-d descriptor, not normalised (as dlib's).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.dlib_resnet.serialization import DlibNetwork, load


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger extent of each axis, missing entries read as 0."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def pad(t):
        # F.pad takes (left, right) pairs from the last axis backwards: W, H, C
        return F.pad(t, (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1]))

    return pad(a) + pad(b)


class DlibFaceResNet(nn.Module):
    """Runs the parsed layer list; ``forward`` takes uint8 RGB chips (N, 150, 150, 3) and returns (N, 128)."""

    def __init__(self, network: DlibNetwork):
        super().__init__()
        self.size = network.input_size
        self.register_buffer("mean", torch.tensor(network.input_means, dtype=torch.float32).view(1, 3, 1, 1))
        self.convs = nn.ModuleList()
        self.program: list[tuple] = []  # (op, argument) in forward order
        layers = network.layers[1:-1]  # drop input and loss markers
        i = 0
        while i < len(layers):
            layer = layers[i]
            kind = layer.spec.kind
            if kind == "con":
                weight, bias = torch.from_numpy(layer.weight), torch.from_numpy(layer.bias)
                if i + 1 < len(layers) and layers[i + 1].spec.kind == "affine":
                    gamma, beta = torch.from_numpy(layers[i + 1].weight), torch.from_numpy(layers[i + 1].bias)
                    weight, bias = weight * gamma.view(-1, 1, 1, 1), bias * gamma + beta
                    i += 1
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], stride=layer.spec.stride,
                                 padding=layer.padding)
                conv.weight.data.copy_(weight)
                conv.bias.data.copy_(bias)
                self.program.append(("conv", len(self.convs)))
                self.convs.append(conv)
            elif kind == "affine":
                raise ValueError("an affine layer that does not follow a convolution")
            elif kind in ("relu", "tag", "skip", "add_prev"):
                self.program.append((kind, layer.spec.ident))
            elif kind in ("max_pool", "avg_pool"):
                self.program.append((kind, (layer.spec.size, layer.spec.stride, layer.padding)))
            elif kind == "fc":
                self.fc = nn.Linear(layer.weight.shape[0], layer.weight.shape[1], bias=False)
                self.fc.weight.data.copy_(torch.from_numpy(layer.weight.T.copy()))
                self.program.append(("fc", None))
            else:
                raise ValueError(f"layer kind {kind!r} has no torch counterpart")
            i += 1
        self.eval().requires_grad_(False)

    def normalize(self, chips: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), dlib's input_rgb_image_sized: (pixel - mean) / 256."""
        x = chips.permute(0, 3, 1, 2).to(torch.float32)
        return (x - self.mean) / 256.0

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.dtype != torch.uint8 or chips.ndim != 4 or tuple(chips.shape[1:]) != (self.size, self.size, 3):
            raise ValueError(f"expected uint8 chips (N, {self.size}, {self.size}, 3), got {chips.dtype} "
                             f"{tuple(chips.shape)}")
        x = self.normalize(chips)
        tags: dict[int, torch.Tensor] = {}
        for op, arg in self.program:
            if op == "conv":
                x = self.convs[arg](x)
            elif op == "relu":
                x = torch.relu(x)
            elif op == "tag":
                tags[arg] = x
            elif op == "skip":
                x = tags[arg]
            elif op == "add_prev":
                x = _add_zero_padded(x, tags[arg])
            elif op == "max_pool":
                size, stride, pad = arg
                x = F.max_pool2d(x, size, stride, pad)
            elif op == "avg_pool":
                size, stride, pad = arg
                x = x.mean((2, 3), keepdim=True) if size == 0 else F.avg_pool2d(x, size, stride, pad)
            elif op == "fc":
                x = self.fc(x.flatten(1))
        return x

    @torch.inference_mode()
    def descriptors(self, chips: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, 128) float64 descriptors of uint8 RGB 150x150 chips (what dlib's compute_face_descriptor returns)."""
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(list(chips)) if isinstance(chips, list) else chips))
        return self(batch).to(torch.float64).numpy()


def load_face_resnet(path: str | Path) -> DlibFaceResNet:
    """Parse the released ``dlib_face_recognition_resnet_model_v1.dat`` and build the torch module."""
    return DlibFaceResNet(load(path))
