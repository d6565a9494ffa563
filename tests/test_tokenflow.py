"""TokenFlow dual-codebook tokenizers: the released files' key layouts, the shared-index quantiser against a naive
re-derivation, strict loading of upstream-layout files, and ``tokbench run`` end to end with a tiny checkpoint.

tests/data/tokenflow_clipb_32k_enhanced.keys and tokenflow_siglip_32k.keys list upstream's state_dict (key,
shape), dumped from upstream's own ``VQ_models["TokenFlow"](codebook_size=32768, codebook_embed_dim=8,
semantic_code_dim=32, teacher=..., enhanced_decoder=..., infer_interpolate=...)`` built on the meta device, the
SigLIP one under transformers 4.43.4 (upstream's pin, whose SiglipVisionModel keeps ``vision_model.``).
"""
from __future__ import annotations

import csv
import dataclasses
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tokbench.cli import main as cli_main
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.models.tokenflow import CLIPB_ENHANCED, SIGLIP, TokenFlow
from tokbench.report import load_report
from tokbench.tokenizers.registry import create_tokenizer, get_entry
from tokbench.tokenizers.tokenflow import SIDE_AND_TOKENS

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
CLIPB, XL = "tokenflow-clipb-32k-enhanced", "tokenflow-siglip-32k"
# tiny sizes; teacher, scale schedule and input side stay the released ones
TINY = dict(codebook_size=64, usage_buffer=16, z_channels=32, encoder_ch=32, encoder_res_blocks=1,
            ch_mult=(1, 1, 1, 1, 2), decoder_ch=32, decoder_res_blocks=1, tower_layers=1, sem_depth=1,
            semantic_out=16)
TINY_CLIPB = dataclasses.replace(CLIPB_ENHANCED, tower_width=96, tower_heads=1, tower_mlp=384, **TINY)
TINY_SIGLIP = dataclasses.replace(SIGLIP, tower_width=144, tower_heads=2, tower_mlp=64, **TINY)


def upstream_keys(file: str) -> dict[str, tuple[int, ...]]:
    rows = (line.split() for line in (DATA / f"{file}.keys").read_text().splitlines())
    return {k: tuple(int(s) for s in shape.split("x")) for k, shape in rows}


