"""End to end: ``tokbench run --tokenizer omni`` with a random checkpoint in the upstream Lightning layout."""
import os
import subprocess
import sys
from pathlib import Path

from omni_fixtures import write_random_omni_checkpoint

from tokbench.report import load_report

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "tokbench", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900)


def test_omni_without_checkpoint_fails_in_one_line(tmp_path):
    env = dict(os.environ, TOKBENCH_CACHE=str(tmp_path / "cache"))
    r = _cli("run", "--tokenizer", "omni", "--suite", "text-face", "--quiet", env=env)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "imagenet_k600.ckpt" in lines[0] and str(tmp_path / "cache" / "weights") in lines[0]


def test_omni_runs_from_random_lightning_checkpoint(tmp_path):
    ckpt = write_random_omni_checkpoint(tmp_path / "omni.ckpt")
    env = dict(os.environ, TOKBENCH_CACHE=str(tmp_path / "cache"))
    r = _cli("run", "--tokenizer", "omni", "--checkpoint", str(ckpt), "--suite", "text-face", "--limit", "4",
             "--resolution", "256", "--quiet", "--out", str(tmp_path / "out"), "--name", "omni", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = load_report(tmp_path / "out" / "omni")
    man = rep.manifest["tokenizer"]
    assert man["checkpoint_path"] == str(ckpt) and len(man["checkpoint_sha256"]) == 64
    images = rep.rows[rep.rows.level == "image"]
    assert len(images) >= 4 and (images["bpp"] > 0).all()
    # discrete rate: (256/8)^2 tokens x log2(codebook) bits over 256^2 pixels
    import math
    codebook = man["spec"]["codebook_size"]
    assert images["bpp"].iloc[0] == 32 * 32 * math.log2(codebook) / (256 * 256)
