"""Official rules, video: reconstructions go through the official scripts' mp4 save and read-back.

The official video scripts write every reconstruction with ``imageio.get_writer(path, fps=source_fps)`` and the
evaluators decode it with ``imageio.get_reader(path, "ffmpeg")``. These tests compare tokbench's re-encode with
that imageio path itself (same frames, same settings), pin the settings imageio really uses (x264's CRF 23, not
the documented quality 5; frames stretched up to a multiple of 16), and check that only the official rules
apply it.
"""
from __future__ import annotations

import json
import re
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tokbench import harness
from tokbench.errors import TokbenchError
from tokbench.protocols import CLEAN_RULES, OFFICIAL_RULES, get_protocol

W, H, T = 70, 44, 4  # neither side a multiple of 16: written as 80 x 48
NTSC = Fraction(30000, 1001)


def _frames(t: int = T, h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(xx * 9 + 5 * i) % 256, (yy * 7 + 3 * i) % 256, ((xx + yy) * 4 + i) % 256], -1)
                     for i in range(t)]).astype(np.uint8)


def _write_source(path: Path, frames: np.ndarray, rate=NTSC) -> None:
    """A lossless (4:4:4, qp 0) source at an NTSC rate, so that the fps imageio reads is the rounded 29.97."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _imageio_round_trip(frames: np.ndarray, fps: float, path: Path, **writer_kwargs) -> np.ndarray:
    """The official scripts' save and the evaluators' read, through imageio itself."""
    import imageio.v2 as iio

    writer = iio.get_writer(str(path), fps=fps, **writer_kwargs)
    for f in frames:
        writer.append_data(f)
    writer.close()
    reader = iio.get_reader(str(path), "ffmpeg")
    out = np.stack([f for f in reader])
    reader.close()
    return out


def test_reencode_equals_imageio_writer_and_reader(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as iio

    frames = _frames()
    _write_source(tmp_path / "src.mp4", frames)
    reader = iio.get_reader(str(tmp_path / "src.mp4"), "ffmpeg")
    fps = reader.get_meta_data()["fps"]  # what the official scripts pass to the writer
    reader.close()
    assert fps == 29.97 == harness.reported_fps(float(NTSC)) and harness.reported_fps(25.0) == 25.0

    ours = harness.reencode_mp4(frames, float(NTSC), "clip")
    # imageio with its defaults, tokbench's one pinned setting added (x264's thread count)
    ref = _imageio_round_trip(frames, fps, tmp_path / "ref.mp4", output_params=["-threads", str(harness.MP4_THREADS)])
    assert ref.shape == (T, 48, 80, 3) == (T, *harness.mp4_size(H, W), 3)  # read back at the stretched size
    assert np.array_equal(ours, ref[:, :H, :W])  # the evaluators index it with the original's coordinates
    assert ours.shape == frames.shape and not np.array_equal(ours, frames)
    assert ref[:, H:, :, :].mean() > 40 and ref[:, :, W:, :].mean() > 40  # stretched content, not black padding


def test_imageio_default_writer_is_crf_23_libx264_yuv420p(tmp_path):
    """imageio documents quality=5 (CRF 25) but only passes a quality the caller gives, so x264's CRF 23
    applies; the x264 settings string in the stream says so."""
    pytest.importorskip("imageio_ffmpeg")
    _imageio_round_trip(_frames(), 29.97, tmp_path / "default.mp4")
    sei = re.search(rb"x264 - core \d+.*? options: ([^\x00]*)", (tmp_path / "default.mp4").read_bytes()).group(1)
    options = dict(kv.split("=", 1) for kv in sei.decode().split())
    assert options["rc"] == "crf" and options["crf"] == "23.0"
    assert harness.mp4_encoder()["codec"] == "libx264" and harness.mp4_encoder()["pix_fmt"] == "yuv420p"
    import av

    with av.open(str(tmp_path / "default.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height) == ("h264", "yuv420p", 80, 48)
        assert s.average_rate == Fraction(2997, 100)


def _release(root: Path) -> Path:
    _write_source(root / "videos/text_data/ch3/V.mp4", _frames())
    (root / "video_annotations").mkdir(parents=True, exist_ok=True)
    (root / "video_annotations/text_ch3.json").write_text(json.dumps([
        {"file_name": "V-frame1.jpg", "video_name": "V", "height": H, "width": W,
         "annotations": [{"rec": "LATE", "bbox": [10, 10, 40, 30], "ratio": 0.02}]}]))
    return root


def test_official_rules_reencode_video_reconstructions_clean_stays_lossless(tmp_path, isolated_cache):
    pytest.importorskip("imageio_ffmpeg")
    from tokbench.pipeline import RunConfig, run

    root = _release(tmp_path / "TokBench")

    def go(protocol):
        rep = run(RunConfig(tokenizer="identity", suite="video", resolutions=[256], protocol=protocol,
                            datasets=[f"tokbench-video:{root}:ch3"], metrics=["psnr"], quiet=True,
                            out=str(tmp_path / protocol.replace(":", "_"))))
        return float(rep.rows[rep.rows["level"] == "video"]["PSNR"].iloc[0]), rep.manifest

    official, man = go("offline:official")
    clean, clean_man = go("offline")
    with __import__("av").open(str(root / "videos/text_data/ch3/V.mp4")) as c:  # the decoded original
        source = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    expected = harness.reencode_mp4(source, float(NTSC), "V")
    mse = np.mean((expected.astype(np.float64) - source) ** 2)
    assert official == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-3)
    assert 10 < official < 45  # lossy
    assert not np.isfinite(clean) or clean > 90  # identity, lossless
    assert man["protocol"]["rules"]["video_reencode"] == "imageio-mp4"
    assert man["harness"]["mp4_encoder"]["threads"] == harness.MP4_THREADS
    assert "multiple of 16" in man["harness"]["video_reencode"]
    assert clean_man["protocol"]["rules"]["video_reencode"] == "none" and clean_man["harness"]["mp4_encoder"] is None


def test_rules_and_protocols_name_the_video_reencode():
    assert OFFICIAL_RULES.video_reencode == "imageio-mp4" and CLEAN_RULES.video_reencode == "none"
    assert get_protocol("tokbench").rules.video_reencode == "imageio-mp4"
    assert get_protocol("tokbench-clean").rules.video_reencode == "none"
    p = get_protocol("tokbench:official,video_reencode=none")
    assert p.name == "tokbench:official,video_reencode=none" and not p.comparable_with


def test_missing_imageio_ffmpeg_is_one_line_naming_the_extra(tmp_path, isolated_cache, monkeypatch):
    from tokbench.pipeline import RunConfig, Runner

    root = _release(tmp_path / "TokBench")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if not installed
    with pytest.raises(TokbenchError, match=r"imageio-ffmpeg.*tokbench\[official-video\]") as e:
        Runner(RunConfig(tokenizer="identity", suite="video", resolutions=[256], protocol="offline:official",
                         datasets=[f"tokbench-video:{root}:ch3"], metrics=["psnr"], quiet=True,
                         out=str(tmp_path / "out")))
    assert "\n" not in str(e.value)
    Runner(RunConfig(tokenizer="identity", suite="video", resolutions=[256], protocol="offline",
                     datasets=[f"tokbench-video:{root}:ch3"], metrics=["psnr"], quiet=True,
                     out=str(tmp_path / "out")))  # clean rules need no encoder


def test_leaderboard_keeps_earlier_lossless_tokbench_video_runs_apart():
    from tokbench.leaderboard.catalog import protocol_of

    old_rules = {k: v for k, v in get_protocol("tokbench").describe()["rules"].items() if k != "video_reencode"}
    video = {"suite_spec": {"modality": "video"}}
    assert protocol_of({**video, "protocol": {"name": "tokbench", "rules": old_rules}}) == \
        "tokbench:official,video_reencode=none"
    assert protocol_of({**video, "protocol": get_protocol("tokbench").describe()}) == "tokbench"
    assert protocol_of({"protocol": {"name": "tokbench", "rules": old_rules}}) == "tokbench"  # images: unaffected