def random_state(cfg, seed: int = 0, released_layout: bool = True) -> dict[str, torch.Tensor]:
    """Random weights in upstream's file layout (SigLIP's tower under transformers 4.43's ``vision_model.``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TokenFlow(cfg)
        for p in model.parameters():  # positions, class token and q/v biases start at zero: give them values
            if p.abs().max() == 0:
                p.data.normal_(0, 0.02)
    state = dict(model.state_dict())
    if cfg.teacher == "siglip" and released_layout:
        state = {k if k.startswith("encoder_vqkd.vision_model.") else
                 k.replace("encoder_vqkd.", "encoder_vqkd.vision_model.", 1): v for k, v in state.items()}
    return state


def write_checkpoint(path: Path, cfg=TINY_CLIPB, container: str = "model") -> Path:
    torch.save({container: random_state(cfg)}, path)
    return path


def load_tiny(name: str, path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        return create_tokenizer(name, checkpoint=str(path))


# ---------------------------------------------------------------- layout of the released files


@pytest.mark.parametrize("cfg,file,count,params", [
    (CLIPB_ENHANCED, "tokenflow_clipb_32k_enhanced", 649, 376_569_643),
    (SIGLIP, "tokenflow_siglip_32k", 848, 554_009_963)])
def test_full_size_models_have_upstreams_keys_and_shapes(cfg, file, count, params):
    with torch.device("meta"):
        model = TokenFlow(cfg)
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    up = {k.replace("encoder_vqkd.vision_model.", "encoder_vqkd."): v for k, v in upstream_keys(file).items()}
    assert len(up) == count and mine == up
    assert sum(p.numel() for p in model.parameters()) == params  # tokenflow.md: about 376.6 M / 554 M


def test_specs_and_rate():
    clipb, xl = get_entry("tokenflow").spec, get_entry("tokenflow-xl").spec
    assert (clipb.name, clipb.published, clipb.input_size, xl.name, xl.published, xl.input_size) == (
        CLIPB, "TokenFlow", 256, XL, None, 384)
    assert clipb.checkpoint.hub_repo == xl.checkpoint.hub_repo == "ByteFlow-AI/TokenFlow"
    assert (clipb.checkpoint.hub_filename, xl.checkpoint.hub_filename) == (
        "tokenflow_clipb_32k_enhanced.pt", "tokenflow_siglip_32k.pt")
    assert clipb.input_range == (-1.0, 1.0) and clipb.codebook_size == 32768
    assert (CLIPB_ENHANCED.tokens, SIGLIP.tokens) == (817, 2227)
    assert SIDE_AND_TOKENS == {c.teacher: (c.input_size, c.tokens) for c in (CLIPB_ENHANCED, SIGLIP)}
    with open(ROOT / "tokbench/leaderboard/published_tokbench.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == clipb.published]
    assert sorted(int(r["resolution"]) for r in rows) == [256, 512, 1024]
    assert CLIPB_ENHANCED.scales[-1] == CLIPB_ENHANCED.grid and SIGLIP.scales[-1] == SIGLIP.grid == 27


def test_list_shows_entries_and_missing_file_is_one_line(capsys, tmp_path, monkeypatch):
    from tiny_models import isolate_caches

    isolate_caches(monkeypatch, tmp_path)
    assert cli_main(["list", "--family", "tokenflow"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tokenflow-")]
    assert sorted(r.split()[0] for r in rows) == [CLIPB, XL]
    assert all("missing" in r for r in rows) and " TokenFlow " in rows[0]
    assert rows[0].endswith("tokenflow/tokenflow_clipb_32k_enhanced.pt")
    with pytest.raises(MissingWeightsError) as err:
        create_tokenizer(XL)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{XL}: missing tokenflow/tokenflow_siglip_32k.pt (from "
                                              "hf://ByteFlow-AI/TokenFlow/tokenflow_siglip_32k.pt); put it at ")
    assert str(tmp_path) in msg


# ---------------------------------------------------------------- numerics against a naive re-derivation


def naive_indices(model: TokenFlow, h: torch.Tensor, scales) -> tuple[list[torch.Tensor], torch.Tensor]:
    """tokenflow.md's algorithm written independently: adaptive average pooling, each half and each codebook
    row unit-normalised, nearest pair by the summed squared distances (cdist, float64), bicubic up, accumulate."""
    e_sem = F.normalize(model.quantize.embedding_vqkd.weight.double(), dim=-1)
    e_pix = F.normalize(model.quantize.embedding_vqgan.weight.double(), dim=-1)
    side, rest, total, out = scales[-1], h.clone(), torch.zeros_like(h), []
    for s in scales:
        z = F.adaptive_avg_pool2d(rest, s).permute(0, 2, 3, 1).reshape(-1, h.shape[1]).double()
        a, b = F.normalize(z[:, :e_sem.shape[1]], dim=-1), F.normalize(z[:, e_sem.shape[1]:], dim=-1)
        idx = (torch.cdist(a, e_sem) ** 2 + torch.cdist(b, e_pix) ** 2).argmin(1)
        q = torch.cat([e_sem, e_pix], -1)[idx].float().view(h.shape[0], s, s, -1).permute(0, 3, 1, 2)
        q = F.interpolate(q, size=(side, side), mode="bicubic", align_corners=False)
        total, rest = total + q, rest - q
        out.append(idx.view(h.shape[0], -1))
    return out, total


def test_shared_index_quantiser_matches_naive_derivation():
    model = TokenFlow(TINY_CLIPB)
    model.load_state_dict(random_state(TINY_CLIPB))
    torch.manual_seed(1)
    h = torch.randn(2, 40, 16, 16)
    scales = TINY_CLIPB.scales
    with torch.no_grad():
        got, quant = model.quantize_scales(h)
        want, want_total = naive_indices(model, h, scales)
        assert [g.shape for g in got] == [(2, s * s) for s in scales]
        assert all(torch.equal(g, w) for g, w in zip(got, want))
        assert torch.cat(got, 1).unique().numel() > 40  # the 64 pairs are really searched
        assert torch.allclose(quant, want_total, atol=1e-5)
        # decode_code's latent (indices -> normalised pairs, bicubic, summed) rebuilds the encoder's quant
        assert torch.allclose(model.lookup_scales(torch.cat(got, 1)), quant, atol=1e-5)
        with pytest.raises(ValueError, match="ends at 16 but the latent is 8x8"):
            model.quantize_scales(h[..., :8, :8])


# ---------------------------------------------------------------- loading


def test_siglip_file_in_transformers_443_layout_loads_strictly(tmp_path):
    path = write_checkpoint(tmp_path / "tokenflow_siglip_tiny.pt", TINY_SIGLIP, container="ema")
    saved = torch.load(path)["ema"]
    tower = [k for k in saved if k.startswith("encoder_vqkd.")]
    assert len(tower) == 32 and all(k.startswith("encoder_vqkd.vision_model.") for k in tower)
    tok = load_tiny("tokenflow-xl", path)
    d = tok.describe()
    assert d["weights_from"] == "ema" and d["renamed_keys"].startswith("32 x encoder_vqkd.vision_model.")
    assert d["size_deviations"]["tower_width"] == [144, 1152] and d["tokens"] == 2227
    mine = tok.model.state_dict()
    assert all(torch.equal(mine[k.replace("vision_model.", "", 1)], v) for k, v in saved.items())


def test_siglip_round_trip_resizes_around_the_pixel_cnn():
    """A small SigLIP config (56 px, 4x4 patch grid): the CNN codes the bicubic 64x64 (16 x grid) and its
    output comes back at 56x56; indices cover the three scales."""
    cfg = dataclasses.replace(TINY_SIGLIP, input_size=56, tower_grid=4, scales=(1, 2, 4))
    model = TokenFlow(cfg)
    model.load_state_dict({k.replace("vision_model.", "", 1): v for k, v in random_state(cfg).items()})
    model.eval()
    x = torch.rand(2, 3, 56, 56) * 2 - 1
    with torch.no_grad():
        idx, quant = model.encode(x)
        pix = model.quant_conv(model.encoder(F.interpolate(x, size=(64, 64), mode="bicubic")))
        assert torch.equal(model.latent(x)[:, 32:], pix)
        y = model.decode(quant)
    assert idx.shape == (2, 21) and quant.shape == (2, 40, 4, 4) and y.shape == (2, 3, 56, 56)


def test_loading_errors_name_keys_and_file(tmp_path):
    state = random_state(TINY_CLIPB)
    del state["decoder_vqkd.blocks.0.attn.q_bias"]
    state["decoder.extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save({"model": state}, bad)
    with pytest.raises(BadInputError) as e:
        load_tiny(CLIPB, bad)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg
    assert "1 missing (decoder_vqkd.blocks.0.attn.q_bias)" in msg and "1 unexpected (decoder.extra.weight)" in msg
    torch.save({"model": random_state(TINY_SIGLIP)}, bad)  # a SigLIP file for the CLIP entry
    with pytest.raises(BadInputError, match="not a TokenFlow clipb checkpoint: no encoder_vqkd.conv1.weight"):
        load_tiny(CLIPB, bad)


def test_tokenizer_wants_its_fixed_side_and_decodes_from_indices_on_request(tmp_path):
    path = write_checkpoint(tmp_path / "tiny.pt")
    tok = load_tiny(CLIPB, path)
    with pytest.raises(BadInputError, match="takes 256x256 inputs only, got 64x64"):
        tok.encode(torch.zeros(1, 3, 1, 64, 64))
    x = torch.rand(1, 3, 1, 256, 256) * 2 - 1
    enc = tok.encode(x)
    assert enc.indices.shape == (1, 1, 817) and enc.bits.tolist() == [817 * 6.0]
    y = tok.decode(enc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok_i = create_tokenizer(f"{CLIPB}:from_indices=true", checkpoint=str(path))
    y_i = tok_i.decode(dataclasses.replace(enc, latents=None))
    assert 0 < (y - y_i).abs().max() < 1e-4  # float rounding only (tokenflow.md)
    assert "decode_code" in tok_i.describe()["decode_path"] and tok_i.label.endswith(":from_indices=True")


# ---------------------------------------------------------------- end to end


def test_run_fits_into_the_fixed_side(tmp_path, monkeypatch):
    """``tokbench run``'s pipeline in process (as tests/test_families_run.py), tiny upstream-layout file."""
    from tiny_models import isolate_caches
    from tokbench.pipeline import RunConfig, run

    isolate_caches(monkeypatch, tmp_path / "caches")
    ckpt = write_checkpoint(tmp_path / "tokenflow_tiny.pt")
    rep = run(RunConfig(tokenizer="tokenflow", suite="text-face", checkpoint=str(ckpt), limit=1, resolutions=[64],
                        metrics=["psnr"], quiet=True, out=str(tmp_path / "out"), name="tf",
                        allow_unbinned_resolution=True))
    rep = load_report(tmp_path / "out" / "tf")
    images = rep.rows[rep.rows.level == "image"]
    assert len(images) >= 2 and (images["PSNR"] > 0).all()
    assert (images["bpp"] == 817 * math.log2(64) / 256 ** 2).all()  # coded at 256x256, not the 64 asked for
    m = rep.manifest
    assert m["tokenizer"]["name"] == CLIPB and m["tokenizer"]["checkpoint_path"] == str(ckpt)
    assert m["tokenizer"]["spec"]["input_size"] == 256 and "accepts 256x256 only" in m["harness"]["fixed_input"]
