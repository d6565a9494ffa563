"""UCF-101 loader on a miniature UCF-101 (class folders of .avi, official split-file formats)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokbench.data.external import open_dataset
from tokbench.data.ucf101 import PRESETS, UCF101, clip_start, short_side_resize_crop
from tokbench.errors import BadInputError


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME", "HF_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var.lower()))


def write_avi(path: Path, n_frames: int, w: int = 80, h: int = 60) -> None:
    """MPEG-4 Part 2 in AVI, like UCF-101; frame i is a flat grey of level 5 * i."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.qscale = 1
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 5 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


VIDEOS = {  # relative path -> frames
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": 30,
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": 24,
    "Biking/v_Biking_g08_c02.avi": 40,
    "Biking/v_Biking_g01_c01.avi": 17,
    "HandstandPushups/v_HandStandPushups_g08_c01.avi": 20,  # the official lists spell the folder HandstandPushups
}


def build_ucf(base: Path) -> Path:
    for rel, n in VIDEOS.items():
        write_avi(base / "UCF-101" / rel, n)
    splits = base / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Biking\n3 HandstandPushups\n")
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nBiking/v_Biking_g08_c02.avi 2\r\n"
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 3\r\n")
    (splits / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nBiking/v_Biking_g01_c01.avi\n\n")
    return base


@pytest.fixture
def ucf(tmp_path) -> Path:
    return build_ucf(tmp_path / "ucf")


def test_train_preset_one_clip_per_listed_video(ucf):
    ds = UCF101(ucf, preset="ucf101-train-16x128", seed=0)
    assert [it.id.split("@")[0] for it in ds.items] == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", "Biking/v_Biking_g08_c02",
        "HandstandPushups/v_HandStandPushups_g08_c01"]
    hs = ds.items[2]
    assert hs.path.name == "v_HandStandPushups_g08_c01.avi" and hs.path.parent.name == "HandstandPushups"
    for it in ds.items:
        rel = it.path.relative_to(ucf / "UCF-101").as_posix()
        n = VIDEOS[rel]
        start = int(it.id.split("@")[1])
        assert 0 <= start <= n - 16
        clip = it.load()
        assert clip.shape == (16, 128, 128, 3) and clip.dtype == np.uint8 and it.fps == 25.0
        levels = clip.reshape(16, -1).mean(axis=1)  # frame i of the file has level 5 * i
        np.testing.assert_allclose(levels, 5 * np.arange(start, start + 16), atol=2.5)


def test_test_preset_17x256(ucf):
    ds = UCF101(ucf, preset="ucf101-test-17x256")
    assert [it.id.split("@")[0] for it in ds.items] == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01",
                                                         "Biking/v_Biking_g01_c01"]
    assert ds.items[1].id == "Biking/v_Biking_g01_c01@0"  # 17 frames: the only possible window
    assert ds.items[0].load().shape == (17, 256, 256, 3)
    assert ds.settings()["preset"]["kernel"].startswith("torch.nn.functional.interpolate bilinear")


def test_seeded_starts_are_deterministic_and_order_free(ucf):
    a = [it.id for it in UCF101(ucf, seed=7).items]
    assert a == [it.id for it in UCF101(ucf, seed=7).items]
    starts = {s: [it.id for it in UCF101(ucf, seed=s).items] for s in range(6)}
    assert len({tuple(v) for v in starts.values()}) > 1  # the seed matters
    # a video's start depends on (seed, path, length) only, not on the rest of the list
    assert a[1] == f"Biking/v_Biking_g08_c02@{clip_start(7, 'Biking/v_Biking_g08_c02.avi', 40, 16)}"
    h7, h8 = UCF101(ucf, seed=7).content_hash, UCF101(ucf, seed=8).content_hash
    assert h7 != h8 or starts[7] == starts[8]


