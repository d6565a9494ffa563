"""The official TokBench release loader, on small releases written in the official layout and JSON formats."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tokbench.data.external import open_dataset
from tokbench.data.tokbench_release import (IMAGE_SUBSETS, TokBenchImages, TokBenchVideos, parse_face_entry,
                                            parse_text_entry, parse_video_face_entry, parse_video_text_entry)
from tokbench.errors import BadInputError


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME", "HF_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var.lower()))


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_image(path: Path, w: int, h: int, seed: int = 0, exif_orientation: int | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, exif=exif.tobytes(), quality=95)
    else:
        im.save(path)
    return arr


def write_video(path: Path, n_frames: int, w: int = 64, h: int = 48, fps: int = 25) -> None:
    """Frame i is a flat grey of level 10 * i, so a decoded frame tells its own index."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 10 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


KPS = [[20.5, 15.0], [40.0, 15.5], [30.0, 25.0], [22.0, 35.0], [38.0, 35.0]]


def build_release(root: Path) -> Path:
    """A miniature TokBench release: two text subsets, WFLW faces, ch3 video text and face clips."""
    write_image(root / "images/text_data/ic13/img_1.png", 64, 48, seed=1)
    write_image(root / "images/text_data/ic13/img_2.png", 80, 40, seed=2)
    write_json(root / "annotations/text_ic13.json", [
        {"file_name": "img_1.png", "height": 48, "width": 64,
         "annotations": [{"rec": "Tiredness", "bbox": [2, 3, 38, 13], "ratio": 0.0625},
                         {"rec": "AB", "bbox": [[10, 20], [30, 20], [30, 30], [10, 30]], "ratio": 0.15625}]},
        {"file_name": "img_2.png", "height": 40, "width": 80,
         "annotations": [{"rec": "x", "bbox": [0, 0, 80, 40], "ratio": 0.0123456789}]},
    ])
    write_image(root / "images/text_data/tt/sub/p.png", 50, 60, seed=3)
    write_json(root / "annotations/text_tt.json", [
        {"file_name": "sub/p.png", "height": 60, "width": 50,
         "annotations": [{"rec": "curvy", "bbox": [5, 10, 45, 12, 44, 30, 6, 28], "ratio": 0.1}]},
    ])
    write_image(root / "images/face_data/wflw/f1.png", 64, 64, seed=4)
    write_json(root / "annotations/face_meta.json", [
        {"image_name": "f1.png", "img_height": 64, "img_width": 64,
         "faces": [{"kps": KPS, "ratio": 0.34, "box": [12, 8, 50, 44], "gt": "person_7"}]},
    ])
    write_video(root / "videos/text_data/ch3/Video_1.mp4", 20)
    write_json(root / "video_annotations/text_ch3.json", [
        {"file_name": "Video_1-frame10.jpg", "video_name": "Video_1", "height": 48, "width": 64,
         "annotations": [{"rec": "LATE", "bbox": [1, 1, 21, 9], "ratio": 0.078125}]},
        {"file_name": "Video_1-frame3.jpg", "video_name": "Video_1", "height": 48, "width": 64,
         "annotations": [{"rec": "EARLY", "bbox": [4, 30, 44, 40], "ratio": 0.125}]},
        {"file_name": "Video_1-frame5.jpg", "video_name": "Video_1", "height": 48, "width": 64, "annotations": []},
    ])
    write_video(root / "videos/face_data/face_clip_3s/clip_a.mp4", 6)
    frame_anns = [[] for _ in range(6)]
    frame_anns[0] = [{"kps": KPS, "ratio": 0.2}]
    frame_anns[4] = [{"kps": KPS, "ratio": 0.21}, {"kps": [[p[0] + 1, p[1]] for p in KPS], "ratio": 0.05}]
    write_json(root / "video_annotations/videoface_meta.json", [
        {"video_name": "clip_a.mp4", "video_height": 48, "video_width": 64, "frame_anns": frame_anns},
    ])
    return root


@pytest.fixture
def release(tmp_path) -> Path:
    return build_release(tmp_path / "TokBench")


# ------------------------------------------------------------------------------------------------ parsing

