"""LlamaGen, taming VQGAN and Chameleon through the real run path: a tiny random checkpoint in each family's
upstream file layout, run on the image suite with ``--limit 4`` at 64 px on CPU. LlamaGen goes through
``python -m tokbench run`` in a fresh interpreter, the other two through ``tokbench.pipeline.run``.

The expected rate is computed here from the geometry: a 64 x 64 canvas coded as (64 / f)^2 tokens of
log2(codebook) bits each. Only PSNR is scored (text and face scoring of every family is covered by
test_families_run.py; here the point is the tokenizer side of the run).
"""
from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tiny_models import isolate_caches
from vqgan_fixtures import write_tiny_checkpoint
from tokbench.data.dataset import get_dataset
from tokbench.pipeline import RunConfig, run
from tokbench.report import load_report
from tokbench.suites import get_suite
from tokbench.tokenizers.conv_vq import RELEASES
from tokbench.tokenizers.registry import get_entry

ROOT = Path(__file__).resolve().parent.parent
LIMIT, SIZE, SUITE, METRICS = 4, 64, "text-face", ["psnr"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv-vq")
    mp = pytest.MonkeyPatch()
    isolate_caches(mp, root / "caches")
    yield root
    mp.undo()


def check_report(report, name: str, ckpt: Path) -> None:
    spec = get_entry(name).spec
    rows = report.rows
    suite = get_suite(SUITE)
    items = {(ds, it.id) for ds in suite.datasets for it in get_dataset(ds).items[:LIMIT]}
    top = rows[rows.level == "image"]
    assert sorted(zip(top.dataset, top.item)) == sorted(items)
    want = (SIZE // spec.spatial_factor) ** 2 * math.log2(spec.codebook_size) / SIZE ** 2
    assert np.allclose(top.bpp.to_numpy(float), want, rtol=1e-12, atol=0)
    assert np.isfinite(top["PSNR"].to_numpy(float)).all() and (top["PSNR"] > 0).all()
    tok = report.manifest["tokenizer"]
    assert tok["name"] == name and tok["checkpoint_path"] == str(ckpt)
    assert tok["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert tok["decode_from"] == RELEASES[name].decode_from and tok["model"] == "tokbench.models.vqgan"
    assert report.manifest["limit"] == LIMIT and (report.path / "rows.parquet").is_file()


@pytest.mark.filterwarnings("ignore:.*not the released size")
@pytest.mark.parametrize("name", ["taming-vqgan-imagenet-f16-16384", "chameleon-vqgan"])
def test_family_runs_in_process(name, workspace):
    ckpt = write_tiny_checkpoint(name, workspace / "models" / f"{name}.ckpt")
    report = run(RunConfig(tokenizer=name, suite=SUITE, checkpoint=str(ckpt), limit=LIMIT, resolutions=[SIZE],
                           out=str(workspace / "out"), quiet=True, name=name, metrics=METRICS))
    check_report(report, name, ckpt)


def test_cli_runs_llamagen(workspace):
    name = "llamagen-vq8-c2i"
    ckpt = write_tiny_checkpoint(name, workspace / "models" / "vq_ds8_c2i.pt")
    out = workspace / "out-cli"
    args = [sys.executable, "-m", "tokbench", "run", "--tokenizer", name, "--checkpoint", str(ckpt), "--suite", SUITE,
            "--limit", str(LIMIT), "--resolution", str(SIZE), "--quiet", "--out", str(out), "--name", "cli",
            "--metrics", *METRICS]
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ), cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"report written to {out / 'cli'}" in r.stdout
    check_report(load_report(out / "cli"), name, ckpt)


def test_cli_list_family_filter(workspace):
    r = subprocess.run([sys.executable, "-m", "tokbench", "list", "--family", "llamagen", "taming", "chameleon"],
                       capture_output=True, text=True, env=dict(os.environ), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stdout.splitlines()[1:] if line.strip()]
    assert sorted(line.split()[0] for line in lines) == sorted(RELEASES)
    by_name = {line.split()[0]: line for line in lines}
    assert "LlamaGen (F8)" in by_name["llamagen-vq8-c2i"] and "VQGAN" in by_name["taming-vqgan-imagenet-f16-16384"]
    assert "missing" in by_name["chameleon-vqgan"] and "chameleon/vqgan.ckpt" in by_name["chameleon-vqgan"]
