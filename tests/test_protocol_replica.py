"""Protocol ``tokbench`` replicates the official scripts rule by rule; ``tokbench-clean`` keeps the fixes.

One small release in the official layout (its annotation JSON formats) holds every case a rule acts on:
.jpg and .png originals, an EXIF-rotated image, a landmark 0.5 px outside the frame, a box 1.5 px outside,
a 1-px-wide word, a quadrilateral, a word outside the french vocabulary and a video whose size hits the
official rounding. Each test fails when its rule is dropped from the official rules.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tokbench import harness
from tokbench.data.external import open_dataset
from tokbench.data.items import Item, Word
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.evaluators.crops import crop_words
from tokbench.evaluators.ocr_batches import french_vocab, official_batches
from tokbench.metrics.base import Sample
from tokbench.protocols import CLEAN_RULES, OFFICIAL_RULES, get_protocol

W_VID, H_VID, S_VID = 715, 704, 480  # 715 * 480 / 704 = 487.5 exactly; 715 * (480 / 704) rounds to 487.49999...


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _image(path: Path, w: int, h: int, seed: int, exif_orientation: int | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 7 + seed * 40) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    kwargs = {"quality": 95} if path.suffix == ".jpg" else {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    Image.fromarray(arr).save(path, **kwargs)
    with Image.open(path) as im:  # the stored pixels (JPEG decoded), without any orientation
        return np.asarray(im.convert("RGB"))


def _video(path: Path, w: int, h: int, frames: int = 2) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"  # 4:4:4 allows the odd width
        for i in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((h, w, 3), 20 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


KPS_OUT = [[-0.5, 20.0], [40.0, 20.0], [30.0, 30.0], [22.0, 40.0], [38.0, 40.0]]  # first point 0.5 px outside
QUAD = [[10, 20], [30.7, 22.2], [29.5, 32.9], [9, 30]]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("replica") / "TokBench"
    pix = {"a.jpg": _image(root / "images/text_data/ic13/a.jpg", 64, 48, 1),
           "b.png": _image(root / "images/text_data/ic13/b.png", 80, 40, 2),
           "rot.jpg": _image(root / "images/text_data/ic13/rot.jpg", 40, 60, 3, exif_orientation=6),
           "f.jpg": _image(root / "images/face_data/wflw/f.jpg", 64, 64, 4, exif_orientation=6)}
    _json(root / "annotations/text_ic13.json", [
        {"file_name": "a.jpg", "height": 48, "width": 64, "annotations": [
            {"rec": "Tiredness", "bbox": [2, 3, 38, 13], "ratio": 0.05},
            {"rec": "I", "bbox": [40, 5, 41, 20], "ratio": 0.02},  # 1 px wide
            {"rec": "AB", "bbox": QUAD, "ratio": 0.15},
            {"rec": "Straße", "bbox": [5, 30, 40, 44], "ratio": 0.09}]},  # ß is not in the french vocab
        {"file_name": "b.png", "height": 40, "width": 80, "annotations": [
            {"rec": "x", "bbox": [0, 0, 80, 40], "ratio": 0.5},
            {"rec": "edge", "bbox": [60, 5, 81.5, 20], "ratio": 0.07}]},  # 1.5 px outside the frame
        {"file_name": "rot.jpg", "height": 60, "width": 40, "annotations": [  # boxes in stored orientation
            {"rec": "up", "bbox": [2, 40, 30, 58], "ratio": 0.3}]},
    ])
    _json(root / "annotations/face_meta.json", [
        {"image_name": "f.jpg", "img_height": 64, "img_width": 64,
         "faces": [{"kps": KPS_OUT, "ratio": 0.3, "box": [0, 10, 50, 50], "gt": 1}]}])
    _video(root / f"videos/text_data/ch3/V.mp4", W_VID, H_VID)
    _json(root / "video_annotations/text_ch3.json", [
        {"file_name": "V-frame1.jpg", "video_name": "V", "height": H_VID, "width": W_VID,
         "annotations": [{"rec": "LATE", "bbox": [10, 10, 11, 30], "ratio": 0.01}]}])
    return {"root": root, "pix": pix}


def _items(release, rules, subsets="ic13"):
    ds = open_dataset(f"tokbench:{release['root']}:{subsets}", skip_bad=True, rules=rules)
    return {it.id: it for it in ds.items}, ds


# ------------------------------------------------------------------------------------------------ rule 1


def test_rule1_jpg_reconstruction_resaved_at_pil_defaults_png_lossless(release, tmp_path, isolated_cache):
    """identity reconstructs exactly; under the official rules the .jpg item's reconstruction is the PIL
    default JPEG round trip (quality 75, 4:2:0) and the .png one stays lossless."""
    from tokbench.pipeline import RunConfig, run

    def psnr_by_item(protocol):
        rep = run(RunConfig(tokenizer="identity", suite="text", resolutions=[256], protocol=protocol,
                            datasets=[f"tokbench:{release['root']}:ic13"], metrics=["psnr"], skip_bad=True,
                            out=str(tmp_path / protocol.replace(":", "_")), quiet=True))
        rows = rep.rows[rep.rows["level"] == "image"]
        return dict(zip(rows["item"], rows["PSNR"])), rep.manifest

    official, man = psnr_by_item("offline:official")
    clean, _ = psnr_by_item("offline")
    buf = io.BytesIO()
    Image.fromarray(release["pix"]["a.jpg"]).save(buf, format="JPEG")  # PIL defaults
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.info.get("progressive") is None and im.layer[0][1:3] == (2, 2)  # 4:2:0 luma sampling
        resaved = np.asarray(im.convert("RGB")).astype(np.float64)
    mse = np.mean((resaved - release["pix"]["a.jpg"]) ** 2)
    assert official["ic13/a.jpg"] == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-4)  # float32 PSNR
    assert 25 < official["ic13/a.jpg"] < 60  # lossy, unlike the lossless reconstruction
    assert official["ic13/b.png"] == clean["ic13/a.jpg"]  # both lossless: identical pixels
    assert not np.isfinite(clean["ic13/a.jpg"]) or clean["ic13/a.jpg"] > 90
    assert man["protocol"]["rules"]["resave"] == "jpg-names" and man["protocol"]["name"] == "offline:official"
    assert "quality 75" in man["harness"]["reencode"]


def test_resave_format_follows_the_file_name_like_pil():
    assert harness.resave_format("x.jpg", "jpg-names") == harness.resave_format("X.JPEG", "jpg-names") == "JPEG"
    assert harness.resave_format("x.png", "jpg-names") is None and harness.resave_format("x.jpg", "none") is None
    assert harness.resave_format("x.png", "all") == "JPEG"
    frame = np.random.default_rng(0).integers(0, 256, (1, 16, 24, 3), dtype=np.uint8)
    assert not np.array_equal(harness.resave(frame, "JPEG"), frame)
    assert harness.resave(frame, None) is frame


# ------------------------------------------------------------------------------------------------ rule 2


def _random_parseq(seed=0):
    import torch
    from doctr.datasets import VOCABS
    from doctr.models import recognition

    torch.manual_seed(seed)
    return recognition.parseq(pretrained=False, vocab=VOCABS["french"], input_shape=(3, 32, 128)).eval()


def test_rule2_bounded_decoding_equals_doctr_forward_with_the_batch_targets():
    """The official evaluator calls model(x, targets): decoding stops at the batch's longest GT word."""
    import torch

    from tokbench.evaluators.parseq_engine import PARSeqEngine

    model = _random_parseq()
    engine = PARSeqEngine.from_model(model)
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (int(rng.integers(8, 30)), int(rng.integers(20, 90)), 3), dtype=np.uint8)
             for _ in range(5)]
    targets = ["ab", "Tired", "xyz", "q", "élan"]  # longest: 5
    bounded = engine.recognize(crops, max_lengths=[5] * 5)
    with torch.inference_mode():
        ref = model(engine._batch(crops), targets, return_preds=True)["preds"]
    assert bounded == [w for w, _ in ref]
    assert all(len(w) <= 5 + 1 for w in bounded)  # cap positions + the EOS position
    free = engine.recognize(crops)
    assert max(map(len, free)) > 6  # random weights rarely emit EOS: unbounded words run long
    assert bounded != free