def test_text_words_boxes_quads_and_ratios(release):
    ds = TokBenchImages(release, subsets=["ic13", "tt"])
    items = {it.id: it for it in ds.items}
    assert sorted(items) == ["ic13/img_1.png", "ic13/img_2.png", "tt/sub/p.png"]
    w1, w2 = items["ic13/img_1.png"].words
    assert (w1.text, w1.box, w1.quad, w1.ratio, w1.frame) == ("Tiredness", (2.0, 3.0, 38.0, 13.0), None, 0.0625, 0)
    assert w2.text == "AB" and w2.box == (10.0, 20.0, 30.0, 30.0)
    assert w2.quad == ((10.0, 20.0), (30.0, 20.0), (30.0, 30.0), (10.0, 30.0))
    assert items["ic13/img_2.png"].words[0].ratio == 0.0123456789  # the file's ratio, bit for bit
    (curvy,) = items["tt/sub/p.png"].words  # flat 8-number quad
    assert curvy.quad == ((5.0, 10.0), (45.0, 12.0), (44.0, 30.0), (6.0, 28.0))
    assert curvy.box == (5.0, 10.0, 45.0, 30.0)
    assert items["tt/sub/p.png"].source == "tokbench/tt"
    assert ds.skipped == []


def test_faces_kps_box_ratio_person(release):
    ds = TokBenchImages(release, subsets="wflw")
    (item,) = ds.items
    assert item.id == "wflw/f1.png" and item.words == ()
    (face,) = item.faces
    assert face.kps == tuple(tuple(p) for p in KPS)
    assert face.box == (12.0, 8.0, 50.0, 44.0) and face.ratio == 0.34 and face.person == "person_7"


def test_image_pixels_are_the_file(release):
    ds = TokBenchImages(release, subsets=["ic13"])
    item = next(it for it in ds.items if it.id == "ic13/img_2.png")
    expected = np.random.default_rng(2).integers(0, 256, (40, 80, 3), dtype=np.uint8)
    px = item.load()
    assert px.shape == (1, 40, 80, 3)
    np.testing.assert_array_equal(px[0], expected)


def test_exif_orientation_matches_cv2(tmp_path):
    import cv2

    root = tmp_path / "rel"
    path = root / "images/text_data/ic15/rot.jpg"
    write_image(path, 40, 30, seed=5, exif_orientation=6)  # stored 40x30, displayed 30x40
    write_json(root / "annotations/text_ic15.json", [
        {"file_name": "rot.jpg", "height": 40, "width": 30,
         "annotations": [{"rec": "ok", "bbox": [1, 1, 29, 39], "ratio": 0.3}]}])
    (item,) = TokBenchImages(root, subsets=["ic15"]).items
    px = item.load()[0]
    ref = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # what the official evaluators read
    assert px.shape == ref.shape == (40, 30, 3)
    assert np.abs(px.astype(int) - ref.astype(int)).mean() < 2.0  # two JPEG decoders, same orientation


def test_video_text_one_item_per_video_with_frames(release):
    ds = TokBenchVideos(release, subsets=["ch3"])
    (item,) = ds.items
    assert item.id == "ch3/Video_1" and item.modality == "video"
    assert item.path.name == "Video_1.mp4" and item.fps == 25.0
    assert [(w.text, w.frame) for w in item.words] == [("EARLY", 2), ("LATE", 9)]  # N-1, sorted by frame
    assert item.words[1].box == (1.0, 1.0, 21.0, 9.0) and item.words[1].ratio == 0.078125
    frames = item.load()
    assert frames.shape == (20, 48, 64, 3)
    for w in item.words:  # frame N-1 of the video is the annotated one (level 10 * index)
        assert abs(float(frames[w.frame].mean()) - 10 * w.frame) < 3


def test_video_faces_per_frame(release):
    ds = TokBenchVideos(release, subsets=["face_clip_3s"])
    (item,) = ds.items
    assert item.id == "face_clip_3s/clip_a.mp4"
    assert [(f.frame, f.ratio) for f in item.faces] == [(0, 0.2), (4, 0.21), (4, 0.05)]
    f = item.faces[0]
    assert f.kps == tuple(tuple(p) for p in KPS)
    assert f.box == (20.5, 15.0, 40.0, 35.0)  # no box in the file: the landmarks' extent


def test_default_subsets_are_the_present_ones(release):
    ds = TokBenchImages(release)
    assert {it.source for it in ds.items} == {"tokbench/ic13", "tokbench/tt", "tokbench/wflw"}
    assert set(ds.absent_subsets) == set(IMAGE_SUBSETS) - {"ic13", "tt", "wflw"}
    assert ds.describe()["absent_subsets"] == ds.absent_subsets
    vids = TokBenchVideos(release)
    assert [it.id for it in vids.items] == ["ch3/Video_1", "face_clip_3s/clip_a.mp4"]
    assert vids.absent_subsets == ["ds"]


