"""A 2-rank gloo run on CPU gives the same rows (exact) and summary (1e-9) as one process."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tokbench.report import load_report

ROOT = Path(__file__).resolve().parent.parent


def _run(out, env, nproc):
    base = ["-m", "tokbench", "run", "-t", "webp:quality=20", "-s", "text-face", "--data", "package-images",
            "--limit", "5", "-r", "256", "--batch-size", "2", "--quiet", "--out", str(out), "--name", "r"]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *base]
    else:
        cmd = [sys.executable, *base]
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return load_report(Path(out) / "r")


def test_two_ranks_equal_one(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = _run(tmp_path / "one", dict(env, TOKBENCH_CACHE=str(tmp_path / "c1")), 1)
    two = _run(tmp_path / "two", dict(env, TOKBENCH_CACHE=str(tmp_path / "c2")), 2)
    assert two.manifest["world_size"] == 2 and len(two.manifest["rank_timings"]) == 2
    assert two.manifest["items_computed"] == one.manifest["items_computed"] == 5
    pd.testing.assert_frame_equal(one.rows, two.rows, check_exact=True)
    num = one.summary.select_dtypes("number").columns
    np.testing.assert_allclose(one.summary[num].to_numpy(float), two.summary[num].to_numpy(float), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
