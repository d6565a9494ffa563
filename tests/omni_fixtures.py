"""Randomly initialised OmniTokenizer checkpoints in the upstream PyTorch-Lightning layout, for tests.

``write_random_omni_checkpoint(path)`` writes a tiny model that is valid for the ``omni`` registry entry
(same identity flags: VQ, temporal patch 4, RoPE, causal; smaller sizes), so
``create_tokenizer("omni", checkpoint=path)`` and ``tokbench run --tokenizer omni --checkpoint PATH`` work
on CPU in well under a second per 256x256 image.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import torch

from tokbench.models.omnitokenizer import OmniTokenizer, OmniTokenizerConfig, config_to_hparams

# Smallest config the released geometry allows: 8x8 patches, 8x8 windows (sides multiple of 64).
TINY_VQ = OmniTokenizerConfig(dim=32, heads=2, dim_head=16, enc_block="tw", dec_block="t", temporal_depth=1,
                              n_codes=64, codebook_dim=4)
TINY_VAE = dataclasses.replace(TINY_VQ, use_vae=True)


def random_omni_model(config: OmniTokenizerConfig = TINY_VQ, seed: int = 0) -> OmniTokenizer:
    """A model whose every tensor is random (gains and q/k scales moved off their init value, unit-norm
    codes), so a tensor that failed to load would change the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = OmniTokenizer(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:  # norm gains/biases, q/k scales: off their constant init
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
        codes = torch.randn(model.codebook.embeddings.shape, generator=gen)
        model.codebook.embeddings.copy_(torch.nn.functional.normalize(codes, dim=1))
        model.codebook.z_avg.copy_(model.codebook.embeddings)
        model.codebook.N.fill_(1.0)
    return model.eval()


def lightning_checkpoint(model: OmniTokenizer, extra_flags: Optional[dict] = None) -> dict:
    """The dict a PyTorch-Lightning 1.5 ``trainer.save_checkpoint`` writes for upstream's ``VQGAN``:
    training-only modules in the state_dict and the argparse flags under ``hyper_parameters["args"]``."""
    state = dict(model.state_dict())
    state.update({  # discriminators and LPIPS, which loaders must drop
        "image_discriminator.model0.0.weight": torch.randn(4, 3, 4, 4),
        "video_discriminator.model0.0.weight": torch.randn(4, 3, 4, 4, 4),
        "perceptual_model.net.slice1.0.weight": torch.randn(4, 3, 3, 3),
        "perceptual_model.lin0.model.1.weight": torch.randn(1, 4, 1, 1),
    })
    flags = dict(lr=5e-5, batch_size=4, perceptual_weight=4.0, image_gan_weight=0.0, video_gan_weight=0.01,
                 resolution_scale=[0.5, 0.75, 1.0, 1.25], kl_weight=1e-6, gpus=8, default_root_dir="/ckpt")
    flags.update(extra_flags or {})
    return {
        "epoch": 3,
        "global_step": 500000,
        "pytorch-lightning_version": "1.5.4",
        "state_dict": state,
        "hyper_parameters": {"args": config_to_hparams(model.config, **flags)},
        "callbacks": {"ModelCheckpoint{'monitor': 'val/recon_loss', 'mode': 'min'}": {
            "best_model_score": torch.tensor(0.0123), "best_model_path": "/ckpt/best.ckpt"}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 5e-5, "params": [0, 1]}]}],
        "lr_schedulers": [],
    }


def write_random_omni_checkpoint(path: str | Path, config: OmniTokenizerConfig = TINY_VQ, seed: int = 0,
                                 extra_flags: Optional[dict] = None) -> Path:
    """Write a random ``config`` model as an upstream-layout Lightning ``.ckpt`` at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lightning_checkpoint(random_omni_model(config, seed), extra_flags), path)
    return path
