"""OmniTokenizer registry entries: checkpoint resolution, upstream Lightning files, flag cross-checks, and
the Tokenizer interface (range, bits, VAE mean vs seeded sampling)."""
from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
import torch

import tokbench.tokenizers.omni as omni
from omni_fixtures import TINY_VAE, TINY_VQ, lightning_checkpoint, random_omni_model, write_random_omni_checkpoint
from tokbench.checkpoints import load_checkpoint
from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError
from tokbench.models.omnitokenizer import OmniTokenizerConfig, build_model, config_from_hparams
from tokbench.tokenizers.registry import create_tokenizer, get_entry, weights_status

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")


@pytest.fixture(scope="module")
def vq_ckpt(tmp_path_factory):
    return write_random_omni_checkpoint(tmp_path_factory.mktemp("omni") / "tiny_vq.ckpt", TINY_VQ, seed=0)


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory):
    return write_random_omni_checkpoint(tmp_path_factory.mktemp("omni") / "tiny_vae.ckpt", TINY_VAE, seed=1)


def _clip(t=1, side=64, seed=0, batch=1):
    return torch.rand(batch, 3, t, side, side, generator=torch.Generator().manual_seed(seed)) - 0.5


# -- registry ---------------------------------------------------------------------------------------------

def test_registry_entries_and_specs():
    names = {"omni", "omni-vq-imagenet-ucf", "omni-vae-imagenet-ucf", "omni-vae-imagenet-k600",
             "omni-vq-imagenet-only", "omni-vq-celebahq", "omni-vq-ffhq", "omni-vq-celebahq-ucf",
             "omni-vq-celebahq-k600", "omni-vq-ffhq-ucf", "omni-vq-ffhq-k600"}
    for name in names:
        spec = get_entry(name).spec
        assert spec.family == "omnitokenizer" and spec.input_range == (-0.5, 0.5)
        assert spec.spatial_factor == 8 and spec.spatial_multiple == 64 and spec.square_only
        assert spec.causal_first_frame and spec.default_clip_frames == 17 and spec.valid_frames(17)
        assert spec.checkpoint.hub_repo == "Daniel0724/OmniTokenizer"
    assert get_entry("omni-vq-imagenet-k600").spec.name == "omni"
    omni_spec = get_entry("omni").spec
    assert omni_spec.checkpoint.hub_filename == "imagenet_k600.ckpt"
    assert (omni_spec.kind, omni_spec.codebook_size, omni_spec.temporal_factor) == ("discrete", 8192, 4)
    assert omni_spec.modalities == {"image", "video"}
    vae = get_entry("omni-vae-imagenet-k600").spec
    assert (vae.kind, vae.latent_channels, vae.latent_bits, vae.codebook_size) == ("continuous", 8, 32, None)
    assert vae.checkpoint.hub_filename == "imagenet_k600_vae.ckpt"
    face = get_entry("omni-vq-ffhq").spec  # stage 1: image-only, temporal patch 2
    assert face.modalities == {"image"} and face.temporal_factor == 2
    assert omni.release_config(omni.RELEASES[-3]).attn_impl == "einsum"  # imagenet_only: trained without SDPA
    assert get_entry("omni").option_names() == ["sample", "seed", "attn_impl"]


def test_missing_checkpoint_is_one_line_naming_file_and_place():
    with pytest.raises(MissingWeightsError) as err:
        create_tokenizer("omni")
    message = str(err.value)
    assert "\n" not in message and message.startswith("omni:")
    assert "imagenet_k600.ckpt" in message and "hf://Daniel0724/OmniTokenizer" in message
    assert "omnitokenizer/imagenet_k600.ckpt" in message  # where to put it
    status = weights_status(get_entry("omni"))
    assert status["weights"] == "missing" and status["path"].endswith("omnitokenizer/imagenet_k600.ckpt")


def test_checkpoint_found_in_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKBENCH_WEIGHTS", str(tmp_path / "weights"))
    write_random_omni_checkpoint(tmp_path / "weights" / "omnitokenizer" / "imagenet_k600.ckpt", TINY_VQ)
    assert weights_status(get_entry("omni"))["weights"] == "present"
    with pytest.warns(UserWarning, match="not the released size"):
        tok = create_tokenizer("omni")
    assert tok.checkpoint_path.endswith("omnitokenizer/imagenet_k600.ckpt")