def test_rule2_official_batches_of_64_cap_and_skip():
    vocab = french_vocab()
    items = [Item(id=f"s/{k}", modality="image", path=Path(f"{k}.jpg"), source="tokbench/s",
                  words=tuple(Word(text="w" * (12 if k == j == 0 else 1 + (k * 10 + j) % 7), box=(0, 0, 4, 4),
                                   ratio=0.1)
                              for j in range(10))) for k in range(7)]
    items.append(Item(id="s/oov", modality="image", path=Path("oov.jpg"), source="tokbench/s",
                      words=(Word(text="Straße", box=(0, 0, 4, 4), ratio=0.1),)))
    out = official_batches(items, vocab)
    flat = [b for it in items for b in out[it.id]]
    assert [b.batch for b in flat] == [i // 64 for i in range(71)]
    assert {b.cap for b in flat[:64]} == {12}  # the first word is the longest of batch 0
    assert {b.cap for b in flat[64:]} == {7}  # the last 6 words of item 6 (longest 7) and "Straße"
    assert all(b.skipped_for == "ß" for b in flat[64:]) and not any(b.skipped_for for b in flat[:64])


def test_rule2_skipped_batch_words_are_excluded_and_counted(release):
    from tokbench.evaluators.parseq_engine import PARSeqEngine
    from tokbench.metrics.text import TextFidelity

    items, ds = _items(release, OFFICIAL_RULES)
    batches = official_batches(ds.items, french_vocab())
    item = items["ic13/a.jpg"]
    assert [b.skipped_for for b in batches[item.id]] == ["ß"] * 4  # the subset's 7 words share batch 0
    metric = TextFidelity(PARSeqEngine.from_model(_random_parseq()), rules=OFFICIAL_RULES)
    pixels = item.load()
    sample = Sample(item, pixels, pixels, {"ocr_batches": batches[item.id]})
    rows = metric.score(sample, metric.reference(sample))
    assert all(np.isnan(r["T-ACC"]) and "outside the french vocabulary" in r["excluded"] for r in rows)
    clean = TextFidelity(PARSeqEngine.from_model(_random_parseq()), rules=CLEAN_RULES)
    s2 = Sample(item, pixels, pixels)
    assert sum(np.isfinite(r["T-ACC"]) for r in clean.score(s2, clean.reference(s2))) == 3  # all but the 1-px word


# ------------------------------------------------------------------------------------------------ rule 3


def test_rule3_text_read_without_exif_face_as_cv2_imread(release):
    import cv2

    official, _ = _items(release, OFFICIAL_RULES, "ic13,wflw")
    clean, ds = _items(release, CLEAN_RULES, "ic13,wflw")
    stored = release["pix"]["rot.jpg"]
    assert np.array_equal(official["ic13/rot.jpg"].load()[0], stored)  # stored orientation, as PIL reads it
    with pytest.raises(BadInputError, match="annotation says 40x60 but the image is 60x40"):
        clean["ic13/rot.jpg"].load()  # oriented, it no longer fits its annotation
    bgr = cv2.imread(str(release["root"] / "images/face_data/wflw/f.jpg"), cv2.IMREAD_COLOR)
    face = official["wflw/f.jpg"].load()[0]
    assert np.array_equal(face, bgr[:, :, ::-1])  # cv2.imread applies the EXIF orientation
    assert not np.array_equal(face, release["pix"]["f.jpg"])


# ------------------------------------------------------------------------------------------------ rule 4


def test_rule4_raw_landmarks_numpy_boxes_and_outside_boxes_scored(release):
    official, _ = _items(release, OFFICIAL_RULES, "ic13,wflw")
    clean, ds = _items(release, CLEAN_RULES, "ic13,wflw")
    assert official["wflw/f.jpg"].faces[0].kps[0] == (-0.5, 20.0)  # raw
    assert clean["wflw/f.jpg"].faces[0].kps[0] == (0.0, 20.0)  # clamped
    assert "ic13/b.png" in official and "ic13/b.png" not in clean  # 1.5 px outside: scored vs refused
    item = official["ic13/b.png"]
    pixels = item.load()[0]
    cut = crop_words(pixels, item.words, item.id, box_cut="numpy", quad_cut="doctr-rcrops", min_side=0)
    assert np.array_equal(cut.crops[1], pixels[5:20, 60:81])  # numpy slicing stops at the edge
    assert any("b.png" in why and "outside" in why for _, why in ds.skipped)  # the clean loader refuses it


def test_rule4_numpy_box_cut_equals_doctr_extract_crops():
    from doctr.utils.geometry import extract_crops

    image = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    box = (-1.7, 2.9, 25.99, 28.2)
    words = [Word(text="w", box=box, ratio=0.1)]
    ours = crop_words(image, words, box_cut="numpy", min_side=0)
    ref = extract_crops(image, np.array([box], dtype=np.float32).astype(int))[0]
    assert ours.crops == [] and ref.size == 0  # a negative start counts from the far edge: empty, excluded
    box = (0.6, 2.9, 41.5, 28.2)
    ours = crop_words(image, [Word(text="w", box=box, ratio=0.1)], box_cut="numpy", min_side=0).crops[0]
    assert np.array_equal(ours, extract_crops(image, np.array([box], dtype=np.float32).astype(int))[0])


# ------------------------------------------------------------------------------------------------ rule 5


def test_rule5_tiny_crops_scored_for_images_skipped_for_video(release):
    items, _ = _items(release, OFFICIAL_RULES)
    item = items["ic13/a.jpg"]
    pixels = item.load()
    official = crop_words(pixels, item.words, item.id, box_cut="numpy", quad_cut="doctr-rcrops",
                          min_side=OFFICIAL_RULES.min_crop_px_image)
    clean = crop_words(pixels, item.words, item.id)
    assert 1 in official.kept and official.crops[official.kept.index(1)].shape[:2] == (15, 1)
    assert 1 in clean.excluded
    video = crop_words(pixels, item.words, item.id, box_cut="numpy", quad_cut="doctr-rcrops",
                       min_side=OFFICIAL_RULES.min_crop_px_video)
    assert 1 in video.excluded


# ------------------------------------------------------------------------------------------------ rule 6


def test_rule6_quad_cut_as_doctr_extract_rcrops(release):
    from doctr.utils.geometry import extract_rcrops

    items, _ = _items(release, OFFICIAL_RULES)
    item = items["ic13/a.jpg"]
    pixels = item.load()[0]
    quad_word = item.words[2]
    ours = crop_words(pixels, [quad_word], box_cut="numpy", quad_cut="doctr-rcrops", min_side=0).crops[0]
    ref = extract_rcrops(pixels, np.array([quad_word.quad], dtype=np.float32).astype(int))[0]
    assert ours.shape == ref.shape == (10, 20, 3)  # (int(d2), int(d1)) of the int-cast first three corners
    assert np.array_equal(ours, ref)
    clean = crop_words(pixels, [quad_word]).crops[0]
    assert clean.shape != ref.shape


# ------------------------------------------------------------------------------------------------ rule 7


def test_rule7_video_resize_rounding(release):
    from tokbench.tokenizers.registry import create_tokenizer

    ds = open_dataset(f"tokbench-video:{release['root']}:ch3", rules=OFFICIAL_RULES)
    (item,) = ds.items
    video = item.load()
    assert video.shape[1:3] == (H_VID, W_VID)
    spec = create_tokenizer("resize").spec
    official = harness.plan_video(H_VID, W_VID, S_VID, spec, rounding=OFFICIAL_RULES.video_rounding)
    exact = harness.plan_video(H_VID, W_VID, S_VID, spec, rounding=CLEAN_RULES.video_rounding)
    assert official.fit_w == int(round(W_VID * (S_VID / H_VID))) == 487
    assert exact.fit_w == round(W_VID * S_VID / H_VID) == 488


# ------------------------------------------------------------------------------------------------ protocols


def test_protocols_record_every_rule_and_overrides_rename():
    tb, clean = get_protocol("tokbench"), get_protocol("tokbench-clean")
    assert tb.rules == OFFICIAL_RULES and clean.rules == CLEAN_RULES
    assert (tb.ocr_engine, tb.face_backend) == (clean.ocr_engine, clean.face_backend) == ("parseq", "insightface")
    assert tb.comparable_with and not clean.comparable_with
    assert set(tb.describe()["rules"]) == {"name", "resave", "video_reencode", "exif_text", "exif_face",
                                           "clamp_geometry", "box_cut", "min_crop_px_image", "min_crop_px_video",
                                           "quad_cut", "video_rounding",
                                           "ocr_batches"}
    p = get_protocol("offline:official,resave=all")
    assert p.name == "offline:official,resave=all" and p.rules.resave == "all" and not p.comparable_with
    assert get_protocol("tokbench:official") is tb
    with pytest.raises(BadInputError, match="resave takes one of"):
        get_protocol("offline:resave=lossy")


def test_leaderboard_marks_old_tokbench_runs_clean():
    from tokbench.leaderboard.catalog import protocol_of

    assert protocol_of({"protocol": {"name": "tokbench"}}) == "tokbench-clean"  # before rules were recorded
    assert protocol_of({"protocol": get_protocol("tokbench").describe()}) == "tokbench"
    assert protocol_of({"protocol": get_protocol("tokbench-clean").describe()}) == "tokbench-clean"


# ------------------------------------------------------------------------------------------------ weights


def test_tokbench_protocol_names_each_missing_weight_file(release, tmp_path, isolated_cache, monkeypatch):
    from tokbench.pipeline import RunConfig, Runner
    from tokbench.weights import weights_dir

    monkeypatch.setenv("TOKBENCH_WEIGHTS", str(tmp_path / "w"))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "glintr100.onnx").write_bytes(b"")  # an interrupted download
    cfg = RunConfig(tokenizer="identity", suite="text-face", protocol="tokbench", resolutions=[256],
                    datasets=[f"tokbench:{release['root']}:ic13"], metrics=["text", "face"], skip_bad=True,
                    out=str(tmp_path / "o"), quiet=True)
    with pytest.raises(MissingWeightsError) as e:
        Runner(cfg)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"parseq-56125471.pt" in msg and str(weights_dir() / "parseq-56125471.pt") in msg
    assert "glintr100.onnx" in msg and str(weights_dir() / "glintr100.onnx") in msg
    assert f"removed partial download {tmp_path / 'w' / 'glintr100.onnx'}" in msg
    assert not (tmp_path / "w" / "glintr100.onnx").exists()
    cfg.allow_missing_evaluators = True
    runner = Runner(cfg)
    assert set(runner.unavailable) == {"text", "face"}


