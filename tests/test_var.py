"""VAR multi-scale VQVAE: key layout of the released file, the quantiser against a naive re-derivation of the
algorithm, schedules, loading rules, and ``tokbench run`` end to end with a tiny checkpoint in upstream's layout.

tests/data/var_vae_ch160v4096z32.keys lists upstream's state_dict (key, shape), dumped from upstream's own
``VQVAE(vocab_size=4096, z_channels=32, ch=160, share_quant_resi=4)`` built on the meta device.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.models.var import SCHEDULES, TRAINING_ONLY_KEYS, VARVQConfig, VARVQVAE, build_var, phi_indices
from tokbench.report import load_report
from tokbench.tokenizers.registry import create_tokenizer, get_entry

ROOT = Path(__file__).resolve().parent.parent
KEYS = Path(__file__).parent / "data" / "var_vae_ch160v4096z32.keys"
TINY = VARVQConfig(ch=32, vocab_size=64, z_channels=8)


def upstream_keys() -> dict[str, tuple[int, ...]]:
    rows = (line.split() for line in KEYS.read_text().splitlines())
    return {k: tuple(int(s) for s in shape.split("x")) for k, shape in rows}


def random_state(cfg: VARVQConfig, seed: int = 0, scales: int = 10) -> dict[str, torch.Tensor]:
    """Random weights in upstream's file layout (the per-scale usage buffer included)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VARVQVAE(cfg)
        model.quantize.embedding.weight.data.normal_(0, 1.0)  # spread codes: argmin decisions matter
    state = dict(model.state_dict())
    state["quantize.ema_vocab_hit_SV"] = torch.zeros(scales, cfg.vocab_size)
    return state


def write_checkpoint(path: Path, cfg: VARVQConfig = TINY, seed: int = 0) -> Path:
    torch.save(random_state(cfg, seed), path)
    return path


# ---------------------------------------------------------------- layout of the released file


def test_full_size_model_has_upstreams_keys_and_shapes():
    with torch.device("meta"):
        model = VARVQVAE()
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    up = upstream_keys()
    assert len(up) == 324
    assert set(up) - set(mine) == set(TRAINING_ONLY_KEYS)  # the usage statistic is dropped by rule
    assert mine == {k: v for k, v in up.items() if k not in TRAINING_ONLY_KEYS}
    assert sum(p.numel() for p in model.parameters()) == 108_948_355  # var.md: about 108.9 M


def test_phi_selection_follows_upstream_ticks():
    assert phi_indices(4, 10) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]  # var.md: the released 10 scales
    assert phi_indices(4, 4) == [0, 1, 2, 3]
    assert sum(pn * pn for pn in SCHEDULES[16]) == 680


# ---------------------------------------------------------------- numerics against a naive re-derivation


def naive_multiscale(model: VARVQVAE, f: torch.Tensor, patch_nums):
    """The algorithm of var.md written independently for the 10-scale schedule: area pooling = adaptive
    average pooling, cdist for the nearest code, bicubic up, phi = 0.5 h + 0.5 conv(h), accumulate f_hat."""
    codebook = model.quantize.embedding.weight
    phis = model.quantize.quant_resi.qresi_ls
    n = len(patch_nums)
    assert n == 10
    phi_of_scale = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]  # var.md (scales 2 and 7 are float64-rounded ties)
    rest, f_hat, out = f.clone(), torch.zeros_like(f), []
    for si, pn in enumerate(patch_nums):
        z = F.adaptive_avg_pool2d(rest, pn) if si < n - 1 else rest
        d = torch.cdist(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double(), codebook.double())
        idx = d.argmin(1)
        h = codebook[idx].view(f.shape[0], pn, pn, -1).permute(0, 3, 1, 2)
        if si < n - 1:
            h = F.interpolate(h, size=f.shape[-2:], mode="bicubic", align_corners=False)
        k = phi_of_scale[si]
        h = 0.5 * h + 0.5 * F.conv2d(h, phis[k].weight, phis[k].bias, padding=1)
        f_hat, rest = f_hat + h, rest - h
        out.append(idx.view(f.shape[0], -1))
    return out, f_hat


def test_quantiser_matches_naive_derivation_and_decode_rebuilds_f_hat():
    loaded = build_var(random_state(TINY))
    model = loaded.model
    assert loaded.dropped_keys == list(TRAINING_ONLY_KEYS)
    torch.manual_seed(1)
    f = torch.randn(2, TINY.z_channels, 16, 16) * 2
    pn = SCHEDULES[16]
    with torch.no_grad():
        got = model.quantize.quantize(f, pn)
        want, want_fhat = naive_multiscale(model, f, pn)
        assert [g.shape for g in got] == [(2, p * p) for p in pn]
        assert all(torch.equal(g, w) for g, w in zip(got, want))
        assert len(torch.cat(got, 1).unique()) > 20  # the codebook is really searched
        f_hat = model.quantize.f_hat(got, pn)
    assert torch.allclose(f_hat, want_fhat, atol=1e-4)
    # the residual left after the last scale is what f_hat misses (quantisation error of the final scale)
    assert (f - f_hat).abs().max() < f.abs().max()


def test_reconstruction_is_clamped_and_schedule_is_checked():
    model = build_var(random_state(TINY)).model
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        with pytest.raises(ValueError, match="schedule ends at 16 but the latent is 4x4"):
            model.encode_indices(x, SCHEDULES[16])
        y = model.decode_indices(model.encode_indices(x, (1, 2, 3, 4)), (1, 2, 3, 4))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1


