"""I3D (Inflated Inception-v1, Kinetics-400) video features for rFVD: two published ports.

* ``StyleGANVI3D``: StyleGAN-V's TorchScript ``i3d_torchscript.pt`` (port of tf-hub i3d-kinetics-400),
  called as StyleGAN-V does: uint8 (B, C, T, H, W), ``rescale=True, resize=True,
  return_features=True`` -> 400-d pre-softmax logits. Resizing and scaling happen inside the archive.
* ``TATSI3D``: the TATS / VideoGPT ``i3d_pretrained_400.pt`` state dict (the same tf-hub weights converted
  to piergiaj's pytorch-i3d layout) in ``InceptionI3d`` below; frames resized to 224x224 with torch
  bilinear (align_corners=False, no antialias, no crop), scaled 2x/255 - 1; output 400 logits averaged
  over time.

``InceptionI3d`` is written from the I3D paper / tf-hub graph structure with the parameter names of the
TATS checkpoint: TensorFlow "SAME" padding computed from the input size (zeros, also before max-pools),
BatchNorm eps 1e-5 (the port's choice; TF used 1e-3 with no scale), logits = 1x1x1 conv with bias on a
(2, 7, 7) average pool, squeezed and averaged over the remaining time steps.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.features.precision import ieee_fp32, precision_record

FEATURE_DIM = 400
TARGET_SIZE = (224, 224)
MIN_FRAMES_TATS = 9  # three temporal stride-2 stages must leave >= 2 steps for the (2, 7, 7) pool


def _same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow 'SAME' padding (front, back) along one axis for an input of ``size``."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Tuple[int, int, int], stride: Tuple[int, int, int]) -> torch.Tensor:
    pt = _same_padding(x.shape[2], kernel[0], stride[0])
    ph = _same_padding(x.shape[3], kernel[1], stride[1])
    pw = _same_padding(x.shape[4], kernel[2], stride[2])
    return F.pad(x, [pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]])


class Unit3D(nn.Module):
    """conv3d (SAME padding) -> optional BatchNorm -> optional ReLU; parameter names ``conv3d``/``bn``."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), batch_norm: bool = True,
                 relu: bool = True, bias: bool = False):
        super().__init__()
        self.kernel: Tuple[int, int, int] = tuple(kernel)
        self.stride: Tuple[int, int, int] = tuple(stride)
        self.relu = relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.001) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv3d(_pad_same(x, self.kernel, self.stride)))
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    """Max-pool with TF 'SAME' zero padding (inputs are post-ReLU, so zeros never win spuriously)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel: Tuple[int, int, int] = tuple(kernel)
        self.stride: Tuple[int, int, int] = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Mixed(nn.Module):
    """Inception module: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max-pool -> 1x1, concatenated."""

    def __init__(self, cin: int, c: Tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class InceptionI3d(nn.Module):
    """(B, 3, T, 224, 224) in [-1, 1] -> (B, num_classes) logits averaged over time."""

    def __init__(self, num_classes: int = FEATURE_DIM):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = Mixed(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = Mixed(256, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = Mixed(480, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = Mixed(512, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = Mixed(512, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = Mixed(512, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = Mixed(528, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = Mixed(832, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = Mixed(832, (384, 192, 384, 48, 128, 128))
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, relu=False, bias=True)
        self.trunk = [self.Conv3d_1a_7x7, self.MaxPool3d_2a_3x3, self.Conv3d_2b_1x1, self.Conv3d_2c_3x3,
                      self.MaxPool3d_3a_3x3, self.Mixed_3b, self.Mixed_3c, self.MaxPool3d_4a_3x3, self.Mixed_4b,
                      self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f, self.MaxPool3d_5a_2x2,
                      self.Mixed_5b, self.Mixed_5c]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.trunk:
            x = block(x)
        x = self.logits(self.avg_pool(x))  # dropout is the identity at inference
        return x.squeeze(4).squeeze(3).mean(dim=2)


def _frames_tensor(videos: np.ndarray) -> torch.Tensor:
    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise BadInputError(f"I3D features need uint8 (B, T, H, W, 3) videos, got {videos.dtype} {videos.shape}")
    return torch.from_numpy(np.ascontiguousarray(videos))


def tats_preprocess(videos: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float32 (B, 3, T, 224, 224) in [-1, 1]: per-frame torch bilinear resize
    of the 0..255 values (align_corners=False), then 2x/255 - 1 (TATS / VideoGPT / cd-fvd order)."""
    b, t, h, w, c = videos.shape
    frames = videos.reshape(b * t, h, w, c).permute(0, 3, 1, 2).contiguous().to(torch.float32)
    frames = F.interpolate(frames, size=TARGET_SIZE, mode="bilinear", align_corners=False)
    clips = frames.reshape(b, t, c, *TARGET_SIZE).transpose(1, 2).contiguous()
    return 2.0 * clips / 255.0 - 1.0