def test_short_side_resize_crop_on_a_ramp():
    """A horizontal ramp through bilinear resize + centre crop lands on the analytic positions."""
    w, h = 80, 60
    ramp = np.broadcast_to((3 * np.arange(w, dtype=np.uint8))[None, None, :, None], (2, h, w, 3))
    out = short_side_resize_crop(ramp, 128)
    assert out.shape == (2, 128, 128, 3)
    new_w = 171  # ceil(80 * 128 / 60)
    left = (new_w - 128) // 2
    src_x = np.clip((np.arange(128) + left + 0.5) * w / new_w - 0.5, 0, w - 1)
    np.testing.assert_allclose(out[0, 64, :, 0], 3 * src_x, atol=0.51)
    assert (out[:, :, :, 0] == out[:, :1, :, 0]).all()  # rows identical: no vertical change


def test_video_shorter_than_the_clip(ucf):
    (ucf / "ucfTrainTestlist/trainlist01.txt").write_text("Biking/v_Biking_g01_c01.avi 2\n"
                                                          "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n")
    write_avi(ucf / "UCF-101/Biking/v_Biking_g01_c01.avi", 15)
    with pytest.raises(BadInputError, match=r"Biking/v_Biking_g01_c01.avi: 15 frames, shorter than the 16-frame "
                                            r"clip of preset ucf101-train-16x128"):
        UCF101(ucf).items
    ds = UCF101(ucf, skip_bad=True)
    assert [it.id.split("@")[0] for it in ds.items] == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"]
    ((sid, reason),) = ds.skipped
    assert sid == "Biking/v_Biking_g01_c01" and "15 frames, shorter than the 16-frame clip" in reason


def test_bad_split_lists(ucf):
    lst = ucf / "ucfTrainTestlist/trainlist01.txt"
    lst.write_text("../../outside/v_x.avi 1\n")
    with pytest.raises(BadInputError, match=r"trainlist01.txt line 1: path '\.\./\.\./outside/v_x.avi' escapes"):
        UCF101(ucf).items
    lst.write_text("Biking/v_Biking_g99_c01.avi 2\n")
    with pytest.raises(BadInputError, match=r"line 1: video file .*v_Biking_g99_c01.avi does not exist"):
        UCF101(ucf).items
    lst.write_text("Biking/v_Biking_g08_c02.avi 1\n")
    with pytest.raises(BadInputError, match=r"line 1: label 1 of 'Biking/v_Biking_g08_c02.avi' disagrees with "
                                            r"classInd.txt \(2\)"):
        UCF101(ucf).items
    lst.write_text("Rowing/v_Rowing_g08_c02.avi 9\n")
    with pytest.raises(BadInputError, match="not in classInd.txt"):
        UCF101(ucf).items
    lst.write_text("\n\n")
    with pytest.raises(BadInputError, match="trainlist01.txt is empty"):
        UCF101(ucf).items
    with pytest.raises(BadInputError, match="testlist02.txt does not exist"):
        UCF101(ucf, preset="ucf101-test-17x256", split=2).items


def test_configuration_errors(ucf, tmp_path):
    with pytest.raises(BadInputError, match="unknown UCF-101 preset 'ucf101-16'; valid presets: "
                                            "ucf101-train-16x128, ucf101-test-17x256"):
        UCF101(ucf, preset="ucf101-16")
    with pytest.raises(BadInputError, match="split must be 1, 2 or 3"):
        UCF101(ucf, split=4)
    bare = tmp_path / "bare"
    (bare / "Biking").mkdir(parents=True)
    with pytest.raises(BadInputError, match=r"split files not found: expected .*ucfTrainTestlist/trainlist01.txt"):
        UCF101(bare)


def test_split_files_in_a_custom_folder(ucf, tmp_path):
    import shutil

    shutil.move(str(ucf / "ucfTrainTestlist"), str(tmp_path / "lists"))
    ds = UCF101(ucf / "UCF-101", splits_dir=tmp_path / "lists")
    assert len(ds.items) == 3


def test_open_dataset_spec(ucf):
    ds = open_dataset(f"ucf101:{ucf}:ucf101-test-17x256,seed=3")
    assert isinstance(ds, UCF101) and ds.preset is PRESETS["ucf101-test-17x256"] and ds.seed == 3
    assert ds.describe()["preset"]["frames"] == 17
    assert open_dataset(f"ucf101:{ucf}").preset.name == "ucf101-train-16x128"
