"""`tokbench datasets download tokbench`: one-line failures offline, and what a successful snapshot must hold."""
from __future__ import annotations

import json
import sys

import pytest

from tokbench.data import download as dl
from tokbench.data.tokbench_release import TokBenchImages
from tokbench.errors import BadInputError


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME", "HF_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var.lower()))
    monkeypatch.delenv("TOKBENCH_OFFLINE", raising=False)


def test_offline_hub_fails_in_one_line(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(dl.DownloadError) as e:
        dl.download_tokbench(tmp_path / "dest")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot download hf://datasets/Junfeng5/TokBench to {tmp_path / 'dest'} (")


def test_tokbench_offline_env_refuses_before_any_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # would fail differently if reached
    with pytest.raises(dl.DownloadError, match="TOKBENCH_OFFLINE is set"):
        dl.download_tokbench(tmp_path)


def test_missing_client_library_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(dl.DownloadError, match=r"huggingface_hub is not installed \(pip install huggingface_hub\)"):
        dl.download_tokbench(tmp_path)


def test_snapshot_is_requested_as_a_dataset_and_checked(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    calls = []

    def fake_snapshot(repo_id, repo_type, revision, local_dir):  # stands in for the network only
        calls.append((repo_id, repo_type, revision, local_dir))
        from pathlib import Path

        from PIL import Image

        root = Path(local_dir)
        (root / "images/text_data/ic13").mkdir(parents=True)
        Image.new("RGB", (20, 10)).save(root / "images/text_data/ic13/a.png")
        (root / "annotations").mkdir()
        (root / "annotations/text_ic13.json").write_text(json.dumps(
            [{"file_name": "a.png", "width": 20, "height": 10,
              "annotations": [{"rec": "hi", "bbox": [1, 1, 9, 9], "ratio": 0.2}]}]))
        return local_dir

    monkeypatch.setattr(hub, "snapshot_download", fake_snapshot)
    root = dl.download_tokbench(tmp_path / "TB")
    assert calls == [("Junfeng5/TokBench", "dataset", None, str(tmp_path / "TB"))]
    assert root == tmp_path / "TB"
    assert [it.id for it in TokBenchImages(root).items] == ["ic13/a.png"]

    monkeypatch.setattr(hub, "snapshot_download", lambda **kw: str(tmp_path))  # no annotations/ in it
    with pytest.raises(dl.DownloadError, match="is not a TokBench release"):
        dl.download_tokbench(tmp_path / "other")


def test_default_destination_is_the_tokbench_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "cache"))
    assert dl.default_dest("TokBench") == tmp_path / "cache" / "datasets" / "TokBench"


def test_cli_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    assert dl.main(["tokbench", "--dest", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("error: cannot download hf://datasets/Junfeng5/TokBench")
    with pytest.raises(BadInputError, match="downloadable: tokbench .*ucf101:<root>, imagenet:<root>"):
        dl.download_dataset("ucf101")