def test_release_inside_a_TokBench_folder(tmp_path):
    build_release(tmp_path / "download" / "TokBench")
    assert len(TokBenchImages(tmp_path / "download", subsets=["ic13"]).items) == 2


def test_missing_ratio_uses_the_tokbench_formula(tmp_path):
    root = tmp_path / "rel"
    write_image(root / "images/text_data/cord/r.png", 100, 50)
    write_json(root / "annotations/text_cord.json", [
        {"file_name": "r.png", "annotations": [{"rec": "TOTAL", "bbox": [10, 5, 60, 15]}]}])  # no size either
    (item,) = TokBenchImages(root, subsets=["cord"]).items
    assert item.words[0].ratio == pytest.approx(50 / 5 / 100)


def test_box_within_a_pixel_of_the_edge_is_clamped(tmp_path):
    root = tmp_path / "rel"
    write_image(root / "images/text_data/ic13/e.png", 64, 48)
    write_json(root / "annotations/text_ic13.json", [
        {"file_name": "e.png", "height": 48, "width": 64,
         "annotations": [{"rec": "edge", "bbox": [-0.5, 0, 64.8, 48.4], "ratio": 0.2}]}])
    (item,) = TokBenchImages(root, subsets=["ic13"]).items
    assert item.words[0].box == (0.0, 0.0, 64.0, 48.0)


def test_content_hash_changes_with_annotations(release):
    h1 = TokBenchImages(release, subsets=["ic13"]).content_hash
    data = json.loads((release / "annotations/text_ic13.json").read_text())
    data[0]["annotations"][0]["rec"] = "Tired"
    write_json(release / "annotations/text_ic13.json", data)
    assert TokBenchImages(release, subsets=["ic13"]).content_hash != h1


# ------------------------------------------------------------------------------------------------ bad input

def rewrite(release: Path, rel: str, mutate) -> None:
    path = release / rel
    data = json.loads(path.read_text())
    mutate(data)
    write_json(path, data)


def test_unknown_subset_lists_valid_ones(release):
    with pytest.raises(BadInputError, match=r"unknown TokBench image subset 'ic17'.*ic13 ic15 tt textocr cord sroie "
                                            r"infograph docvqa wflw"):
        TokBenchImages(release, subsets=["ic17"])
    with pytest.raises(BadInputError, match="valid subsets: ch3 ds face_clip_3s"):
        TokBenchVideos(release, subsets=["ic13"])


def test_requested_subset_without_annotation_file(release):
    with pytest.raises(BadInputError, match=r"subset 'sroie': annotation file .*text_sroie.json does not exist"):
        TokBenchImages(release, subsets=["sroie"]).items


def test_path_escaping_the_root(release):
    rewrite(release, "annotations/text_ic13.json", lambda d: d[0].update(file_name="../../../etc/passwd"))
    with pytest.raises(BadInputError,
                       match=r"text_ic13.json entry 0.*'\.\./\.\./\.\./etc/passwd' escapes the data root"):
        TokBenchImages(release, subsets=["ic13"]).items
    rewrite(release, "annotations/text_ic13.json", lambda d: d[0].update(file_name="/etc/passwd"))
    with pytest.raises(BadInputError, match=r"entry 0.*is absolute"):
        TokBenchImages(release, subsets=["ic13"]).items
    rewrite(release, "video_annotations/text_ch3.json", lambda d: d[0].update(video_name="../../x"))
    with pytest.raises(BadInputError,
                       match=r"text_ch3.json entry 0: video_name '\.\./\.\./x': path '\.\./\.\./x' escapes"):
        TokBenchVideos(release, subsets=["ch3"]).items


def test_box_outside_the_image_names_file_and_word(release):
    rewrite(release, "annotations/text_ic13.json",
            lambda d: d[1]["annotations"][0].update(bbox=[10, 5, 95, 30]))
    with pytest.raises(BadInputError,
                       match=r"entry 1 \(img_2.png\) word 0 'x'.*\(95, 30\) lies outside the 80x40 image"):
        TokBenchImages(release, subsets=["ic13"]).items


def test_box_outside_the_image_size_read_from_the_file(tmp_path):
    root = tmp_path / "rel"
    write_image(root / "images/text_data/sroie/s.png", 30, 20)
    write_json(root / "annotations/text_sroie.json", [
        {"file_name": "s.png", "annotations": [{"rec": "far", "bbox": [0, 0, 10, 25], "ratio": 0.1}]}])
    with pytest.raises(BadInputError, match=r"\(s.png\) word 0 'far'.*outside the 30x20 image"):
        TokBenchImages(root, subsets=["sroie"]).items


