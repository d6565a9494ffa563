"""Test isolation: every cache and home directory points into a temporary folder for the whole session."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="tokbench-tests-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)
for var, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "xdg-cache"), ("TOKBENCH_CACHE", "tokbench-cache"),
                 ("TOKBENCH_DATA_CACHE", "tokbench-data"),
                 ("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("MPLCONFIGDIR", "mpl")):
    os.environ[var] = str(_SESSION_HOME / sub)
    (_SESSION_HOME / sub).mkdir(parents=True, exist_ok=True)
os.environ["TOKBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh tokbench cache for one test (nothing shared with other tests)."""
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
