"""ImageNet-val-style image folder loader and its rFID preprocessing presets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tokbench.data.external import open_dataset
from tokbench.data.imagenet import PRESETS, ImageFolder, adm_center_crop
from tokbench.errors import BadInputError


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME", "HF_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var.lower()))


def save(path: Path, w: int, h: int, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def test_flat_folder_of_jpegs(tmp_path):
    for i in range(3):
        save(tmp_path / f"ILSVRC2012_val_0000000{i + 1}.JPEG", 40 + i, 30)
    (tmp_path / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n")
    save(tmp_path / ".hidden.jpg", 8, 8)
    ds = ImageFolder(tmp_path)
    assert [it.id for it in ds.items] == [f"ILSVRC2012_val_0000000{i}.JPEG" for i in (1, 2, 3)]
    assert ds.layout == "flat" and ds.describe()["layout"] == "flat"
    assert ds.items[2].load().shape == (1, 30, 42, 3)


def test_class_subfolders(tmp_path):
    a = save(tmp_path / "n01440764/ILSVRC2012_val_00000293.png", 50, 40, seed=1)
    save(tmp_path / "n01443537/ILSVRC2012_val_00000236.png", 30, 60, seed=2)
    ds = ImageFolder(tmp_path)
    assert [it.id for it in ds.items] == ["n01440764/ILSVRC2012_val_00000293.png",
                                          "n01443537/ILSVRC2012_val_00000236.png"]
    assert ds.layout == "class folders"
    np.testing.assert_array_equal(ds.items[0].load()[0], a)  # PNG: exact pixels


def test_adm_preset_matches_box_downsampling(tmp_path):
    """1024x512: one BOX halving to 512x256, BICUBIC to the same size (a copy), centre crop at x = 128."""
    arr = save(tmp_path / "wide.png", 1024, 512, seed=3)
    (item,) = ImageFolder(tmp_path, preset="adm-256").items
    out = item.load()[0]
    assert out.shape == (256, 256, 3)
    box = arr.reshape(256, 2, 512, 2, 3).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_allclose(out, box[:, 128:384], atol=1.0)


def test_adm_preset_shapes_and_rounding():
    for w, h in [(300, 200), (500, 375), (257, 1000), (2000, 1333)]:
        arr = np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert adm_center_crop(arr, 256).shape == (256, 256, 3)
    flat = np.full((375, 500, 3), 77, np.uint8)
    assert (adm_center_crop(flat, 256) == 77).all()


def test_torchvision_preset_against_torchvision_pipeline(tmp_path):
    transforms = pytest.importorskip("torchvision.transforms")

    save(tmp_path / "im.png", 500, 375, seed=4)
    (item,) = ImageFolder(tmp_path, preset="torchvision-256").items
    ref = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(256)])(
        Image.open(tmp_path / "im.png").convert("RGB"))
    np.testing.assert_array_equal(item.load()[0], np.asarray(ref))


def test_presets_change_item_and_content_hashes(tmp_path):
    """Pipeline caches key on item hashes: the same file under two presets must not share one."""
    save(tmp_path / "a.png", 300, 300)
    sets = {p: ImageFolder(tmp_path, preset=p) for p in (None, "adm-256", "torchvision-256")}
    assert len({ds.content_hash for ds in sets.values()}) == 3
    assert len({ds.item_hashes["a.png"] for ds in sets.values()}) == 3
    assert ImageFolder(tmp_path, preset="adm-256").item_hashes == sets["adm-256"].item_hashes


def test_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="image folder .*missing does not exist"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match=r"no images \(.jpg.*under .*empty"):
        ImageFolder(tmp_path / "empty").items
    with pytest.raises(BadInputError, match="unknown image-folder preset 'adm-512'; valid presets: adm-256, "
                                            "torchvision-256"):
        ImageFolder(tmp_path, preset="adm-512")
    root = tmp_path / "val"
    save(root / "good.jpg", 20, 20)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(BadInputError, match=r"broken.jpg: cannot read image"):
        ImageFolder(root).items
    ds = ImageFolder(root, skip_bad=True)
    assert [it.id for it in ds.items] == ["good.jpg"]
    assert [s for s, _ in ds.skipped] == ["broken.jpg"]


def test_open_dataset_spec(tmp_path):
    save(tmp_path / "x/n1/a.jpg", 300, 280)
    ds = open_dataset(f"imagenet:{tmp_path / 'x'}:adm-256")
    assert isinstance(ds, ImageFolder) and ds.preset is PRESETS["adm-256"]
    assert ds.items[0].load().shape == (1, 256, 256, 3)
    assert open_dataset(f"imagenet:{tmp_path / 'x'}").preset is None
