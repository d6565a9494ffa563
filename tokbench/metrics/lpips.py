"""LPIPS (v0.1 linear heads, AlexNet or VGG16 backbone) through torchmetrics, with no downloads.

torchmetrics builds the backbone through torchvision's pretrained-weights download; here the LPIPS
module is built with a random backbone (``pnet_rand=True``, so nothing is fetched) and the torchvision
ImageNet state dict resolved by tokbench.weights (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``,
from the torch hub cache, the weights folder or a path) is loaded into it, layer by layer and strictly.
The linear heads are the lpips v0.1 files torchmetrics ships. Pixels: uint8 / 127.5 - 1, i.e. [-1, 1],
with ``normalize=False`` (the range torchmetrics expects then). Score per image; videos: mean over frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.features.precision import ieee_fp32, precision_record
from tokbench.metrics.base import InstanceMetric, Sample, register_metric
from tokbench.weights_catalog import ALEXNET_LPIPS, VGG16_LPIPS, provenance, resolve_for

BACKBONE_WEIGHTS = {"alex": ALEXNET_LPIPS.name, "vgg": VGG16_LPIPS.name}
MIN_SIDE = {"alex": 31, "vgg": 16}  # smaller inputs pool away to nothing


def build_lpips(net: str, backbone_path: Path | str) -> torch.nn.Module:
    """torchmetrics' LPIPS module with the torchvision backbone weights read from ``backbone_path``."""
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    try:
        import torchvision  # noqa: F401  (torchmetrics builds the backbone from torchvision)
    except ImportError:
        raise MissingWeightsError("LPIPS needs the optional package torchvision: pip install 'tokbench[fid]'") from None
    if net not in BACKBONE_WEIGHTS:
        raise BadInputError(f"unknown LPIPS backbone {net!r}; use one of {', '.join(BACKBONE_WEIGHTS)}")
    try:
        state = torch.load(backbone_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise MissingWeightsError(f"{backbone_path}: not a readable torchvision state dict ({type(e).__name__})") from None
    model = _NoTrainLpips(net=net, pnet_rand=True)
    used = set()
    try:
        for slice_name in ("slice1", "slice2", "slice3", "slice4", "slice5"):
            for idx, layer in getattr(model.net, slice_name).named_children():
                prefix = f"features.{idx}."
                sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                layer.load_state_dict(sub, strict=True)
                used.update(prefix + k for k in sub)
    except RuntimeError as e:
        raise MissingWeightsError(
            f"{backbone_path}: not the torchvision {net} backbone LPIPS needs ({str(e).splitlines()[0]})") from None
    if not used:
        raise MissingWeightsError(f"{backbone_path}: no torchvision 'features.*' weights found for LPIPS-{net}")
    return model.eval()


def to_lpips_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (T, 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous().to(torch.float32)
    return x / 127.5 - 1.0


class LPIPS(InstanceMetric):
    level = "image"
    higher_is_better = (False,)
    version = "1"

    def __init__(self, net: str, backbone_path: Path | str, device: str = "cpu", batch_size: int = 16,
                 weights: dict | None = None):
        self.net = net
        self.name = "lpips" if net == "alex" else f"lpips-{net}"
        self.columns = ("LPIPS",) if net == "alex" else (f"LPIPS-{net.upper()}",)
        self.device = torch.device(device)
        self.model = build_lpips(net, backbone_path).to(self.device)
        self.batch_size = batch_size
        self.weights = weights or {}

    def describe(self) -> dict:
        import torchmetrics

        return {**super().describe(), "implementation": f"torchmetrics {torchmetrics.__version__} LPIPS (v0.1 heads)",
                "net": self.net, "backbone_weights": self.weights,
                "input": "uint8 / 127.5 - 1 ([-1, 1]), normalize=False", "video": "mean over frames",
                **precision_record(self.device)}

    @torch.no_grad()
    def per_frame(self, original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
        scores = []
        with ieee_fp32(self.device):
            for i in range(0, len(original), self.batch_size):
                a = to_lpips_range(original[i:i + self.batch_size]).to(self.device)
                b = to_lpips_range(reconstruction[i:i + self.batch_size]).to(self.device)
                scores.append(self.model(a, b, normalize=False).reshape(-1).cpu().numpy())
        return np.concatenate(scores).astype(np.float64)

    def score(self, sample: Sample, reference) -> list[dict]:
        o, r = sample.original, sample.reconstruction
        if o.shape != r.shape:
            raise BadInputError(f"item {sample.item.id}: original {o.shape} and reconstruction {r.shape} differ in shape")
        if min(o.shape[1:3]) < MIN_SIDE[self.net]:
            raise BadInputError(f"item {sample.item.id}: LPIPS-{self.net} needs images of at least "
                                f"{MIN_SIDE[self.net]} px per side, got {o.shape[2]}x{o.shape[1]}")
        return [{"instance": 0, self.columns[0]: float(self.per_frame(o, r).mean())}]


def create_lpips(net: str = "alex", device: str = "cpu", backbone_path=None) -> LPIPS:
    name = BACKBONE_WEIGHTS.get(net)
    if name is None:
        raise BadInputError(f"unknown LPIPS backbone {net!r}; use one of {', '.join(BACKBONE_WEIGHTS)}")
    path = resolve_for(name, explicit=backbone_path, what=f"LPIPS-{net} backbone")
    return LPIPS(net, path, device=device, weights=provenance(name, path))


@register_metric("lpips", "lpips-alex")
def _lpips(protocol, device="cpu"):
    return create_lpips("alex", device=device)


@register_metric("lpips-vgg")
def _lpips_vgg(protocol, device="cpu"):
    return create_lpips("vgg", device=device)
