"""VA-VAE: key layout of the released file, numerics against diffusers' AutoencoderKL (the peer library that can
hold the same weights, vavae.md "diffusers compatibility"), the mean / seeded-sample posterior, loading rules and
``tokbench run`` end to end with a tiny Lightning-layout checkpoint.

tests/data/vavae_f16d32.keys lists upstream's state_dict (key, shape), dumped from LightningDiT's own
``AutoencoderKL(embed_dim=32, ch_mult=(1, 1, 2, 2, 4))`` built on the meta device.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from tokbench.errors import BadInputError
from tokbench.models.vavae import RELEASED, VAVAE, ConvStackConfig, build_vavae
from tokbench.report import load_report
from tokbench.tokenizers.registry import create_tokenizer, get_entry

ROOT = Path(__file__).resolve().parent.parent
KEYS = Path(__file__).parent / "data" / "vavae_f16d32.keys"
TINY = ConvStackConfig(ch=32, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, z_channels=4, attn_levels=(4,))


def upstream_keys() -> dict[str, tuple[int, ...]]:
    rows = (line.split() for line in KEYS.read_text().splitlines())
    return {k: tuple(int(s) for s in shape.split("x")) for k, shape in rows}


def random_state(cfg: ConvStackConfig = TINY, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dict(VAVAE(cfg).state_dict())


def write_lightning(path: Path, cfg: ConvStackConfig = TINY, seed: int = 0) -> Path:
    """The training checkpoint layout: Lightning ``state_dict`` with the loss, DINOv2 and projection modules."""
    state = random_state(cfg, seed)
    state.update({"loss.logvar": torch.zeros(()), "loss.discriminator.main.0.weight": torch.zeros(4, 3, 4, 4),
                  "foundation_model.model.cls_token": torch.zeros(1, 1, 8),
                  "linear_proj.weight": torch.zeros(8, cfg.z_channels, 1, 1)})
    torch.save({"state_dict": state, "global_step": 7}, path)
    return path


# ---------------------------------------------------------------- layout of the released file


def test_full_size_model_has_upstreams_keys_and_shapes():
    with torch.device("meta"):
        model = VAVAE()
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(mine) == 342 and mine == upstream_keys()
    assert sum(p.numel() for p in model.parameters()) == 69_836_067  # vavae.md: about 69.8 M


# ---------------------------------------------------------------- numerics: diffusers as the peer


def to_diffusers(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """vavae.md's rename rule from the LDM layout to diffusers' AutoencoderKL (attention 1x1 convs -> linear)."""
    attn = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
    out = {}
    for key, v in state.items():
        k = key.replace("nin_shortcut", "conv_shortcut").replace("norm_out", "conv_norm_out")
        k = k.replace("mid.block_1", "mid_block.resnets.0").replace("mid.block_2", "mid_block.resnets.1")
        k = re.sub(r"encoder\.down\.(\d+)\.block\.", r"encoder.down_blocks.\1.resnets.", k)
        k = re.sub(r"encoder\.down\.(\d+)\.downsample\.", r"encoder.down_blocks.\1.downsamplers.0.", k)
        k = re.sub(r"decoder\.up\.(\d+)\.", lambda m: f"decoder.up_blocks.{levels - 1 - int(m.group(1))}.", k)
        k = k.replace(".block.", ".resnets.").replace(".upsample.", ".upsamplers.0.")
        k = re.sub(r"encoder\.down\.(\d+)\.attn\.", r"encoder.down_blocks.\1.attentions.", k)
        k = k.replace(".attn.", ".attentions.").replace("mid.attn_1", "mid_block.attentions.0")
        m = re.match(r"(.*\.attentions\.\d+)\.(norm|q|k|v|proj_out)\.(weight|bias)$", k)
        if m:
            k = f"{m.group(1)}.{attn[m.group(2)]}.{m.group(3)}"
            if m.group(2) != "norm" and v.ndim == 4:
                v = v[:, :, 0, 0]
        out[k] = v
    return out


def test_matches_diffusers_autoencoderkl_on_the_same_weights():
    diffusers = pytest.importorskip("diffusers")
    n = len(TINY.ch_mult)
    peer = diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=TINY.z_channels, layers_per_block=TINY.num_res_blocks,
        block_out_channels=tuple(TINY.ch * m for m in TINY.ch_mult), norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D",) * (n - 1) + ("AttnDownEncoderBlock2D",),
        up_block_types=("AttnUpDecoderBlock2D",) + ("UpDecoderBlock2D",) * (n - 1)).eval()
    state = random_state()
    peer.load_state_dict(to_diffusers(state, n), strict=True)
    model = build_vavae(state).model
    torch.manual_seed(3)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        dist = peer.encode(x).latent_dist
        mean, std = model.posterior(x)
        assert mean.shape == (2, TINY.z_channels, 4, 6)
        assert torch.allclose(mean, dist.mean, atol=1e-5) and torch.allclose(std, dist.std, atol=1e-5)
        y_peer = peer.decode(dist.mean).sample
        y = model.decode_latents(mean)
    assert (y - y_peer).abs().max() < 1e-4
    assert y.abs().max() > 0.01  # not a trivially zero output


def test_mean_by_default_and_seeded_sample(tmp_path):
    ckpt = write_lightning(tmp_path / "vavae_tiny.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        tok = create_tokenizer("vavae-f16d32", checkpoint=str(ckpt))
        sampled = create_tokenizer("va-vae:sample=true,seed=5", checkpoint=str(ckpt))
    x = torch.rand(1, 3, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        mean, std = tok.model.posterior(x[:, :, 0])
    z = tok.encode(x).latents
    assert torch.equal(z[:, :, 0], mean)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(5))
    zs = sampled.encode(x).latents
    assert torch.allclose(zs[:, :, 0], mean + std * noise, atol=1e-6, rtol=0)
    assert torch.equal(sampled.encode(x).latents, zs)  # reproducible per call
    assert sampled.describe()["posterior"] == "sample(seed=5)" and tok.describe()["posterior"] == "mean"
    y = tok.decode(tok.encode(x))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert tok.encode(x).bits.item() == TINY.z_channels * 4 * 4 * 32
    assert tok.describe()["dropped_training_keys"] == 4


def test_spec():
    spec = get_entry("va-vae").spec
    assert spec.name == "vavae-f16d32" and spec.family == "vavae" and spec.published == "VA-VAE"
    assert spec.kind == "continuous" and spec.latent_channels == 32 and spec.latent_bits == 32
    assert spec.spatial_factor == 16 and not spec.square_only and spec.input_range == (-1.0, 1.0)
    assert spec.checkpoint.hub_repo == "hustvl/vavae-imagenet256-f16d32-dinov2"
    assert spec.checkpoint.hub_filename == "vavae-imagenet256-f16d32-dinov2.pt"


def test_loading_errors_name_keys_and_file(tmp_path):
    state = random_state()
    state["decoder.conv_out.weight"] = torch.zeros(3, 32, 1, 1)
    del state["encoder.mid.attn_1.q.bias"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(BadInputError) as e:
        create_tokenizer("vavae-f16d32", checkpoint=str(bad))
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg
    assert "1 missing (encoder.mid.attn_1.q.bias)" in msg
    assert "1 wrong shape (decoder.conv_out.weight (3, 32, 1, 1) vs (3, 32, 3, 3))" in msg


def test_full_size_upstream_file_loads_through_checkpoint(tmp_path):
    """Random full-size weights in the released layout (a bare state_dict of 342 tensors)."""
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=gen) * 0.02 for k, s in upstream_keys().items()}
    path = tmp_path / "vavae-imagenet256-f16d32-dinov2.pt"
    torch.save(state, path)
    del state
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the released size: no deviation warning
        tok = create_tokenizer("vavae-f16d32", checkpoint=str(path))
    assert tok.spec == get_entry("vavae-f16d32").spec and tok.model.config == RELEASED
    assert tok.describe()["dropped_training_keys"] == 0


# ---------------------------------------------------------------- end to end


def test_cli_run(tmp_path):
    ckpt = write_lightning(tmp_path / "vavae_tiny.pt")
    env = dict(os.environ, TOKBENCH_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tokbench", "run", "--tokenizer", "vavae-f16d32:sample=true,seed=2",
                        "--checkpoint", str(ckpt), "--suite", "text-face", "--limit", "4", "--resolution", "64",
                        "--metrics", "psnr", "--quiet", "--out", str(out), "--name", "vavae"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = load_report(out / "vavae")
    images = rep.rows[rep.rows.level == "image"]
    assert len(images) >= 4 and (images["PSNR"] > 0).all()
    assert (images["bpp"] == TINY.z_channels * 32 * (64 // 16) ** 2 / 64 ** 2).all()  # tiny: 4 channels x 32 bits
    tok = rep.manifest["tokenizer"]
    assert tok["name"] == "vavae-f16d32" and tok["posterior"] == "sample(seed=2)"
    assert tok["checkpoint_path"] == str(ckpt) and tok["spec"]["latent_channels"] == TINY.z_channels