def test_cli_missing_weights_one_line_exit_2(release, tmp_path):
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TOKBENCH_OFFLINE": "1",
           "HOME": str(tmp_path), "TOKBENCH_CACHE": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "tokbench", "run", "-t", "identity", "--protocol", "tokbench",
                           "--data", f"tokbench:{release['root']}:ic13", "--metrics", "text", "face", "--skip-bad",
                           "-r", "256", "--out", str(tmp_path / "o"), "-q"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "parseq-56125471.pt" in lines[0] and "glintr100.onnx" in lines[0], proc.stderr


def test_rule2_runner_counts_the_skipped_words(release, tmp_path, isolated_cache):
    from tokbench.pipeline import RunConfig, Runner

    runner = Runner(RunConfig(tokenizer="identity", suite="text", protocol="offline:official", resolutions=[256],
                              datasets=[f"tokbench:{release['root']}:ic13"], metrics=["text"], skip_bad=True,
                              out=str(tmp_path / "o"), quiet=True))
    assert runner.ocr_batch_skips() == {"tokbench": {"words": 7, "batches": 1, "characters": "ß"}}
    clean = Runner(RunConfig(tokenizer="identity", suite="text", protocol="offline", resolutions=[256],
                             datasets=[f"tokbench:{release['root']}:ic13"], metrics=["text"], skip_bad=True,
                             out=str(tmp_path / "o"), quiet=True))
    assert clean.ocr_batch_skips() == {}