# -- upstream Lightning checkpoints --------------------------------------------------------------------------

def test_lightning_checkpoint_loads_strictly_and_reconstructs(vq_ckpt):
    with pytest.warns(UserWarning, match="embedding_dim|dim="):
        tok = create_tokenizer("omni", checkpoint=str(vq_ckpt))
    desc = tok.describe()
    assert desc["dropped_training_keys"] == 4 and desc["hparams_from_checkpoint"] is True
    assert desc["model_config"]["dim"] == 32 and desc["latent_mode"] == "vq-indices"
    assert tok.spec.codebook_size == 64  # the file's codebook, not the table's
    x = _clip()
    y, bits = tok.reconstruct(x)
    assert y.shape == (1, 3, 1, 64, 64) and y.dtype == torch.float32
    assert float(y.min()) >= -0.5 and float(y.max()) <= 0.5
    assert bits.tolist() == [8 * 8 * math.log2(64)]
    # the same weights used directly give the same tokens and pixels: every tensor was loaded
    reference = random_omni_model(TINY_VQ, seed=0)
    with torch.inference_mode():
        idx = reference.encode_indices(x)
        want = reference.decode_indices(idx).clamp(-0.5, 0.5)
    enc = tok.encode(x)
    assert torch.equal(enc.indices, idx)
    torch.testing.assert_close(y, want, rtol=0, atol=0)


def test_every_tensor_round_trips_exactly(tmp_path):
    model = random_omni_model(TINY_VAE, seed=3)
    path = tmp_path / "own.pt"
    torch.save(model.state_dict(), path)  # a bare state_dict (no flags): the expected config is used
    loaded = build_model(load_checkpoint(path), TINY_VAE)
    assert loaded.hparams_found is False and loaded.size_deviations == {}
    mine, theirs = model.state_dict(), loaded.model.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) and mine[k].dtype == theirs[k].dtype for k in mine)
    x = _clip(t=5, seed=4)
    with torch.inference_mode():
        assert torch.equal(model.encode_latents(x), loaded.model.encode_latents(x))


def test_video_clip_17_frames_through_the_registry(vq_ckpt):
    with pytest.warns(UserWarning):
        tok = create_tokenizer("omni", checkpoint=str(vq_ckpt))
    enc = tok.encode(_clip(t=17, seed=5))
    assert enc.indices.shape == (1, 5, 8, 8)
    assert tok.decode(enc).shape == (1, 3, 17, 64, 64)


def test_vae_mean_by_default_and_seeded_sampling(vae_ckpt):
    with pytest.warns(UserWarning):
        mean_tok = create_tokenizer("omni-vae-imagenet-k600", checkpoint=str(vae_ckpt))
    x = _clip(t=5, seed=6, batch=2)
    a, b = mean_tok.encode(x), mean_tok.encode(x)
    assert torch.equal(a.latents, b.latents) and a.latents.shape == (2, 4, 2, 8, 8)
    assert a.bits.tolist() == [4 * 2 * 8 * 8 * 32.0] * 2
    assert mean_tok.describe()["latent_mode"] == "mean"
    with pytest.warns(UserWarning):
        s1 = create_tokenizer("omni-vae-imagenet-k600:sample=true,seed=3", checkpoint=str(vae_ckpt))
        s2 = create_tokenizer("omni-vae-imagenet-k600", checkpoint=str(vae_ckpt), sample=True, seed=3)
        s3 = create_tokenizer("omni-vae-imagenet-k600:sample=true,seed=4", checkpoint=str(vae_ckpt))
    z1, z2, z3 = s1.encode(x).latents, s2.encode(x).latents, s3.encode(x).latents
    assert torch.equal(z1, z2) and not torch.equal(z1, z3) and not torch.equal(z1, a.latents)
    assert s1.describe()["latent_mode"] == "sample(seed=3)"
    assert mean_tok.decode(a).shape == x.shape


