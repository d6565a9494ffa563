"""Safe checkpoint loading: weights_only with an allow-list, refusal of code-running pickles, checksum pins."""
from __future__ import annotations

import argparse
import fractions
import hashlib
import os

import pytest
import torch

from tokbench.checkpoints import UNSAFE_FLAG, load_checkpoint
from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")


class _RunsCode:
    """Unpickling this calls os.mkdir(target): the canonical pickle attack, made harmless and visible."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _lightning_like(extra=None):
    ckpt = {"state_dict": {"w": torch.arange(6.0).view(2, 3)}, "pytorch-lightning_version": "1.5.4",
            "hyper_parameters": {"args": argparse.Namespace(n_codes=8192, spatial_pos="rope",
                                                            resolution_scale=[0.5, 1.0])}}
    ckpt.update(extra or {})
    return ckpt


def test_lightning_checkpoint_with_namespace_loads_safely(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save(_lightning_like(), path)
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["state_dict"]["w"], torch.arange(6.0).view(2, 3))
    assert isinstance(ckpt["hyper_parameters"]["args"], argparse.Namespace)
    assert ckpt["hyper_parameters"]["args"].resolution_scale == [0.5, 1.0]


@pytest.mark.parametrize("legacy", [False, True])
def test_code_running_pickle_is_refused_and_names_the_flag(tmp_path, legacy):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save(_lightning_like({"callbacks": _RunsCode(target)}), path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path, what="omni")
    message = str(err.value)
    assert UNSAFE_FLAG in message and "mkdir" in message and message.startswith("omni:")
    assert "\n" not in message
    assert not target.exists()  # nothing ran


def test_namespace_not_allowed_when_removed_from_allow_list(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save(_lightning_like(), path)
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace"):
        load_checkpoint(path, allowed_globals=())


def test_allow_unsafe_loads_other_globals_with_a_warning(tmp_path):
    path = tmp_path / "extra.ckpt"
    torch.save(_lightning_like({"ratio": fractions.Fraction(1, 3)}), path)
    with pytest.raises(UnsafeCheckpointError, match="fractions.Fraction"):
        load_checkpoint(path)
    with pytest.warns(UserWarning, match="full pickle"):
        ckpt = load_checkpoint(path, allow_unsafe=True)
    assert ckpt["ratio"] == fractions.Fraction(1, 3)


def test_sha256_pin(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save(_lightning_like(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "state_dict" in load_checkpoint(path, sha256=digest)
    with pytest.raises(MissingWeightsError, match="refusing a mismatched file"):
        load_checkpoint(path, sha256="0" * 64)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(BadInputError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(garbage)
    good = tmp_path / "good.ckpt"
    torch.save(_lightning_like(), good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(BadInputError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(truncated)


def test_safetensors(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file({"w": torch.arange(4.0)}, str(path))
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(4.0))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(BadInputError, match="not a readable safetensors file"):
        load_checkpoint(bad)
