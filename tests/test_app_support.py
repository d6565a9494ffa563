"""Shared by the leaderboard app tests (no tests here): small real reports, made once per test session.

The reports come from real runs of the pipeline (codecs over the leaderboard demo set: rendered words and
the scikit-image astronaut), with the offline text and face metrics when they are registered.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
DEMO_TOKENIZERS = ("jpeg:quality=5", "jpeg:quality=10", "webp:quality=5")
_BUILT: dict = {}


def build_demo(root: Path) -> dict:
    """Demo data, its reports and their paths by tokenizer (once per process; both test files share it)."""
    if _BUILT:
        return _BUILT
    from tokbench.leaderboard.demo import make_demo_reports

    data, reports = root / "data", root / "reports"
    paths = make_demo_reports(reports, data, DEMO_TOKENIZERS, cache_dir=root / "cache")
    _BUILT.update(root=root, data=data, reports=reports, paths=dict(zip(DEMO_TOKENIZERS, paths)))
    return _BUILT


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    return build_demo(tmp_path_factory.mktemp("leaderboard-demo"))
