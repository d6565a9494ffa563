"""Tiny Emu3 / Janus VQ checkpoints from random weights, written in upstream's released file layouts.

The weights are those of a tiny transformers model; ``upstream_names`` renames them back to upstream's keys
(BAAI/Emu3-VisionTokenizer custom code; deepseek-ai/Janus ``gen_vision_model``), the inverse of the adapter's
mapping. tests/test_transformers_vq.py checks that inverse against upstream's full-size key lists, so these
files have upstream's layout, not merely what the adapter happens to read.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

# small but with every kind of block: attention at the lowest level, nin_shortcuts, 4x time convs (Emu3)
EMU3_TINY = dict(codebook_size=64, embed_dim=4, latent_channels=4, base_channels=32, channel_multiplier=[1, 1, 1, 2],
                 num_res_blocks=1, attn_resolutions=[3], temporal_downsample_factor=4, hidden_size=64)
JANUS_TINY = dict(num_embeddings=64, embed_dim=8, latent_channels=32, base_channels=32,
                  channel_multiplier=[1, 1, 1, 1, 2], num_res_blocks=1)


def emu3_upstream_name(key: str) -> str:
    key = re.sub(r"\.(q|k|v)_proj\.", r".\1.", key).replace(".out_proj.", ".proj_out.")
    key = re.sub(r"\.attn_norms\.(\d+)\.", r".attn.\1.norm.", key)
    key = key.replace("middle_block.attn_norm.", "mid.attn_1.norm.").replace("middle_block.", "mid.")
    return key.replace("encoder.down_block.down.", "encoder.down.").replace("decoder.up_block.up.", "decoder.up.")


def janus_upstream_name(key: str) -> str:
    key = re.sub(r"^encoder\.down\.", "encoder.conv_blocks.", key)
    key = re.sub(r"^decoder\.up\.", "decoder.conv_blocks.", key)
    key = re.sub(r"\.block\.(\d+)\.", r".res.\1.", key)
    return re.sub(r"\.mid\.(block_1|attn_1|block_2)\.",
                  lambda m: f".mid.{('block_1', 'attn_1', 'block_2').index(m.group(1))}.", key)


def upstream_names(family: str, state: dict) -> dict:
    """transformers state -> upstream's keys and tensor shapes (Emu3's attention projections as 1x1 convs;
    Janus' usage counter buffer added)."""
    out = {}
    for k, v in state.items():
        if family == "emu3":
            name = emu3_upstream_name(k)
            if re.search(r"\.(q|k|v|proj_out)\.weight$", name):
                v = v[:, :, None, None]
        else:
            name = janus_upstream_name(k)
        out[name] = v
    if family == "janus":
        out["quantize.codebook_used"] = torch.zeros(65536)
    return out


def tiny_model(family: str, seed: int = 0, **config):
    """A tiny transformers model with seeded random weights; codebook rows of unequal norm (as trained raw
    weights are) and spread BatchNorm statistics, so every path matters."""
    import transformers

    cfg_cls, cls, base = ((transformers.Emu3VQVAEConfig, transformers.Emu3VQVAE, EMU3_TINY) if family == "emu3"
                          else (transformers.JanusVQVAEConfig, transformers.JanusVQVAE, JANUS_TINY))
    cfg = cfg_cls(**{**base, **config})
    cfg._attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg).eval()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, t in model.state_dict().items():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                elif name.endswith("running_mean"):
                    t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            emb = model.quantize.embedding.weight
            emb.copy_(torch.randn(emb.shape, generator=g) * (0.2 + torch.rand(emb.shape[0], 1, generator=g)))
    return model


def spread_codebook(model, family: str, x: torch.Tensor, seed: int = 0) -> None:
    """Codebook rows near latents the model produces for ``x`` (B, C, T, H, W) in [-1, 1], with unequal norms:
    many distinct codes get used, so index equality says something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if family == "emu3":
            h = model.encoder(x.permute(0, 2, 1, 3, 4))
            h = model.quant_conv(h.permute(0, 2, 1, 3, 4))  # (B, c, T', h, w)
            h = h.permute(0, 2, 3, 4, 1).reshape(-1, h.shape[1])
        else:
            frames = x.permute(0, 2, 1, 3, 4).reshape(-1, *x.shape[1:2], *x.shape[3:])
            h = model.quant_conv(model.encoder(frames))
            h = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
        emb = model.quantize.embedding.weight
        pick = torch.randint(0, h.shape[0], (emb.shape[0],), generator=g)
        rows = h[pick] + 0.01 * h.std() * torch.randn(emb.shape, generator=g)
        emb.copy_(rows * (0.5 + torch.rand(emb.shape[0], 1, generator=g)))


def write_upstream_checkpoint(family: str, model, path: Path) -> Path:
    """Emu3: a model.safetensors like BAAI/Emu3-VisionTokenizer's; Janus: a pytorch_model.bin like Janus-Pro's
    (``gen_vision_model.`` prefix, next to other parts of the full model)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = upstream_names(family, {k: v.detach().clone() for k, v in model.state_dict().items()})
    if family == "emu3":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        full = {f"gen_vision_model.{k}": v for k, v in state.items()}
        full["language_model.model.embed_tokens.weight"] = torch.zeros(8, 4)
        full["gen_head.output_mlp_projector.weight"] = torch.zeros(64, 4)
        torch.save(full, path)
    return path
