"""Open-MAGVIT2 and MaskBit through the real run path: a tiny random checkpoint in upstream's file layout
(Lightning EMA checkpoint / flat .bin) per family, ``tokbench run --checkpoint`` on the image suite with
``--limit 4`` at 64 px on CPU; the report must exist with one row per item and bpp = tokens x bits per token."""
from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lfq_fixtures import TINY_MASKBIT_12, TINY_OM2_F8, write_maskbit_checkpoint, write_open_magvit2_checkpoint
from tiny_models import isolate_caches
from tokbench.data.dataset import get_dataset
from tokbench.report import load_report
from tokbench.suites import get_suite
from tokbench.tokenizers.registry import get_entry

ROOT = Path(__file__).resolve().parent.parent
LIMIT, SIZE = 4, 64
METRICS = ["text", "face", "psnr"]  # SSIM at the originals' size says nothing about the adapters


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("lfq-run")
    mp = pytest.MonkeyPatch()
    isolate_caches(mp, root / "caches")
    yield root
    mp.undo()


@pytest.mark.parametrize("name,bits_per_token", [("open-magvit2-imagenet-128-l", 18), ("maskbit-12bit", 12)])
def test_tokbench_run_end_to_end(name, bits_per_token, workspace):
    if name.startswith("maskbit"):
        ckpt = write_maskbit_checkpoint(workspace / "maskbit_tokenizer_12bit.bin", TINY_MASKBIT_12)
    else:
        ckpt = write_open_magvit2_checkpoint(workspace / "imagenet_128_L.ckpt", TINY_OM2_F8)
    out = workspace / "out"
    args = [sys.executable, "-m", "tokbench", "run", "--tokenizer", name, "--checkpoint", str(ckpt),
            "--suite", "text-face", "--limit", str(LIMIT), "--resolution", str(SIZE), "--quiet",
            "--out", str(out), "--name", name, "--metrics", *METRICS,
            "--allow-unbinned-resolution"]
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ), cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"report written to {out / name}" in r.stdout
    report = load_report(out / name)
    spec = get_entry(name).spec
    assert math.log2(spec.codebook_size) == bits_per_token

    rows = report.rows
    suite = get_suite("text-face")
    items = {(ds, it.id) for ds in suite.datasets for it in get_dataset(ds).items[:LIMIT]}
    top = rows[rows.level == "image"]
    assert sorted(zip(top.dataset, top["item"])) == sorted(items)
    assert np.isfinite(top["PSNR"].to_numpy(float)).all() and (top["PSNR"] > 0).all()
    tokens = (SIZE // spec.spatial_factor) ** 2  # 64 is a multiple of 8 and 16: no padding
    assert (top.bpp == tokens * bits_per_token / SIZE ** 2).all()
    assert (rows.level == "word").sum() > 0 and (rows.level == "face").sum() > 0

    tok = report.manifest["tokenizer"]
    assert tok["name"] == name and tok["checkpoint_path"] == str(ckpt)
    assert tok["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert tok["decode_path"].startswith("straight-through")
    if name.startswith("open-magvit2"):
        assert tok["weights_used"] == "ema"
