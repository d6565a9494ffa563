"""Emu3 and Janus VQ end to end: a tiny random checkpoint in upstream's file layout, run on the image suite
(``text-face``, PSNR only, 64 px, first 2 items per dataset), the report checked against the rate the spec and
the geometry give. Emu3 goes through ``python -m tokbench run`` (and ``tokbench list``), Janus in process.

Emu3 codes an image as a 4-frame clip of copies (its frame rule); the harness counts the 4 coded frames.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from tiny_models import isolate_caches  # noqa: E402
from tokbench.pipeline import RunConfig, run  # noqa: E402
from tokbench.report import load_report  # noqa: E402
from transformers_vq_fixtures import tiny_model, write_upstream_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZE, LIMIT, CODEBOOK = 64, 2, 64  # the fixtures' tiny codebook


@pytest.fixture(autouse=True)
def _caches(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path / "caches")


def check_images(report, name: str, ckpt: Path, factor: int, frames: int) -> None:
    rows = report.rows
    images = rows[rows.level == "image"]
    assert len(images) >= LIMIT and (images["PSNR"] > 0).all()
    tokens = (SIZE // factor) ** 2
    assert (images["bpp"] == tokens * math.log2(CODEBOOK) / (frames * SIZE * SIZE)).all()
    tok = report.manifest["tokenizer"]
    assert tok["name"] == name and tok["checkpoint_path"] == str(ckpt) and tok["weights_layout"] == "upstream"
    assert tok["size_deviations"]["base_channels"] == [32, 256 if name == "emu3-vq" else 128]


def test_cli_runs_emu3_and_lists_it(tmp_path):
    ckpt = write_upstream_checkpoint("emu3", tiny_model("emu3"), tmp_path / "model.safetensors")
    env = dict(os.environ)  # the isolated caches, offline
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tokbench", "run", "--tokenizer", "emu3-vq", "--checkpoint", str(ckpt),
                        "--suite", "text-face", "--limit", str(LIMIT), "--resolution", str(SIZE), "--metrics", "psnr",
                        "--allow-unbinned-resolution", "--quiet", "--out", str(out), "--name", "emu3"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    report = load_report(out / "emu3")
    check_images(report, "emu3-vq", ckpt, 8, 4)  # an image is a 4-frame clip of copies
    assert "repeated 4 times" in report.manifest["tokenizer"]["frames"]
    listed = subprocess.run([sys.executable, "-m", "tokbench", "list", "--family", "emu3"], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=300)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.startswith("emu3-vq")]
    assert len(rows) == 1 and "missing" in rows[0] and "emu3-vq/model.safetensors" in rows[0]


def test_janus_runs_in_process(tmp_path):
    ckpt = write_upstream_checkpoint("janus", tiny_model("janus"), tmp_path / "pytorch_model.bin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        report = run(RunConfig(tokenizer="janus-pro-1b-vq", suite="text-face", checkpoint=str(ckpt), limit=LIMIT,
                               resolutions=[SIZE], metrics=["psnr"], out=str(tmp_path / "out"), quiet=True,
                               name="janus", allow_unbinned_resolution=True))
    check_images(report, "janus-pro-1b-vq", ckpt, 16, 1)
    assert report.manifest["tokenizer"]["index_rule"] == "l2"
