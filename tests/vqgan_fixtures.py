"""Random taming-style VQGAN checkpoints in the upstream file layouts, for tests.

* ``tiny_config(entry)``: the registry entry's identity (key layout, levels, codebook size, l2 quantiser) with
  small widths, so a file loads into that entry (as a reported size deviation) and runs on CPU in milliseconds.
* ``random_vqgan(cfg)``: every tensor random (norm gains/biases off their init, a Gaussian codebook), so a
  tensor that failed to load would change the outputs.
* ``llamagen_checkpoint`` / ``lightning_checkpoint``: the dicts upstream's training scripts save (LlamaGen:
  ``model`` / ``ema`` / ``optimizer`` / ``discriminator`` / ``args``; taming and Chameleon: a Lightning 1.0
  checkpoint whose ``state_dict`` holds the ``loss.*`` modules and whose callback state is keyed by the
  ``ModelCheckpoint`` class, as pytorch-lightning 1.0 wrote it).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import types
from pathlib import Path

import torch

from tokbench.models.vqgan import VQGAN, VQGANConfig


def tiny_config(entry: str) -> VQGANConfig:
    from tokbench.tokenizers.conv_vq import RELEASES

    full = RELEASES[entry].config
    levels = full.levels
    mult = (1,) * (levels - 2) + (2, 2)  # a width change (nin_shortcut) at the second-to-last level
    return dataclasses.replace(full, ch=32, ch_mult=mult, num_res_blocks=1, z_channels=32,
                               embed_dim=8 if full.layout == "llamagen" else 4,
                               usage_buffer=64 if full.usage_buffer else 0)


def random_vqgan(cfg: VQGANConfig, seed: int = 0) -> VQGAN:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VQGAN(cfg)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("codebook_used"):
                t.copy_(torch.randint(0, cfg.n_embed, t.shape, generator=gen).float())
            elif name.endswith("embedding.weight"):
                t.copy_(torch.randn(t.shape, generator=gen))
            elif t.ndim == 1:
                t.add_(0.1 * torch.randn(t.shape, generator=gen))
    return model.eval()


def llamagen_checkpoint(model: VQGAN, ema: VQGAN | None = None) -> dict:
    """What LlamaGen's ``vq_train.py`` saves (``ema`` only when trained with --ema)."""
    ckpt = {
        "model": dict(model.state_dict()),
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "discriminator": {"main.0.weight": torch.randn(4, 3, 4, 4)},
        "optimizer_disc": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]},
        "steps": 400000,
        "args": argparse.Namespace(vq_model="VQ-16", codebook_size=16384, codebook_embed_dim=8, ema=ema is not None),
    }
    if ema is not None:
        ckpt["ema"] = dict(ema.state_dict())
    return ckpt


def pickled_class(module: str, name: str) -> type:
    """A class that pickles under ``module.name`` (with ``save_checkpoint``), without that package installed."""
    return type(name, (), {"__module__": module})


def _model_checkpoint_class():
    """A class pickled under pytorch_lightning's ``ModelCheckpoint`` name (no pytorch_lightning needed)."""
    name = "pytorch_lightning.callbacks.model_checkpoint"
    return pickled_class(name, "ModelCheckpoint"), name


def lightning_checkpoint(model: VQGAN) -> dict:
    """A pytorch-lightning 1.0 ``last.ckpt`` of taming's ``VQModel``: LPIPS and discriminator under ``loss.``."""
    state = dict(model.state_dict())
    state.update({"loss.perceptual_loss.net.slice1.0.weight": torch.randn(4, 3, 3, 3),
                  "loss.perceptual_loss.lin0.model.1.weight": torch.randn(1, 4, 1, 1),
                  "loss.discriminator.main.0.weight": torch.randn(4, 3, 4, 4),
                  "loss.logvar": torch.zeros(())})
    cls, _ = _model_checkpoint_class()
    return {"epoch": 12, "global_step": 300000, "pytorch-lightning_version": "1.0.8", "state_dict": state,
            "callbacks": {cls: {"best_model_score": torch.tensor(0.5), "best_model_path": "/logs/last.ckpt"}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 4.5e-6, "params": [0]}]}],
            "lr_schedulers": []}


def save_checkpoint(obj: dict, path: str | Path) -> Path:
    """``torch.save`` with the classes the file pickles by name (callback keys, top-level values) importable for
    the pickler, under stand-in modules that are removed again after."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    modules = {}
    callbacks = obj.get("callbacks") if isinstance(obj.get("callbacks"), dict) else {}
    for cls in [k for k in callbacks if isinstance(k, type)] + [v for v in obj.values() if isinstance(v, type)]:
        parts = cls.__module__.split(".")
        for i in range(1, len(parts) + 1):
            modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        setattr(modules[cls.__module__], cls.__name__, cls)
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        torch.save(obj, path)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return path


def write_tiny_checkpoint(entry: str, path: str | Path, seed: int = 0) -> Path:
    """A tiny random model for registry entry ``entry`` in that family's upstream file layout."""
    cfg = tiny_config(entry)
    model = random_vqgan(cfg, seed)
    obj = llamagen_checkpoint(model) if cfg.layout == "llamagen" else lightning_checkpoint(model)
    return save_checkpoint(obj, path)
