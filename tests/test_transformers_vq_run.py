"""Emu3 and Janus VQ end to end: a tiny random checkpoint in upstream's file layout, run on the image suite
(``text-face``, PSNR only, 32 px, first 2 items per dataset), the report checked against the rate the spec and
the geometry give. Emu3 goes through the command line's ``run`` and ``list`` (in this interpreter), Janus
through ``tokbench.pipeline.run``.

Emu3 codes an image as a 4-frame clip of copies (its frame rule); the harness counts the 4 coded frames.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from tiny_models import isolate_caches  # noqa: E402
from tokbench.cli import main  # noqa: E402
from tokbench.pipeline import RunConfig, run  # noqa: E402
from tokbench.report import load_report  # noqa: E402
from transformers_vq_fixtures import tiny_model, write_upstream_checkpoint  # noqa: E402

SIZE, LIMIT, CODEBOOK = 32, 2, 64  # the fixtures' tiny codebook


@pytest.fixture(scope="module", autouse=True)
def _caches(tmp_path_factory):
    """One isolated cache for the module: the embedded datasets are built once."""
    mp = pytest.MonkeyPatch()
    isolate_caches(mp, tmp_path_factory.mktemp("tfvq-run") / "caches")
    yield
    mp.undo()


def check_images(report, name: str, ckpt: Path, factor: int, frames: int) -> None:
    rows = report.rows
    images = rows[rows.level == "image"]
    assert len(images) >= LIMIT and (images["PSNR"] > 0).all()
    tokens = (SIZE // factor) ** 2
    assert (images["bpp"] == tokens * math.log2(CODEBOOK) / (frames * SIZE * SIZE)).all()
    tok = report.manifest["tokenizer"]
    assert tok["name"] == name and tok["checkpoint_path"] == str(ckpt) and tok["weights_layout"] == "upstream"
    assert tok["size_deviations"]["base_channels"] == [32, 256 if name == "emu3-vq" else 128]


def test_cli_runs_emu3_and_lists_it(tmp_path, capsys):
    ckpt = write_upstream_checkpoint("emu3", tiny_model("emu3"), tmp_path / "model.safetensors")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        rc = main(["run", "--tokenizer", "emu3-vq", "--checkpoint", str(ckpt), "--suite", "text-face",
                   "--limit", str(LIMIT), "--resolution", str(SIZE), "--metrics", "psnr",
                   "--allow-unbinned-resolution", "--quiet", "--out", str(out), "--name", "emu3"])
    assert rc == 0, capsys.readouterr().err[-3000:]
    report = load_report(out / "emu3")
    check_images(report, "emu3-vq", ckpt, 8, 4)  # an image is a 4-frame clip of copies
    assert "repeated 4 times" in report.manifest["tokenizer"]["frames"]
    capsys.readouterr()
    assert main(["list", "--family", "emu3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("emu3-vq")]
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