def test_face_landmark_outside_the_image(release):
    rewrite(release, "annotations/face_meta.json", lambda d: d[0]["faces"][0]["kps"].__setitem__(2, [70, 30]))
    with pytest.raises(BadInputError, match=r"face_meta.json entry 0 \(f1.png\) face 0.*kps point \(70, 30\)"):
        TokBenchImages(release, subsets=["wflw"]).items


def test_missing_image_file_is_named(release):
    (release / "images/text_data/ic13/img_2.png").unlink()
    with pytest.raises(BadInputError, match=r"entry 1: image file .*ic13/img_2.png does not exist"):
        TokBenchImages(release, subsets=["ic13"]).items


def test_missing_images_folder_points_at_archives(release):
    import shutil

    shutil.rmtree(release / "images/text_data/tt")
    (release / "images" / "tt.zip").write_bytes(b"PK")
    with pytest.raises(BadInputError, match=r"text_data/tt does not exist \(archives found .*images/tt.zip; extract"):
        TokBenchImages(release, subsets=["tt"]).items


@pytest.mark.parametrize("content, message", [
    ("", "is empty"), ("  \n", "is empty"), ("[]", "has no entries"), ("{\"a\": 1}", "expected a JSON list"),
    ("[{\"file_name\": ", "is not valid JSON"),
])
def test_empty_or_broken_annotation_file(release, content, message):
    (release / "annotations/text_ic13.json").write_text(content)
    with pytest.raises(BadInputError, match=f"text_ic13.json.*{message}"):
        TokBenchImages(release, subsets=["ic13"]).items


def test_annotation_size_disagreeing_with_the_image(release):
    rewrite(release, "annotations/text_ic13.json", lambda d: d[0].update(width=70))
    item = next(it for it in TokBenchImages(release, subsets=["ic13"]).items if it.id == "ic13/img_1.png")
    with pytest.raises(BadInputError, match=r"img_1.png: annotation says 70x48 but the image is 64x48"):
        item.load()


def test_video_problems(release):
    rewrite(release, "video_annotations/text_ch3.json", lambda d: d[0].update(file_name="Video_1-frame21.jpg"))
    with pytest.raises(BadInputError, match=r"frame 21 of Video_1-frame21.jpg is past the end of .*\(20 frames\)"):
        TokBenchVideos(release, subsets=["ch3"]).items
    rewrite(release, "video_annotations/text_ch3.json", lambda d: d[0].update(file_name="Video_1-frame0.jpg"))
    with pytest.raises(BadInputError, match=r"frame number 0 .* must start at 1"):
        TokBenchVideos(release, subsets=["ch3"]).items
    rewrite(release, "video_annotations/text_ch3.json", lambda d: d[0].update(file_name="Video_1.jpg"))
    with pytest.raises(BadInputError, match=r"'Video_1.jpg' is not '<video>-frame<N>.<ext>'"):
        TokBenchVideos(release, subsets=["ch3"]).items
    rewrite(release, "video_annotations/text_ch3.json",
            lambda d: d[0].update(file_name="Video_1-frame3.jpg"))  # frame 3 is also entry 1
    with pytest.raises(BadInputError, match=r"entry 1: frame 3 of Video_1 is annotated twice"):
        TokBenchVideos(release, subsets=["ch3"]).items
    rewrite(release, "video_annotations/videoface_meta.json", lambda d: d[0].update(video_width=66))
    with pytest.raises(BadInputError, match=r"annotation says 66x48 but .*clip_a.mp4 is 64x48"):
        TokBenchVideos(release, subsets=["face_clip_3s"]).items
    rewrite(release, "video_annotations/videoface_meta.json",
            lambda d: d[0].update(video_width=64, frame_anns=d[0]["frame_anns"] + [[]]))
    with pytest.raises(BadInputError, match=r"frame_anns covers 7 frames but .*clip_a.mp4 has 6"):
        TokBenchVideos(release, subsets=["face_clip_3s"]).items
    (release / "videos/face_data/face_clip_3s/clip_a.mp4").unlink()
    with pytest.raises(BadInputError, match=r"video file .*clip_a.mp4 does not exist"):
        TokBenchVideos(release, subsets=["face_clip_3s"]).items


