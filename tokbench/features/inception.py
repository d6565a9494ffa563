"""pytorch-fid's InceptionV3 (pool3, 2048-d) loaded from a resolved local weights file.

The network object is pytorch-fid's own (``pytorch_fid.inception.InceptionV3``: FID blocks, bilinear
resize to 299 inside the model with align_corners=False and no antialias, input scaled 2x - 1), so the
features are pytorch-fid's by construction; only where the state dict comes from differs (our path,
loaded with ``weights_only=True``, instead of pytorch-fid's own download).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.features.precision import ieee_fp32, precision_record

FEATURE_DIM = 2048
_BUILD_LOCK = threading.Lock()


def build_fid_inception(weights_path: Path | str) -> torch.nn.Module:
    """pytorch-fid InceptionV3 returning pool3, with its state dict read from ``weights_path``."""
    try:
        import pytorch_fid.inception as pfi
    except ImportError:
        raise MissingWeightsError("rFID needs the optional package pytorch-fid: pip install 'tokbench[fid]'") from None

    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise MissingWeightsError(f"{weights_path}: not a readable Inception state dict ({type(e).__name__})") from None

    def from_resolved_file(url, *args, **kwargs):
        if url != pfi.FID_WEIGHTS_URL:
            raise RuntimeError(f"unexpected weights request {url}")
        return state

    # pytorch-fid builds the network and fetches its weights in one constructor; point that one fetch at
    # our file (module attribute swap, restored at once, serialised by a lock).
    with _BUILD_LOCK:
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = from_resolved_file
        try:
            model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]])
        except RuntimeError as e:
            raise MissingWeightsError(
                f"{weights_path}: does not match pytorch-fid's InceptionV3 ({str(e).splitlines()[0]})") from None
        finally:
            pfi.load_state_dict_from_url = original
    return model.eval()


class InceptionFeatures:
    """uint8 RGB frames (N, H, W, 3) -> float32 pool3 features (N, 2048), exactly as pytorch-fid's
    ``get_activations`` computes them from the same pixels (ToTensor = x / 255 in float32)."""

    dim = FEATURE_DIM
    name = "inception-fid"

    def __init__(self, weights_path: Path | str, device: str = "cpu", batch_size: int = 50):
        self.device = torch.device(device)
        self.model = build_fid_inception(weights_path).to(self.device)
        self.batch_size = batch_size
        self.weights_path = Path(weights_path)

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise BadInputError(f"Inception features need uint8 (N, H, W, 3) frames, got {frames.dtype} {frames.shape}")
        out = []
        with ieee_fp32(self.device):
            for i in range(0, len(frames), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[i:i + self.batch_size])).to(self.device)
                x = x.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)  # NCHW: as ToTensor
                pred = self.model(x)[0]
                out.append(pred.squeeze(3).squeeze(2).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def describe(self) -> dict:
        return self.describe_on(self.device)

    @classmethod
    def describe_on(cls, device) -> dict:
        """What describe() says for ``device``, without a loaded network (reference-statistics cache keys)."""
        import pytorch_fid

        return {"extractor": "pytorch-fid InceptionV3 pool3", "pytorch_fid": pytorch_fid.__version__,
                "dim": cls.dim, "resize": "bilinear to 299x299 inside the model, align_corners=False, no antialias",
                "input": "uint8 RGB / 255, then 2x - 1", **precision_record(device)}