def test_wrong_kind_of_checkpoint_is_refused_with_a_hint(vae_ckpt, vq_ckpt):
    with pytest.raises(BadInputError) as err:
        create_tokenizer("omni", checkpoint=str(vae_ckpt))
    message = str(err.value)
    assert "use_vae=True (expected False)" in message and "omni-vae-imagenet-k600" in message
    with pytest.raises(BadInputError, match="temporal_patch_size=4 \\(expected 2\\)"):
        create_tokenizer("omni-vq-ffhq", checkpoint=str(vq_ckpt))


def test_state_dict_that_does_not_fit_is_refused(tmp_path):
    model = random_omni_model(TINY_VQ)
    state = dict(model.state_dict())
    del state["decoder.to_pixels.0.bias"]
    state["encoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.ckpt"
    ckpt = lightning_checkpoint(model)
    ckpt["state_dict"] = state
    torch.save(ckpt, path)
    with pytest.raises(BadInputError, match="1 missing \\(decoder.to_pixels.0.bias\\); 1 unexpected"):
        create_tokenizer("omni", checkpoint=str(path))


def test_unsupported_upstream_option_is_refused(tmp_path):
    path = write_random_omni_checkpoint(tmp_path / "cnn.ckpt", TINY_VQ, extra_flags={"patch_embed": "cnn"})
    with pytest.raises(BadInputError, match="patch_embed='cnn' is not implemented"):
        create_tokenizer("omni", checkpoint=str(path))


def test_unsafe_checkpoint_refused_through_the_registry(tmp_path, vq_ckpt):
    ckpt = torch.load(vq_ckpt, weights_only=False)
    ckpt["callbacks"] = {"hook": dataclasses.make_dataclass}  # a callable the safe unpickler must not import
    path = tmp_path / "unsafe.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UnsafeCheckpointError, match="--allow-unsafe-checkpoint"):
        create_tokenizer("omni", checkpoint=str(path))


def test_attention_path_option(vq_ckpt):
    with pytest.warns(UserWarning):
        tok = create_tokenizer("omni:attn_impl=einsum", checkpoint=str(vq_ckpt))
    assert tok.config.attn_impl == "einsum" and tok.describe()["attn_impl"] == "einsum"
    with pytest.raises(BadInputError, match="option attn_impl must be one of sdpa, einsum"):
        create_tokenizer("omni:attn_impl=flash", checkpoint=str(vq_ckpt))


def test_bad_input_names_the_tokenizer(vq_ckpt):
    with pytest.warns(UserWarning):
        tok = create_tokenizer("omni", checkpoint=str(vq_ckpt))
    with pytest.raises(BadInputError, match="^tokenizer omni: 4 frames"):
        tok.encode(_clip(t=4))
    with pytest.raises(BadInputError, match="square"):
        tok.encode(torch.zeros(1, 3, 1, 64, 128))
    with pytest.raises(BadInputError, match="sample applies to the VAE"):
        create_tokenizer("omni:sample=true", checkpoint=str(vq_ckpt))


def test_flags_are_read_in_both_upstream_spellings():
    base = OmniTokenizerConfig()
    released = argparse.Namespace(embedding_dim=512, n_codes=8192, codebook_dim=8, temporal_patch_size=2,
                                  enc_block="ttww", dec_block="tttt", spatial_depth=4, twod_window_size=8,
                                  casual_in_temporal_transformer=True, casual_in_peg=True, l2_code=True)
    cfg = config_from_hparams(released, base)
    assert cfg.temporal_patch_size == 2 and cfg.spatial_pos == "rope"  # absent flag keeps the table's value
    current = argparse.Namespace(causal_in_temporal_transformer=False, causal_in_peg=False, spatial_pos="rel")
    cfg = config_from_hparams(current, base)
    assert (cfg.causal_temporal, cfg.causal_peg, cfg.spatial_pos) == (False, False, "rel")
    with pytest.raises(ValueError, match="spatial_depth=3"):
        config_from_hparams(argparse.Namespace(enc_block="ttww", spatial_depth=3), base)