def test_skip_bad_collects_every_skipped_item(release):
    def mutate(d):
        d[0]["annotations"][0]["bbox"] = [0, 0, 500, 10]  # outside
        d.append({"file_name": "../escape.png", "annotations": []})
        d.append({"file_name": "gone.png", "annotations": []})
        d.append("not an object")
    rewrite(release, "annotations/text_ic13.json", mutate)
    ds = TokBenchImages(release, subsets=["ic13"], skip_bad=True)
    assert [it.id for it in ds.items] == ["ic13/img_2.png"]
    skipped = dict(ds.skipped)
    assert list(skipped) == ["ic13/img_1.png", "ic13/../escape.png", "ic13/gone.png", "ic13/entry 4"]
    assert "outside the 64x48 image" in skipped["ic13/img_1.png"]
    assert "escapes the data root" in skipped["ic13/../escape.png"]
    assert "does not exist" in skipped["ic13/gone.png"]
    assert "expected a JSON object" in skipped["ic13/entry 4"]
    assert ds.describe()["skipped"] == 4


def test_skip_bad_video_frame_entries(release):
    rewrite(release, "video_annotations/text_ch3.json", lambda d: d[0].update(file_name="Video_1-frame99.jpg"))
    ds = TokBenchVideos(release, subsets=["ch3"], skip_bad=True)
    (item,) = ds.items
    assert [w.text for w in item.words] == ["EARLY"]
    assert [sid for sid, _ in ds.skipped] == ["ch3/Video_1-frame99.jpg"]
    (release / "videos/text_data/ch3/Video_1.mp4").unlink()  # every entry of a missing video is reported
    ds = TokBenchVideos(release, subsets=["ch3"], skip_bad=True)
    assert ds.items == []
    assert [(sid, reason.split(":")[0]) for sid, reason in ds.skipped] == [
        ("ch3/Video_1-frame99.jpg", "video_annotations/text_ch3.json entry 0"),
        ("ch3/Video_1-frame3.jpg", "video_annotations/text_ch3.json entry 1"),
        ("ch3/Video_1-frame5.jpg", "video_annotations/text_ch3.json entry 2")]
    assert all("Video_1.mp4 does not exist" in reason for _, reason in ds.skipped)


def test_open_dataset_specs(release):
    ds = open_dataset(f"tokbench:{release}:ic13,wflw")
    assert isinstance(ds, TokBenchImages) and {it.source for it in ds.items} == {"tokbench/ic13", "tokbench/wflw"}
    assert len(open_dataset(f"tokbench:{release}").items) == 4
    vids = open_dataset(f"tokbench-video:{release}:ch3,skip_bad=true")
    assert isinstance(vids, TokBenchVideos) and vids.skip_bad and len(vids.items) == 1
    with pytest.raises(BadInputError, match="unknown TokBench image subset 'ch3'"):
        open_dataset(f"tokbench:{release}:ch3")
    with pytest.raises(BadInputError, match="valid schemes: tokbench, tokbench-video, ucf101, imagenet"):
        open_dataset(f"tokbenhc:{release}")
    with pytest.raises(BadInputError, match="does not exist"):
        open_dataset(f"tokbench:{release}/nope")
    with pytest.raises(BadInputError, match="bad option 'colour=red'"):
        open_dataset(f"tokbench:{release}:ic13,colour=red")
    with pytest.raises(BadInputError, match="unknown dataset 'nothing-registered'"):
        open_dataset("nothing-registered")


# ------------------------------------------------------------------------------------------------ fuzz

json_scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
                | st.text(max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=30)

word_like = st.fixed_dictionaries({}, optional={
    "rec": json_values | st.text(min_size=1, max_size=6),
    "bbox": json_values | st.lists(st.integers(-5, 100) | st.floats(-5, 100), min_size=4, max_size=4)
    | st.lists(st.lists(st.integers(-5, 100), min_size=2, max_size=2), min_size=4, max_size=4),
    "ratio": json_values | st.floats(0, 1), "kps": json_values
    | st.lists(st.lists(st.floats(-5, 100), min_size=2, max_size=2), min_size=5, max_size=5),
    "box": json_values | st.lists(st.integers(-5, 100), min_size=4, max_size=4), "gt": json_values})

