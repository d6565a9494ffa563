"""Randomly initialised Open-MAGVIT2 and MaskBit checkpoints in the upstream file layouts, for tests.

* ``write_open_magvit2_checkpoint(path, config)``: a Lightning checkpoint as SEED-Voken's ``VQModel`` saves it:
  ``state_dict`` with the training weights, their EMA shadows (``model_ema.<name without dots>``, different
  values from the training weights), ``model_ema.decay`` / ``num_updates``, and ``loss.*`` keys (discriminator)
  with their shadows; plus Lightning's top-level entries.
* ``write_maskbit_checkpoint(path, config)``: the flat state_dict of a released ``maskbit_tokenizer_<N>bit.bin``.

TINY_* configs have a released entry's identity (levels, bits per token) and a few channels per layer.
"""
from __future__ import annotations

from pathlib import Path

import torch

from tokbench.models.maskbit import MaskBitConfig, MaskBitTokenizer
from tokbench.models.open_magvit2 import OpenMagvit2, OpenMagvit2Config, ema_name

TINY_OM2_F16 = OpenMagvit2Config(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, z_channels=18)
TINY_OM2_F8 = OpenMagvit2Config(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1, z_channels=18)
TINY_OM2_14 = OpenMagvit2Config(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, z_channels=14)
TINY_MASKBIT_12 = MaskBitConfig(token_size=12, hidden_channels=32, channel_mult=(1, 1, 1, 1, 1), num_res_blocks=1)


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every float parameter off its init value, so a tensor that failed to load would change the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def random_open_magvit2(config: OpenMagvit2Config = TINY_OM2_F16, seed: int = 0) -> OpenMagvit2:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _perturbed(OpenMagvit2(config), seed + 1)


def open_magvit2_state_dict(train: OpenMagvit2, ema: OpenMagvit2) -> dict[str, torch.Tensor]:
    """What upstream's ``VQModel.state_dict()`` holds: training weights of ``train``, EMA shadows from ``ema``,
    the EMA bookkeeping and a loss module (discriminator + its shadows)."""
    state = dict(train.state_dict())
    state["model_ema.decay"] = torch.tensor(0.999)
    state["model_ema.num_updates"] = torch.tensor(-1, dtype=torch.int32)
    state.update({ema_name(n): p.detach() for n, p in ema.named_parameters()})
    disc = {"loss.discriminator.blocks.0.conv1.weight": torch.randn(8, 3, 3, 3),
            "loss.discriminator.blocks.0.conv1.bias": torch.randn(8),
            "loss.perceptual_loss.lin0.model.1.weight": torch.randn(1, 64, 1, 1)}
    state.update(disc)
    state.update({ema_name(k): v.clone() for k, v in list(disc.items())[:2]})  # trainable loss params have shadows
    return state


def lightning_checkpoint(state: dict, config: OpenMagvit2Config) -> dict:
    return {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.2.1", "state_dict": state,
            "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
            "hyper_parameters": {"ddconfig": {"double_z": False, "z_channels": config.z_channels, "resolution": 256,
                                              "in_channels": 3, "out_ch": 3, "ch": config.ch,
                                              "ch_mult": list(config.ch_mult),
                                              "num_res_blocks": config.num_res_blocks},
                                 "n_embed": 2 ** config.z_channels, "embed_dim": config.z_channels, "use_ema": True}}


def write_open_magvit2_checkpoint(path: str | Path, config: OpenMagvit2Config = TINY_OM2_F16,
                                  seed: int = 0) -> Path:
    """Training weights from ``seed``, EMA weights from ``seed + 1000`` (so the two give different outputs)."""
    train, ema = random_open_magvit2(config, seed), random_open_magvit2(config, seed + 1000)
    path = Path(path)
    torch.save(lightning_checkpoint(open_magvit2_state_dict(train, ema), config), path)
    return path


def random_maskbit(config: MaskBitConfig = TINY_MASKBIT_12, seed: int = 0) -> MaskBitTokenizer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _perturbed(MaskBitTokenizer(config), seed + 1)


def write_maskbit_checkpoint(path: str | Path, config: MaskBitConfig = TINY_MASKBIT_12, seed: int = 0) -> Path:
    path = Path(path)
    torch.save(random_maskbit(config, seed).state_dict(), path)
    return path
