"""LlamaGen / taming / Chameleon VQGAN entries: specs, upstream key layouts at full size (meta device), loading of
upstream file layouts (strict keys, training-only keys dropped, one-line errors), and numerics (quantiser
against brute force, decode paths, encoder against transformers' ChameleonVQVAE)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from vqgan_fixtures import (lightning_checkpoint, llamagen_checkpoint, pickled_class, random_vqgan, save_checkpoint,
                            tiny_config, write_tiny_checkpoint)
from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError
from tokbench.models.vqgan import VQGAN, VQGANConfig, taming_attn_levels
from tokbench.tokenizers.conv_vq import RELEASES
from tokbench.tokenizers.registry import create_tokenizer, get_entry, weights_status

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
ENTRIES = ["llamagen-vq16-c2i", "llamagen-vq8-c2i", "llamagen-vq16-t2i", "taming-vqgan-imagenet-f16-1024",
           "taming-vqgan-imagenet-f16-16384", "chameleon-vqgan"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")


def meta_state(cfg: VQGANConfig) -> dict[str, tuple]:
    with torch.device("meta"):
        model = VQGAN(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def images(n=1, side=64, seed=0):
    return torch.rand(n, 3, 1, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- registry ---------------------------------------------------------------------------------------------

def test_specs_and_published_rows():
    with open(ROOT / "tokbench/leaderboard/published_tokbench.csv", newline="") as f:
        methods = {row["method"] for row in csv.DictReader(f)}
    want = {"llamagen-vq16-c2i": (16, 16384, 8, "LlamaGen", "FoundationVision/LlamaGen", "vq_ds16_c2i.pt"),
            "llamagen-vq8-c2i": (8, 16384, 8, "LlamaGen (F8)", "FoundationVision/LlamaGen", "vq_ds8_c2i.pt"),
            "llamagen-vq16-t2i": (16, 16384, 8, None, "peizesun/llamagen_t2i", "vq_ds16_t2i.pt"),
            "taming-vqgan-imagenet-f16-1024": (16, 1024, 256, None, None, None),
            "taming-vqgan-imagenet-f16-16384": (16, 16384, 256, "VQGAN", None, None),
            "chameleon-vqgan": (16, 8192, 256, "Chameleon", None, None)}
    for name, (factor, codes, dim, row, hub, hub_file) in want.items():
        spec = get_entry(name).spec
        assert (spec.kind, spec.input_range, spec.modalities) == ("discrete", (-1.0, 1.0), {"image"})
        assert (spec.spatial_factor, spec.spatial_multiple, spec.codebook_size, spec.latent_channels) == \
            (factor, factor, codes, dim)
        assert not spec.square_only and spec.published == row
        assert row is None or row in methods
        assert (spec.checkpoint.hub_repo, spec.checkpoint.hub_filename) == (hub, hub_file)
    assert get_entry("vqgan").spec.name == "taming-vqgan-imagenet-f16-16384"
    assert get_entry("llamagen").spec.name == "llamagen-vq16-c2i"
    assert get_entry("chameleon").spec.name == "chameleon-vqgan"
    assert get_entry("llamagen").option_names() == ["decode_from", "channels_last"]


@pytest.mark.parametrize("name,needle", [("llamagen-vq8-c2i", "hf://FoundationVision/LlamaGen/vq_ds8_c2i.pt"),
                                         ("taming-vqgan-imagenet-f16-16384", "heibox.uni-heidelberg.de/d/a7530b09"),
                                         ("chameleon-vqgan", "chameleon-downloads")])
def test_missing_weights_is_one_line_naming_file_and_place(name, needle):
    with pytest.raises(MissingWeightsError) as err:
        create_tokenizer(name)
    message = str(err.value)
    spec = get_entry(name).spec
    assert "\n" not in message and message.startswith(f"{name}:") and needle in message
    assert spec.checkpoint.where_to_put() in message
    status = weights_status(get_entry(name))
    assert status["weights"] == "missing" and status["path"] == spec.checkpoint.where_to_put()


# -- full-size architectures, no weights --------------------------------------------------------------------

def test_full_size_llamagen_key_layout():
    vq16, vq8 = meta_state(RELEASES["llamagen-vq16-c2i"].config), meta_state(RELEASES["llamagen-vq8-c2i"].config)
    assert len(vq16) == 344 and len(vq8) == 300  # llamagen.md
    assert meta_state(RELEASES["llamagen-vq16-t2i"].config) == vq16
    assert sum(math.prod(s) for s in vq16.values()) == 71_948_939  # README "72M" (with the 65536 usage buffer)
    assert sum(math.prod(s) for s in vq8.values()) == 70_175_371  # README "70M"
    assert vq16["quantize.embedding.weight"] == (16384, 8) and vq16["quantize.codebook_used"] == (65536,)
    assert vq16["quant_conv.weight"] == (8, 256, 1, 1) and vq16["post_quant_conv.weight"] == (256, 8, 1, 1)
    assert vq16["encoder.conv_in.weight"] == (128, 3, 3, 3) and vq16["encoder.conv_out.weight"] == (256, 512, 3, 3)
    # attention only at the lowest level; decoder levels stored in execution order (0 = lowest resolution)
    assert {k.split(".attn.")[0] for k in vq16 if ".attn." in k} == {"encoder.conv_blocks.4", "decoder.conv_blocks.0"}
    assert vq16["decoder.conv_blocks.0.res.2.conv2.weight"] == (512, 512, 3, 3)
    assert vq16["decoder.conv_blocks.3.res.0.nin_shortcut.weight"] == (128, 256, 1, 1)
    assert "decoder.conv_blocks.3.upsample.conv.weight" in vq16 and not any("conv_blocks.4.upsample" in k for k in vq16)
    assert not any("encoder.conv_blocks.4.downsample" in k for k in vq16)
    assert {k for k in vq16 if k.startswith("encoder.mid.")} >= {"encoder.mid.0.conv1.weight", "encoder.mid.1.q.weight",
                                                                  "encoder.mid.2.norm2.bias"}
    assert vq8["encoder.conv_blocks.3.attn.1.proj_out.weight"] == (512, 512, 1, 1)


def test_full_size_taming_and_chameleon_key_layout():
    t1024, t16384 = (meta_state(RELEASES[f"taming-vqgan-imagenet-f16-{n}"].config) for n in (1024, 16384))
    cham = meta_state(RELEASES["chameleon-vqgan"].config)
    assert len(t16384) == len(t1024) == 343 and len(cham) == 293  # taming-vqgan.md, chameleon.md
    assert t16384["quantize.embedding.weight"] == (16384, 256) and t1024["quantize.embedding.weight"] == (1024, 256)
    assert cham["quantize.embedding.weight"] == (8192, 256)
    assert {k: v for k, v in t1024.items() if "embedding" not in k} == \
        {k: v for k, v in t16384.items() if "embedding" not in k}
    # taming: attention at nominal resolution 16 = level 4; decoder indexed by level (up.4 runs first)
    assert {k.split(".attn.")[0] for k in t16384 if ".attn." in k} == {"encoder.down.4", "decoder.up.4"}
    assert t16384["decoder.up.4.block.2.conv1.weight"] == (512, 512, 3, 3)
    assert t16384["decoder.up.1.block.0.nin_shortcut.weight"] == (128, 256, 1, 1)
    assert "decoder.up.1.upsample.conv.weight" in t16384
    assert not any(k.startswith("decoder.up.0.upsample") for k in t16384)
    assert "encoder.mid.attn_1.q.weight" in t16384 and "decoder.mid.block_2.conv2.weight" in t16384
    assert not any("temb" in k for k in t16384)
    # Chameleon: the same minus every level attention (attn_resolutions: [])
    assert set(cham) == {k for k in t16384 if ".attn." not in k}
    assert taming_attn_levels(256, [16], 5) == (4,) and taming_attn_levels(512, [16], 5) == () \
        and taming_attn_levels(512, [32], 5) == (4,)


# -- loading upstream files -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["llamagen-vq16-c2i", "llamagen-vq8-c2i", "taming-vqgan-imagenet-f16-1024",
                                  "chameleon-vqgan"])
def test_upstream_layout_loads_and_reconstructs(name, tmp_path):
    path = write_tiny_checkpoint(name, tmp_path / "tiny.ckpt", seed=1)
    with pytest.warns(UserWarning, match="not the released size"):
        tok = create_tokenizer(name, checkpoint=str(path))  # weights_only: no --allow-unsafe-checkpoint needed
    d = tok.describe()
    layout = RELEASES[name].config.layout
    assert d["weights_from"] == ("model" if layout == "llamagen" else "state_dict")
    assert d["dropped_training_keys"] == (0 if layout == "llamagen" else 4)  # the loss.* modules
    assert d["decode_from"] == RELEASES[name].decode_from and d["model_config"]["ch"] == 32
    expected = random_vqgan(tiny_config(name), seed=1)
    for k, v in expected.state_dict().items():
        assert torch.equal(tok.model.state_dict()[k], v), k
    x = images(2, 64)
    enc = tok.encode(x)
    f = get_entry(name).spec.spatial_factor
    assert enc.indices.shape == (2, 1, 64 // f, 64 // f)
    assert torch.equal(enc.bits, torch.full((2,), (64 // f) ** 2 * math.log2(get_entry(name).spec.codebook_size),
                                            dtype=torch.float64))
    y = tok.decode(enc)
    assert y.shape == x.shape and torch.isfinite(y).all()
    ref_idx, ref_quant = expected.encode(x[:, :, 0])
    assert torch.equal(enc.indices[:, 0], ref_idx)
    ref = expected.decode(ref_quant) if d["decode_from"] == "quant" else expected.decode_indices(ref_idx)
    assert torch.equal(y[:, :, 0], ref)


def test_llamagen_prefers_ema_like_tokbench(tmp_path):
    cfg = tiny_config("llamagen-vq16-c2i")
    model, ema = random_vqgan(cfg, 1), random_vqgan(cfg, 2)
    path = save_checkpoint(llamagen_checkpoint(model, ema=ema), tmp_path / "with_ema.pt")
    with pytest.warns(UserWarning):
        tok = create_tokenizer("llamagen-vq16-c2i", checkpoint=str(path))
    assert tok.describe()["weights_from"] == "ema"
    assert torch.equal(tok.model.encoder.conv_in.weight, ema.encoder.conv_in.weight)
    # a bare state_dict with a DDP prefix loads too
    bare = save_checkpoint({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "bare.pt")
    with pytest.warns(UserWarning):
        tok = create_tokenizer("llamagen-vq16-c2i", checkpoint=str(bare))
    assert tok.describe()["weights_from"] == "bare"
    assert torch.equal(tok.model.decoder.conv_out.weight, model.decoder.conv_out.weight)


def test_strict_keys_and_identity_errors_are_one_line(tmp_path):
    model = random_vqgan(tiny_config("llamagen-vq16-c2i"), 1)
    sd = dict(model.state_dict())
    del sd["decoder.mid.1.q.bias"]
    sd["decoder.extra.weight"] = torch.zeros(1)
    path = save_checkpoint({"model": sd}, tmp_path / "broken.pt")
    with pytest.raises(BadInputError) as err:
        create_tokenizer("llamagen-vq16-c2i", checkpoint=str(path))
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "1 missing (decoder.mid.1.q.bias)" in msg
    assert "1 unexpected (decoder.extra.weight)" in msg
    # shape mismatch
    sd = dict(model.state_dict())
    sd["decoder.conv_out.bias"] = torch.zeros(4)
    path = save_checkpoint({"model": sd}, tmp_path / "shape.pt")
    with pytest.raises(BadInputError, match=r"1 wrong shape \(decoder.conv_out.bias \(4,\) vs \(3,\)\)"):
        create_tokenizer("llamagen-vq16-c2i", checkpoint=str(path))
    # a VQ-8 file given to the VQ-16 entry, a 1024-code file to the 16384 entry, a LlamaGen file to taming
    vq8 = write_tiny_checkpoint("llamagen-vq8-c2i", tmp_path / "vq8.pt")
    with pytest.raises(BadInputError, match="levels=4 \\(expected 5\\).*looks like a checkpoint for llamagen-vq8-c2i"):
        create_tokenizer("llamagen-vq16-c2i", checkpoint=str(vq8))
    t1024 = write_tiny_checkpoint("taming-vqgan-imagenet-f16-1024", tmp_path / "t1024.ckpt")
    with pytest.raises(BadInputError, match="n_embed=1024 \\(expected 16384\\).*taming-vqgan-imagenet-f16-1024"):
        create_tokenizer("vqgan", checkpoint=str(t1024))
    lg = write_tiny_checkpoint("llamagen-vq16-c2i", tmp_path / "lg.pt")
    with pytest.raises(BadInputError, match="does not fit"):
        create_tokenizer("chameleon-vqgan", checkpoint=str(lg))


def test_lightning_callback_class_key_needs_no_unsafe_opt_in(tmp_path):
    """pytorch-lightning 1.0 keyed callback states by class; that global alone does not need --allow-unsafe."""
    path = write_tiny_checkpoint("taming-vqgan-imagenet-f16-16384", tmp_path / "last.ckpt")
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # what plain torch says
    with pytest.warns(UserWarning):
        tok = create_tokenizer("taming-vqgan-imagenet-f16-16384", checkpoint=str(path))
    assert tok.describe()["dropped_training_keys"] == 4
    # any other global still needs the opt-in, and the message names only that one
    obj = lightning_checkpoint(random_vqgan(tiny_config("taming-vqgan-imagenet-f16-16384"), 0))
    obj["hparams_type"] = pickled_class("omegaconf.dictconfig", "DictConfig")
    other = save_checkpoint(obj, tmp_path / "other.ckpt")
    with pytest.raises(UnsafeCheckpointError) as err:
        create_tokenizer("taming-vqgan-imagenet-f16-16384", checkpoint=str(other))
    assert "omegaconf.dictconfig.DictConfig" in str(err.value) and "ModelCheckpoint" not in str(err.value)


def test_full_size_upstream_file_loads(tmp_path):
    """A full-size LlamaGen VQ-8 in upstream's training-checkpoint layout, through --checkpoint, strict and silent."""
    model = random_vqgan(RELEASES["llamagen-vq8-c2i"].config, seed=3)
    path = save_checkpoint(llamagen_checkpoint(model), tmp_path / "vq_ds8_c2i.pt")
    tok = create_tokenizer("llamagen-vq8-c2i", checkpoint=str(path))
    d = tok.describe()
    assert "size_deviations" not in d and d["weights_from"] == "model"
    assert sum(p.numel() for p in tok.model.state_dict().values()) == 70_175_371
    x = images(1, 16)
    enc = tok.encode(x)
    assert enc.indices.shape == (1, 1, 2, 2) and tok.decode(enc).shape == x.shape
    assert torch.equal(enc.indices[:, 0], model.encode(x[:, :, 0])[0])


