"""Bad inputs through the whole command: one error naming the item, or with --skip-bad the item is skipped
and listed; good items are never lost. Plus concurrent runs into one reports folder."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from test_loaders_tokbench import build_release, rewrite, write_video
from tokbench import harness
from tokbench.report import load_report
from tokbench.tokenizers import create_tokenizer, TokenizerSpec

ROOT = Path(__file__).resolve().parent.parent
GOOD_IMAGE_ITEMS = {"ic13/img_1.png", "ic13/img_2.png", "wflw/f1.png"}


def _cli(args, tmp_path):
    env = dict(os.environ, TOKBENCH_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "tokbench", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


def corrupt_image(root):
    (root / "images/text_data/ic13/img_2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return "ic13/img_2.png", "img_2.png"


def box_outside(root):
    rewrite(root, "annotations/text_ic13.json", lambda d: d[1]["annotations"][0].update(bbox=[10, 5, 95, 30]))
    return "ic13/img_2.png", "img_2.png"


def path_escape(root):
    rewrite(root, "annotations/text_ic13.json", lambda d: d[1].update(file_name="../../../etc/passwd"))
    return None, "escapes the data root"


def empty_annotations(root):
    (root / "annotations/text_ic13.json").write_text("")
    return None, "text_ic13.json"


def missing_file(root):
    (root / "images/text_data/ic13/img_2.png").unlink()
    return "ic13/img_2.png", "img_2.png"


CASES = [corrupt_image, box_outside, path_escape, empty_annotations, missing_file]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_bad_image_input_is_named_and_skippable(case, tmp_path):
    root = build_release(tmp_path / "TokBench")
    bad_item, needle = case(root)
    base = ["run", "-t", "jpeg", "-s", "text-face", "-r", "256", "--quiet", "--data", f"tokbench:{root}:ic13,wflw",
            "--out", str(tmp_path / "out"), "--name", "r"]
    r = _cli(base, tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr
    r = _cli(base + ["--skip-bad"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = load_report(tmp_path / "out" / "r")
    skipped = rep.manifest["skipped"]
    assert skipped and any(needle in why for _, why in skipped)
    reported = set(rep.rows.loc[rep.rows.level == "image", "item"])
    if bad_item:
        assert bad_item not in reported
        expected_good = GOOD_IMAGE_ITEMS - {bad_item}
    else:  # a broken annotation file drops only that subset's entries
        expected_good = {i for i in GOOD_IMAGE_ITEMS if not i.startswith("ic13/")} if "json" in needle else \
            GOOD_IMAGE_ITEMS - {"ic13/img_2.png"}
    assert expected_good <= reported  # nothing good is lost


def test_unknown_subset_lists_valid_ones(tmp_path):
    root = build_release(tmp_path / "TokBench")
    r = _cli(["run", "-t", "jpeg", "--quiet", "--data", f"tokbench:{root}:ic17"], tmp_path)
    assert r.returncode == 2 and "ic17" in r.stderr and "ic13" in r.stderr


def test_truncated_video_is_named_and_skippable(tmp_path):
    root = build_release(tmp_path / "TokBench")
    clip = root / "videos/face_data/face_clip_3s/clip_a.mp4"
    write_video(clip, 24)
    data = clip.read_bytes()
    rewrite(root, "video_annotations/videoface_meta.json",
            lambda d: d[0].update(frame_anns=d[0]["frame_anns"] + [[] for _ in range(18)]))
    clip.write_bytes(data[: len(data) * 2 // 3])
    base = ["run", "-t", "identity", "-s", "video", "--quiet", "--data", f"tokbench-video:{root}",
            "--out", str(tmp_path / "out"), "--name", "v"]
    r = _cli(base, tmp_path)
    assert r.returncode == 2 and "clip_a.mp4" in r.stderr, r.stderr[-2000:]
    r = _cli(base + ["--skip-bad"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = load_report(tmp_path / "out" / "v")
    assert any("clip_a" in item for item, _ in rep.manifest["skipped"])
    assert "ch3/Video_1" in set(rep.rows["item"])


def test_concurrent_runs_into_one_reports_folder(tmp_path):
    env = dict(os.environ, TOKBENCH_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "reports"
    cmds = [[sys.executable, "-m", "tokbench", "run", "-t", t, "-s", "text-face", "--data", "package-images",
             "--limit", "3", "-r", "256", "--quiet", "--out", str(out)]
            for t in ("jpeg:quality=30", "jpeg:quality=30", "webp:quality=30")]
    procs = [subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()[-2000:]
    folders = sorted(d.name for d in out.iterdir())
    assert len(folders) == 2  # the two identical runs share one folder, written atomically
    for d in out.iterdir():
        rep = load_report(d)
        assert len(rep.rows) == 3 and json.loads((d / "manifest.json").read_text())["suite"] == "text-face"
        assert not list(d.glob(".*.tmp"))


@pytest.mark.parametrize("bad,match", [(float("inf"), "NaN/Inf"), (float("-inf"), "NaN/Inf")])
def test_infinite_output_is_refused(bad, match):
    spec = TokenizerSpec(name="t", family="t", kind="baseline")
    y = torch_full((1, 3, 1, 4, 4), bad)
    with pytest.raises(Exception, match=match):
        harness.to_uint8(y, spec, (1, 3, 1, 4, 4), "t", "item")


def torch_full(shape, value):
    import torch

    return torch.full(shape, value)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 700), w=st.integers(1, 700), size=st.sampled_from([256, 512, 1024]),
       multiple=st.sampled_from([1, 8, 16, 64]), square=st.booleans())
def test_padding_round_trip_fuzz(h, w, size, multiple, square):
    """Any image size: the canvas satisfies the spec, the pasted region is the fitted image, and with no fit
    (native resolution) the round trip is exact."""
    spec = TokenizerSpec(name="f", family="t", kind="baseline", spatial_multiple=multiple, square_only=square)
    g = harness.plan_image(h, w, size, spec)
    assert g.canvas_h % multiple == 0 and g.canvas_w % multiple == 0
    assert (not square) or g.canvas_h == g.canvas_w
    assert g.fit_h <= g.canvas_h and g.fit_w <= g.canvas_w and max(g.fit_h, g.fit_w) == size
    assert abs(g.fit_w / g.fit_h - w / h) <= max(1 / g.fit_h, 1 / g.fit_w) * (w / h + 1) + 1e-9
    img = np.random.default_rng(h * 1000 + w).integers(0, 256, (1, min(h, 64), min(w, 64), 3), dtype=np.uint8)
    native = harness.plan_image(img.shape[1], img.shape[2], None, spec)
    assert np.array_equal(harness.from_canvas(harness.to_canvas(img, native), native), img)
    out = harness.from_canvas(harness.to_canvas(img, harness.plan_image(img.shape[1], img.shape[2], size, spec)),
                              harness.plan_image(img.shape[1], img.shape[2], size, spec))
    assert out.shape == img.shape


def test_identity_tokenizer_survives_fuzzed_sizes():
    tok = create_tokenizer("identity")
    rng = np.random.default_rng(3)
    for _ in range(10):
        h, w = rng.integers(1, 300, 2)
        im = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        assert np.array_equal(harness.reconstruct_images(tok, [im], 256, ["x"])[0].pixels, im)