class TATSI3D:
    dim = FEATURE_DIM
    name = "i3d-tats"
    ddof = 1  # TATS / VideoGPT covariance is unbiased (N - 1)

    def __init__(self, weights_path: Path | str, device: str = "cpu"):
        self.device = torch.device(device)
        self.weights_path = Path(weights_path)
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise MissingWeightsError(f"{weights_path}: not a readable I3D state dict ({type(e).__name__})") from None
        model = InceptionI3d()
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise MissingWeightsError(
                f"{weights_path}: not the TATS i3d_pretrained_400.pt layout ({str(e).splitlines()[0]})") from None
        self.model = model.eval().to(self.device)

    @torch.no_grad()
    def __call__(self, videos: np.ndarray) -> np.ndarray:
        x = _frames_tensor(videos)
        if x.shape[1] < MIN_FRAMES_TATS:
            raise BadInputError(f"TATS I3D needs at least {MIN_FRAMES_TATS} frames per clip, got {x.shape[1]}")
        with ieee_fp32(self.device):
            return self.model(tats_preprocess(x.to(self.device))).cpu().numpy()

    def describe(self) -> dict:
        return self.describe_on(self.device)

    @classmethod
    def describe_on(cls, device) -> dict:
        """What describe() says for ``device``, without a loaded network (reference-statistics cache keys)."""
        return {"extractor": "TATS/VideoGPT InceptionI3d (tokbench implementation), logits", "dim": cls.dim,
                "resize": "torch bilinear to 224x224 per frame, align_corners=False, no antialias, no crop",
                "input": "2x/255 - 1", "covariance_ddof": cls.ddof, **precision_record(device)}


class StyleGANVI3D:
    dim = FEATURE_DIM
    name = "i3d-styleganv"
    ddof = 0  # StyleGAN-V FeatureStats divides by N

    def __init__(self, weights_path: Path | str, device: str = "cpu", allow_unsafe: bool = False):
        from tokbench.checkpoints import load_torchscript
        from tokbench.weights_catalog import I3D_STYLEGANV

        self.device = torch.device(device)
        self.weights_path = Path(weights_path)
        # a TorchScript archive (the published format) is code: the opt-in or a pinned sha256, as for Cosmos
        try:
            self.model = load_torchscript(weights_path, "rFVD I3D (StyleGAN-V)", allow_unsafe=allow_unsafe,
                                          known_sha256=I3D_STYLEGANV.sha256, map_location=self.device)
        except BadInputError as e:
            raise MissingWeightsError(str(e)) from None

    @torch.no_grad()
    def __call__(self, videos: np.ndarray) -> np.ndarray:
        x = _frames_tensor(videos).to(self.device).permute(0, 4, 1, 2, 3).contiguous()  # (B, C, T, H, W) uint8
        with ieee_fp32(self.device):
            try:
                out = self.model(x, rescale=True, resize=True, return_features=True)
            except RuntimeError as e:
                raise BadInputError(f"StyleGAN-V I3D rejected a clip of shape {tuple(x.shape)} "
                                    f"({str(e).strip().splitlines()[-1][:200]})") from None
        out = out.cpu().numpy()
        if out.ndim != 2 or out.shape[1] != self.dim:
            raise MissingWeightsError(f"{self.weights_path}: returned features of shape {out.shape}, expected (B, {self.dim})")
        return out

    def describe(self) -> dict:
        return self.describe_on(self.device)

    @classmethod
    def describe_on(cls, device) -> dict:
        """What describe() says for ``device``, without a loaded network (reference-statistics cache keys)."""
        return {"extractor": "StyleGAN-V i3d_torchscript.pt, return_features=True (400-d logits)", "dim": cls.dim,
                "call": "detector(uint8 BCTHW, rescale=True, resize=True, return_features=True)",
                "covariance_ddof": cls.ddof, **precision_record(device)}