# -- numerics -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("l2", [False, True])
def test_quantiser_is_nearest_code(l2):
    """Indices equal the brute-force nearest code (float64 distances; l2: between unit vectors), straight-through
    quant equals the chosen code to float rounding, and decoding indices uses the same (normalised) rows."""
    cfg = VQGANConfig("llamagen" if l2 else "taming", n_embed=512, embed_dim=8, ch=32, ch_mult=(1, 1),
                      num_res_blocks=1, z_channels=32, l2_norm=l2)
    model = random_vqgan(cfg, 4)
    q = model.quantize
    z = torch.randn(3, 8, 5, 7, generator=torch.Generator().manual_seed(5))
    idx, quant = q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8).double()
    codes = q.embedding.weight.double()
    if l2:
        flat, codes = torch.nn.functional.normalize(flat, dim=1), torch.nn.functional.normalize(codes, dim=1)
    dist = torch.cdist(flat, codes)
    top2 = dist.topk(2, largest=False).values
    clear = (top2[:, 1] - top2[:, 0]) > 1e-5  # leave float32 near-ties out of an exact comparison
    assert clear.float().mean() > 0.95
    assert torch.equal(idx.reshape(-1)[clear], dist.argmin(1)[clear])
    chosen = codes[idx.reshape(-1)].float().view(3, 5, 7, 8).permute(0, 3, 1, 2)
    assert torch.allclose(quant, chosen, atol=1e-6)
    assert torch.equal(q.lookup(idx), chosen.contiguous()) or torch.allclose(q.lookup(idx), chosen, atol=0)
    # blocked distances give the same indices as one block
    import tokbench.models.vqgan.model as m
    saved = m.DISTANCE_ELEMENTS
    try:
        m.DISTANCE_ELEMENTS = 512 * 7
        assert torch.equal(q(z)[0], idx)
    finally:
        m.DISTANCE_ELEMENTS = saved


