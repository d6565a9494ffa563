import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import tokbench
from tokbench.data.dataset import DATASETS, Dataset
from tokbench.data.items import Item
from tokbench.errors import BadInputError, TokenizerOutputError
from tokbench.pipeline import RunConfig, run
from tokbench.report import load_report
from tokbench.tokenizers import Encoded, Tokenizer, TokenizerSpec, register_tokenizer

ROOT = Path(__file__).resolve().parent.parent


class FolderImages(Dataset):
    """Every PNG/JPEG in a folder, no annotations (test data written by the tests)."""

    modality = "image"

    def __init__(self, root: Path, name: str):
        self.root, self.name = Path(root), name

    def load_items(self):
        return [Item(p.stem, "image", p, source="test") for p in sorted(self.root.iterdir())]


def make_folder(tmp_path, n=4, corrupt=()):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        p = d / f"img{i}.png"
        if i in corrupt:
            p.write_bytes(b"not an image at all")
        else:
            h, w = rng.integers(40, 120, 2)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
    return d


def register_folder(name, root):
    if name not in DATASETS:
        DATASETS.add(name, lambda: FolderImages(root, name))


def test_run_writes_parquet_csv_and_manifest(tmp_path, isolated_cache):
    register_folder("test-folder-a", make_folder(tmp_path))
    rep = run(RunConfig(tokenizer="jpeg:quality=40", suite="text-face", resolutions=[256], datasets=["test-folder-a"],
                        out=str(tmp_path / "out"), quiet=True))
    for f in ("rows.parquet", "summary.csv", "summary.json", "manifest.json"):
        assert (rep.path / f).is_file()
    rows = pd.read_parquet(rep.path / "rows.parquet")
    assert len(rows) == 4 and set(rows["level"]) == {"image"}
    assert (rows["bpp"] > 0).all() and (rows["PSNR"] > 10).all()
    man = json.loads((rep.path / "manifest.json").read_text())
    assert man["tokenizer"]["label"] == "jpeg:quality=40"
    assert man["datasets"][0]["content_sha256"] == DATASETS.get("test-folder-a")().content_hash
    assert {"torch", "torchmetrics", "pandas"} <= set(man["packages"])
    assert man["protocol"]["name"] == "offline" and man["items_computed"] == 4
    summary = pd.read_csv(rep.path / "summary.csv")
    psnr = summary[summary.metric == "PSNR"].iloc[0]
    assert psnr["all"] == pytest.approx(rows["PSNR"].mean())
    # a second tokenizer reuses nothing of the first's items, a rerun reuses all of them
    again = run(RunConfig(tokenizer="jpeg:quality=40", suite="text-face", resolutions=[256],
                          datasets=["test-folder-a"], out=str(tmp_path / "out2"), quiet=True))
    assert again.manifest["items_cached"] == 4 and again.manifest["items_computed"] == 0
    pd.testing.assert_frame_equal(again.rows, rows)
    from tokbench.cache import Cache

    ref_entries = Cache().count("ref")
    assert ref_entries == 4 * 2  # text and face per image; PSNR and SSIM have no original-only work to cache
    other = run(RunConfig(tokenizer="jpeg:quality=10", suite="text-face", resolutions=[256],
                          datasets=["test-folder-a"], out=str(tmp_path / "out3"), quiet=True))
    assert other.manifest["items_computed"] == 4 and Cache().count("ref") == ref_entries


def test_unreadable_image_names_the_file_and_skip_bad_lists_it(tmp_path, isolated_cache):
    root = make_folder(tmp_path, n=3, corrupt=(1,))
    register_folder("test-folder-corrupt", root)
    cfg = dict(tokenizer="jpeg", suite="text-face", resolutions=[256], datasets=["test-folder-corrupt"],
               out=str(tmp_path / "out"), quiet=True)
    with pytest.raises(BadInputError, match="img1.png"):
        run(RunConfig(**cfg))
    rep = run(RunConfig(**cfg, skip_bad=True))
    assert sorted(rep.rows["item"]) == ["img0", "img2"]
    assert rep.manifest["skipped"][0][0] == "test-folder-corrupt/img1"
    assert "img1.png" in rep.manifest["skipped"][0][1]
    assert rep.manifest["items_cached"] == 1  # img0 was finished before the error stopped the first run