# ---------------------------------------------------------------- the registry entry


def test_spec():
    spec = get_entry("var").spec
    assert spec.name == "var-ch160v4096z32" and spec.family == "var" and spec.published == "VAR"
    assert spec.square_only and spec.spatial_multiple == 16 and spec.input_range == (-1.0, 1.0)
    assert spec.checkpoint.hub_repo == "FoundationVision/var"
    assert spec.checkpoint.hub_filename == "vae_ch160v4096z32.pth"


def tiny_tokenizer(tmp_path, **options):
    ckpt = write_checkpoint(tmp_path / "vae_tiny.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        return create_tokenizer("var", checkpoint=str(ckpt), **options), ckpt


def test_tokenizer_rate_counts_every_scale(tmp_path):
    tok, _ = tiny_tokenizer(tmp_path)
    x = torch.rand(1, 3, 1, 256, 256) * 2 - 1
    enc = tok.encode(x)
    assert enc.indices.shape == (1, 1, 680)
    assert enc.bits.tolist() == [680 * math.log2(64)]  # tiny codebook: 64 codes
    y = tok.decode(enc)
    assert y.shape == x.shape
    with torch.no_grad():  # same as the model's own round trip on the preset schedule
        ref = tok.model.decode_indices(tok.model.encode_indices(x[:, :, 0], SCHEDULES[16]), SCHEDULES[16])
    assert torch.equal(y[:, :, 0], ref)
    d = tok.describe()
    assert "img_to_reconstructed_img" in d["decode_path"] and d["size_deviations"]["ch"] == [32, 160]


def test_sizes_without_a_preset_need_patch_nums(tmp_path):
    tok, _ = tiny_tokenizer(tmp_path)
    with pytest.raises(BadInputError, match="no upstream scale schedule for 64 px.*patch_nums=1-2-...-4"):
        tok.encode(torch.zeros(1, 3, 1, 64, 64))
    tok, _ = tiny_tokenizer(tmp_path, patch_nums="1-2-4")
    assert tok.encode(torch.zeros(1, 3, 1, 64, 64)).indices.shape == (1, 1, 21)
    with pytest.raises(BadInputError, match="increasing"):
        tiny_tokenizer(tmp_path, patch_nums="4-2")


def test_loading_errors_name_keys_and_file(tmp_path):
    state = random_state(TINY)
    del state["quantize.quant_resi.qresi_ls.2.bias"]
    state["decoder.extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(BadInputError) as e:
        create_tokenizer("var", checkpoint=str(bad))
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg
    assert "1 missing (quantize.quant_resi.qresi_ls.2.bias)" in msg and "1 unexpected (decoder.extra.weight)" in msg
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": random_state(TINY)}, wrapped)
    with pytest.raises(BadInputError, match="expected a bare state_dict"):
        create_tokenizer("var", checkpoint=str(wrapped))


def test_full_size_upstream_file_loads_through_checkpoint(tmp_path):
    """Random full-size weights, saved as upstream saves them (bare state_dict, 324 keys)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in VARVQVAE().state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=gen) * 0.02 for k, s in shapes.items()}
    state["quantize.ema_vocab_hit_SV"] = torch.zeros(10, 4096)
    assert {k: tuple(v.shape) for k, v in state.items()} == upstream_keys()
    path = tmp_path / "vae_ch160v4096z32.pth"
    torch.save(state, path)
    del state
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the released size: no deviation warning
        tok = create_tokenizer("var-ch160v4096z32", checkpoint=str(path))
    assert tok.spec == get_entry("var").spec
    assert tok.describe()["dropped_training_keys"] == ["quantize.ema_vocab_hit_SV"]
    assert tok.model.config == VARVQConfig()


def test_missing_weights_is_one_line(tmp_path, monkeypatch):
    from tiny_models import isolate_caches

    isolate_caches(monkeypatch, tmp_path)
    with pytest.raises(MissingWeightsError, match=r"missing var/vae_ch160v4096z32.pth \(from "
                                                  r"hf://FoundationVision/var/vae_ch160v4096z32.pth\); put it at"):
        create_tokenizer("var")


# ---------------------------------------------------------------- end to end


def test_cli_run_and_list(tmp_path):
    ckpt = write_checkpoint(tmp_path / "vae_tiny.pth")
    env = dict(os.environ, TOKBENCH_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tokbench", "run", "--tokenizer", "var:patch_nums=1-2-3-4",
                        "--checkpoint", str(ckpt), "--suite", "text-face", "--limit", "4", "--resolution", "64",
                        "--metrics", "psnr", "--quiet", "--out", str(out), "--name", "var"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = load_report(out / "var")
    images = rep.rows[rep.rows.level == "image"]
    assert len(images) >= 4 and (images["PSNR"] > 0).all()
    assert (images["bpp"] == (1 + 4 + 9 + 16) * math.log2(TINY.vocab_size) / 64 ** 2).all()
    tok = rep.manifest["tokenizer"]
    assert tok["name"] == "var-ch160v4096z32" and tok["patch_nums"] == "1-2-3-4"
    assert tok["checkpoint_path"] == str(ckpt)
    listed = subprocess.run([sys.executable, "-m", "tokbench", "list", "--family", "var"], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=300)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.startswith("var-")]
    assert len(rows) == 1 and " VAR " in rows[0] and "missing" in rows[0]
