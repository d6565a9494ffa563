"""The standard weight files behind rFID, rFVD and LPIPS, registered with tokbench.weights.

Names, URLs and torch-hub file names follow the public releases (metric-conventions.md). No sha256 is
pinned: the reference records only the 8-hex sha256 prefixes torch hub puts in file names (checked and
recorded by ``hub_prefix_matches``) and git blob ids. Every metric records the full sha256 of the file
it actually loaded.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional

from tokbench.weights import WEIGHTS, WeightFile, register_weights, resolve

log = logging.getLogger(__name__)

INCEPTION_FID = register_weights(WeightFile(
    name="inception-fid",
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
    torch_hub_name="pt_inception-2015-12-05-6726825d.pth",
    description="pytorch-fid InceptionV3 (PyTorch port of TF inception-2015-12-05), pool3 2048-d, for rFID",
    license="pytorch-fid release asset (Apache-2.0 project); port of TensorFlow's inception-2015-12-05",
))

I3D_STYLEGANV = register_weights(WeightFile(
    name="i3d-styleganv",
    filename="i3d_torchscript.pt",
    url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    description="StyleGAN-V TorchScript port of tf-hub i3d-kinetics-400 (400-d logits), standard for rFVD",
    license="StyleGAN-V release asset; weights from tf-hub deepmind/i3d-kinetics-400",
))

I3D_TATS = register_weights(WeightFile(
    name="i3d-tats",
    filename="i3d_pretrained_400.pt",
    url="https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt",
    description="TATS/VideoGPT InceptionI3d state dict converted from tf-hub i3d-kinetics-400 (400-d logits);"
                " OmniTokenizer's rFVD detector",
    license="TATS repository asset; weights from tf-hub deepmind/i3d-kinetics-400",
))

ALEXNET_LPIPS = register_weights(WeightFile(
    name="alexnet-lpips",
    filename="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    torch_hub_name="alexnet-owt-7be5be79.pth",
    description="torchvision AlexNet ImageNet weights: the LPIPS-alex backbone",
    license="torchvision model weights (BSD-3-Clause project)",
))

VGG16_LPIPS = register_weights(WeightFile(
    name="vgg16-lpips",
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    torch_hub_name="vgg16-397923af.pth",
    description="torchvision VGG16 ImageNet weights: the LPIPS-vgg backbone",
    license="torchvision model weights (BSD-3-Clause project)",
))

# metric -> the weight files it needs (for `tokbench weights status|path|download`)
METRIC_WEIGHTS: dict[str, tuple[str, ...]] = {
    "rfid": ("inception-fid",),
    "rfvd": ("i3d-styleganv",),
    "rfvd-tats": ("i3d-tats",),
    "rfvd-ucf101-larp": ("i3d-styleganv",),
    "rfvd-ucf101-omnitokenizer": ("i3d-tats",),
    "lpips": ("alexnet-lpips",),
    "lpips-vgg": ("vgg16-lpips",),
}

_HUB_PREFIX = re.compile(r"-([a-f0-9]{8,})\.")  # torch.hub's HASH_REGEX convention


def weight_path(name: str) -> Path:
    """Where the weights file ``name`` is on this machine, or where to put it (no download)."""
    wf = WEIGHTS.get(name)
    return wf.find_local() or Path(wf.where_to_put())


def download(name: str) -> Path:
    """Fetch ``name`` (when online) into the weights folder; one-line MissingWeightsError otherwise."""
    return resolve(WEIGHTS.get(name), download=True)


def resolve_for(name: str, explicit: Optional[str | Path] = None, what: str = "") -> Path:
    """Local path for ``name`` (explicit path, weights folder, torch hub cache, or a download when allowed)."""
    return resolve(WEIGHTS.get(name), explicit=explicit, what=what or name)


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    from tokbench.data.dataset import sha256_file

    return sha256_file(path)


def file_sha256(path: Path | str) -> str:
    """sha256 of a weights file, memoised by (path, size, mtime)."""
    st = Path(path).stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def hub_prefix_matches(wf: WeightFile, sha256: str) -> Optional[bool]:
    """Whether ``sha256`` starts with the hash prefix in the published file name (None: name has none).

    torch hub checks this only when it downloads; a file copied in by hand is recorded, not trusted."""
    m = _HUB_PREFIX.search(wf.torch_hub_name or wf.filename)
    return None if m is None else sha256.startswith(m.group(1))


def provenance(name: str, path: Path | str) -> dict:
    """What the metric loaded: registry name, file name, full sha256 and the published-prefix check.

    The local path is left out on purpose: it does not change numbers, and describe() feeds cache keys."""
    wf = WEIGHTS.get(name)
    digest = file_sha256(path)
    record = {"weights": name, "file": wf.filename, "sha256": digest}
    ok = hub_prefix_matches(wf, digest)
    if ok is not None:
        record["published_prefix_match"] = ok
        if not ok:
            log.warning("%s: sha256 %s… does not start with the hash in its published name %s; scores made with it"
                        " are not comparable with published ones", path, digest[:12], wf.filename)
    return record