entry_like = st.fixed_dictionaries({}, optional={
    "file_name": json_values | st.sampled_from(["a.png", "v-frame3.jpg", "v-frame0.jpg", "../x"]),
    "image_name": json_values | st.just("a.png"), "video_name": json_values | st.just("v"),
    "width": json_values | st.integers(-2, 90), "height": json_values | st.integers(-2, 90),
    "img_width": json_values | st.integers(1, 90), "img_height": json_values | st.integers(1, 90),
    "video_width": json_values | st.integers(1, 90), "video_height": json_values | st.integers(1, 90),
    "annotations": json_values | st.lists(word_like, max_size=3),
    "faces": json_values | st.lists(word_like, max_size=3),
    "frame_anns": json_values | st.lists(st.lists(word_like, max_size=2), max_size=3)})


@st.composite
def corrupted(draw, valid: st.SearchStrategy, always: bool = False):
    """A draw of ``valid`` (a dict) with one field replaced by random JSON or deleted (``always``, or often)."""
    d = dict(draw(valid))
    key = draw(st.sampled_from(sorted(d)) if always else st.none() | st.sampled_from(sorted(d)))
    if key is not None:
        if draw(st.booleans()):
            d[key] = draw(json_scalars | json_values)
        else:
            del d[key]
    return d


_coord = st.floats(-2, 50, allow_nan=False)
_point = st.lists(_coord, min_size=2, max_size=2)
_word = corrupted(st.fixed_dictionaries({
    "rec": st.text(min_size=1, max_size=5),
    "bbox": st.lists(_coord, min_size=4, max_size=4) | st.lists(_point, min_size=4, max_size=4)
    | st.lists(_coord, min_size=8, max_size=8),
    "ratio": st.floats(0, 0.5)}), always=True)
_face = corrupted(st.fixed_dictionaries({
    "kps": st.lists(_point, min_size=5, max_size=5), "ratio": st.floats(0, 1),
    "box": st.lists(_coord, min_size=4, max_size=4), "gt": json_values}), always=True)

NEAR_VALID = {  # well-formed entries of each format, with a field of the entry, of a word or of a face broken
    parse_text_entry: corrupted(st.fixed_dictionaries({
        "file_name": st.just("a.png"), "width": st.just(64), "height": st.just(48),
        "annotations": st.lists(_word | json_scalars, min_size=1, max_size=3)})),
    parse_face_entry: corrupted(st.fixed_dictionaries({
        "image_name": st.just("a.png"), "img_width": st.just(64), "img_height": st.just(48),
        "faces": st.lists(_face | json_scalars, min_size=1, max_size=3)})),
    parse_video_text_entry: corrupted(st.fixed_dictionaries({
        "file_name": st.integers(0, 30).map(lambda n: f"v-frame{n}.jpg"), "video_name": st.just("v"),
        "width": st.just(64), "height": st.just(48), "annotations": st.lists(_word | json_scalars, min_size=1, max_size=3)})),
    parse_video_face_entry: corrupted(st.fixed_dictionaries({
        "video_name": st.just("v.mp4"), "video_width": st.just(64), "video_height": st.just(48),
        "frame_anns": st.lists(st.lists(_face | json_scalars, max_size=2) | json_scalars,
                               min_size=1, max_size=3)})),
}


def _parse_or_bad_input(parse, raw, with_size):
    try:
        parse(raw, "fuzz entry 0", size_of=(lambda _name: (64, 48)) if with_size else None)
    except BadInputError as e:
        assert str(e).startswith("fuzz entry 0")


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), parse=st.sampled_from(list(NEAR_VALID)), with_size=st.booleans())
def test_annotation_parsers_on_near_valid_entries(data, parse, with_size):
    _parse_or_bad_input(parse, data.draw(NEAR_VALID[parse]), with_size)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=entry_like | json_values, with_size=st.booleans())
def test_annotation_parsers_on_random_json(raw, with_size):
    for parse in NEAR_VALID:
        _parse_or_bad_input(parse, raw, with_size)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(entries=st.lists(entry_like, max_size=4) | json_values)
def test_release_loader_on_random_annotation_files(tmp_path_factory, entries):
    root = tmp_path_factory.mktemp("fuzz")
    write_image(root / "images/text_data/ic13/a.png", 64, 48)
    write_json(root / "annotations/text_ic13.json", entries)
    for skip_bad in (False, True):
        ds = TokBenchImages(root, subsets=["ic13"], skip_bad=skip_bad)
        try:
            items = ds.items
        except BadInputError:
            continue
        for it in items:
            for w in it.words:
                assert 0 <= w.box[0] < w.box[2] <= 64 and 0 <= w.box[1] < w.box[3] <= 48