def test_decode_paths_and_floor_geometry(tmp_path):
    path = write_tiny_checkpoint("llamagen-vq16-c2i", tmp_path / "lg.pt", seed=2)
    with pytest.warns(UserWarning):
        via_quant = create_tokenizer("llamagen-vq16-c2i", checkpoint=str(path))
        via_idx = create_tokenizer("llamagen-vq16-c2i:decode_from=indices", checkpoint=str(path))
    x = images(1, 64, seed=3)
    a, b = via_quant.reconstruct(x)[0], via_idx.reconstruct(x)[0]
    assert 0 < (a - b).abs().max() < 1e-4  # only the straight-through rounding differs
    assert via_idx.describe()["decode_from"] == "indices" and via_quant.label == "llamagen-vq16-c2i"
    with pytest.raises(BadInputError, match="decode_from must be one of quant, indices"):
        create_tokenizer("llamagen-vq16-c2i:decode_from=latent", checkpoint=str(path))
    # upstream's geometry: each downsample maps n to floor(n / 2), so 72 px give 4 tokens and 64 px back
    idx, quant = via_quant.model.encode(torch.zeros(1, 3, 72, 40))
    assert idx.shape == (1, 4, 2) and via_quant.model.decode(quant).shape == (1, 3, 64, 32)