class NaNAfterFirst(Tokenizer):
    def encode(self, x):
        return Encoded(bits=torch.ones(x.shape[0], dtype=torch.float64), payload=x)

    def decode(self, enc):
        return enc.payload * float("nan")


register_tokenizer(TokenizerSpec(name="test-nan", family="test", kind="baseline"))(lambda spec: NaNAfterFirst(spec))


def test_nan_output_names_tokenizer_and_item(tmp_path, isolated_cache):
    register_folder("test-folder-nan", make_folder(tmp_path, n=1))
    with pytest.raises(TokenizerOutputError, match=r"test-nan.*test-folder-nan/img0"):
        run(RunConfig(tokenizer="test-nan", suite="text-face", resolutions=[256], datasets=["test-folder-nan"],
                      out=str(tmp_path / "out"), quiet=True))


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "tokbench", *args], capture_output=True, text=True,
                          env=env or os.environ.copy(), cwd=ROOT, **kw)


def test_cli_unknown_names_list_valid_ones():
    r = _cli("run", "--tokenizer", "nope", "--quiet")
    assert r.returncode == 2 and "identity" in r.stderr and "jpeg" in r.stderr
    r = _cli("run", "--tokenizer", "jpeg", "--suite", "nope", "--quiet")
    assert r.returncode == 2 and "text-face" in r.stderr


def test_killed_run_resumes_without_recomputing(tmp_path):
    """SIGKILL mid-run, rerun: finished items come from the cache and the report equals a clean run's."""
    env = os.environ.copy()
    env["TOKBENCH_CACHE"] = str(tmp_path / "cache")
    env["TOKBENCH_WEIGHTS"] = str(tmp_path / "weights")  # same "missing weights" message in both reports
    args = ["run", "-t", "webp:quality=30", "-s", "text-face", "--data", "package-images", "--limit", "4",
            "-r", "256", "512", "1024", "--batch-size", "1", "--quiet", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen([sys.executable, "-m", "tokbench", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    items_dir = tmp_path / "cache" / "results" / "items"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if items_dir.is_dir() and sum(1 for _ in items_dir.rglob("*.json")) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sum(1 for _ in items_dir.rglob("*.json"))
    assert 3 <= finished < 12
    r = _cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    run_dir = next((tmp_path / "out").iterdir())
    resumed = load_report(run_dir)
    assert resumed.manifest["items_cached"] == finished
    assert resumed.manifest["items_computed"] == 12 - finished
    # a clean, uninterrupted run in a fresh cache writes the identical rows and summary
    env2 = dict(env, TOKBENCH_CACHE=str(tmp_path / "cache2"))
    args2 = [a if a != str(tmp_path / "out") else str(tmp_path / "clean") for a in args]
    assert _cli(*args2, env=env2).returncode == 0
    clean_dir = next((tmp_path / "clean").iterdir())
    assert (run_dir / "rows.parquet").read_bytes() == (clean_dir / "rows.parquet").read_bytes()
    assert (run_dir / "summary.csv").read_bytes() == (clean_dir / "summary.csv").read_bytes()
    assert (run_dir / "summary.json").read_bytes() == (clean_dir / "summary.json").read_bytes()


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); reports must stay readable by the leaderboard's user."""
    import stat

    from tokbench.cache import _UMASK, atomic_write_bytes

    target = tmp_path / "sub" / "summary.csv"
    atomic_write_bytes(target, b"metric,all\n")
    assert target.read_bytes() == b"metric,all\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_UMASK
    assert not list(target.parent.glob(".*.tmp"))