def test_chameleon_encoder_equals_transformers_chameleon_vqvae():
    """transformers' ChameleonVQVAE (the encoder half of Chameleon's tokenizer) loads our encoder keys unchanged
    and picks the same codes."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.chameleon.modeling_chameleon import ChameleonVQVAE

    cfg = tiny_config("chameleon-vqgan")
    ours = random_vqgan(cfg, 7)
    hcfg = transformers.ChameleonVQVAEConfig(
        embed_dim=cfg.embed_dim, num_embeddings=cfg.n_embed, double_latent=False, latent_channels=cfg.z_channels,
        resolution=512, in_channels=3, base_channels=cfg.ch, channel_multiplier=list(cfg.ch_mult),
        num_res_blocks=cfg.num_res_blocks, attn_resolutions=[], dropout=0.0)
    theirs = ChameleonVQVAE(hcfg).eval()
    encoder_half = {k: v for k, v in ours.state_dict().items() if not k.startswith(("decoder.", "post_quant_conv."))}
    missing, unexpected = theirs.load_state_dict(encoder_half, strict=False)
    assert not unexpected and not [k for k in missing if not k.startswith("post_quant_conv")]
    x = images(2, 64, seed=8)[:, :, 0]
    with torch.no_grad():
        out = theirs.encode(x)
        idx, quant = ours.encode(x)
    their_idx = out[-1] if isinstance(out, tuple) else out.image_tokens
    assert their_idx.numel() == idx.numel() and torch.equal(their_idx.reshape(-1), idx.reshape(-1))
    assert idx.unique().numel() > 4
