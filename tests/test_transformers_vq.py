"""Emu3 and Janus VQ through transformers' classes: upstream's key layouts, lazy loading, frame rules, and the
adapter against the transformers classes called directly.

tests/data/emu3_visiontokenizer.keys and tests/data/janus_vq16.keys list upstream's state_dict (key, shape),
dumped from upstream's own code built on the meta device ("scalar": a 0-d tensor):
``Emu3VisionVQModel(Emu3VisionVQConfig())``
(baaivision/Emu3 emu3/tokenizer, the custom code shipped with BAAI/Emu3-VisionTokenizer) and ``VQ_16()``
(deepseek-ai/Janus janus/models/vq_model.py, Janus-Pro's ``gen_vision_model``).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

from tiny_models import isolate_caches  # noqa: E402
from tokbench.errors import BadInputError, MissingWeightsError  # noqa: E402
from tokbench.tokenizers import transformers_vq as tvq  # noqa: E402
from tokbench.tokenizers.registry import create_tokenizer, get_entry, weights_status  # noqa: E402
from tokbench.weights import weights_dir  # noqa: E402
from transformers_vq_fixtures import (spread_codebook, tiny_model, upstream_names,  # noqa: E402
                                      write_upstream_checkpoint)

DATA = Path(__file__).parent / "data"
KEYS = {"emu3": DATA / "emu3_visiontokenizer.keys", "janus": DATA / "janus_vq16.keys"}
RELEASED = {"emu3": tvq.EMU3_CONFIG, "janus": tvq.JANUS_CONFIG}


@pytest.fixture(autouse=True)
def _caches(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path / "caches")


def upstream_keys(family: str) -> dict[str, tuple[int, ...]]:
    rows = (line.split() for line in KEYS[family].read_text().splitlines())
    return {k: () if shape == "scalar" else tuple(int(s) for s in shape.split("x")) for k, shape in rows}


def meta_keys(family: str, config: dict) -> dict[str, tuple[int, ...]]:
    model = tvq.build_on_meta(family, config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def quiet_create(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny files are "not the released size"
        return create_tokenizer(*args, **kwargs)


# ---------------------------------------------------------------- layouts of the released files


@pytest.mark.parametrize("family,n_up,n_tf", [("emu3", 495, 495), ("janus", 344, 343)])
def test_upstream_full_size_keys_map_exactly_onto_the_transformers_class(family, n_up, n_tf):
    up = upstream_keys(family)
    assert len(up) == n_up
    mapped, dropped = tvq.to_transformers(family, {k: torch.empty(s, device="meta") for k, s in up.items()},
                                          "upstream")
    mine = meta_keys(family, RELEASED[family])
    assert len(mine) == n_tf
    assert {k: tuple(v.shape) for k, v in mapped.items()} == mine  # every key, every shape
    assert dropped == ([] if family == "emu3" else ["quantize.codebook_used"])
    # the released architecture is what the file's shapes say
    assert tvq.infer_config(family, mapped) == RELEASED[family]
    # the fixtures' inverse mapping reproduces upstream's names and shapes exactly
    back = upstream_names(family, {k: torch.empty(s, device="meta") for k, s in mine.items()})
    assert {k: tuple(v.shape) for k, v in back.items()} == {**up, **({"quantize.codebook_used": (65536,)}
                                                                     if family == "janus" else {})}


def test_specs_and_frame_rules():
    emu3, janus = get_entry("emu3-vq").spec, get_entry("janus-pro-1b-vq").spec
    assert get_entry("emu3-visiontokenizer").spec is emu3 and get_entry("janus-vq").spec is janus
    assert (emu3.spatial_factor, emu3.temporal_factor, emu3.codebook_size, emu3.latent_channels) == (8, 4, 32768, 4)
    assert emu3.modalities == {"image", "video"} and not emu3.causal_first_frame
    assert [t for t in range(1, 13) if emu3.valid_frames(t)] == [4, 8, 12] and emu3.default_clip_frames == 4
    assert (janus.spatial_factor, janus.spatial_multiple, janus.codebook_size, janus.latent_channels) == (16, 16,
                                                                                                          16384, 8)
    assert janus.modalities == {"image"}
    for spec in (emu3, janus):
        assert spec.kind == "discrete" and spec.input_range == (-1.0, 1.0) and spec.published is None
    assert get_entry("janus-pro-7b-vq").spec.checkpoint.filename == "janus-pro-7b/pytorch_model.bin.index.json"
    assert get_entry("janus-1.3b-vq").spec.checkpoint.hub_repo == "deepseek-ai/Janus-1.3B"


# ---------------------------------------------------------------- weights: where, and what is missing


def test_missing_weights_are_one_line_naming_file_and_place():
    for name, file, repo in (("emu3-vq", "emu3-vq/model.safetensors", "BAAI/Emu3-VisionTokenizer"),
                             ("janus-pro-1b-vq", "janus-pro-1b/pytorch_model.bin", "deepseek-ai/Janus-Pro-1B")):
        with pytest.raises(MissingWeightsError) as err:
            create_tokenizer(name)
        msg = str(err.value)
        assert "\n" not in msg and str(weights_dir() / file) in msg and repo in msg, msg
        assert weights_status(get_entry(name)) == {"weights": "missing", "path": str(weights_dir() / file)}


def test_weights_dir_is_found_and_listed(tmp_path):
    model = tiny_model("janus")
    write_upstream_checkpoint("janus", model, weights_dir() / "janus-pro-1b" / "pytorch_model.bin")
    entry = get_entry("janus-pro-1b-vq")
    assert weights_status(entry) == {"weights": "present",
                                     "path": str(weights_dir() / "janus-pro-1b" / "pytorch_model.bin")}
    tok = quiet_create("janus-pro-1b-vq")
    assert tok.checkpoint_path == str(weights_dir() / "janus-pro-1b" / "pytorch_model.bin")
    assert len(tok.checkpoint_sha256) == 64


# ---------------------------------------------------------------- the adapter against the classes


def test_emu3_matches_emu3vqvae_for_images_and_videos(tmp_path):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 8, 16, 24, generator=g) * 2 - 1  # landscape; two 4-frame latent steps
    image = torch.rand(2, 3, 1, 16, 16, generator=g) * 2 - 1
    model = tiny_model("emu3")
    spread_codebook(model, "emu3", video)
    path = write_upstream_checkpoint("emu3", model, tmp_path / "model.safetensors")
    with pytest.warns(UserWarning, match="not the released size"):
        tok = create_tokenizer("emu3-vq", checkpoint=str(path))
    assert tok.spec.codebook_size == 64 and tok.describe()["weights_layout"] == "upstream"

    enc = tok.encode(video)
    with torch.no_grad():
        out = model.encode(video.permute(0, 2, 1, 3, 4), image_sizes=[[16, 24]] * 2)
        ref_codes = torch.stack(out.image_tokens)
        ref_video = model.decode(ref_codes).permute(0, 2, 1, 3, 4)
    assert enc.indices.shape == (2, 2, 2, 3) and torch.equal(enc.indices, ref_codes)
    assert enc.indices.unique().numel() > 5
    assert torch.equal(enc.bits, torch.full((2,), 2 * 2 * 3 * 6.0, dtype=torch.float64))
    torch.testing.assert_close(tok.decode(enc), ref_video, rtol=0, atol=1e-5)

    # an image: the harness repeats it to 4 frames; Emu3VQVAE does the same with a 4-D input
    enc_i = tok.encode(image.repeat(1, 1, 4, 1, 1))
    with torch.no_grad():
        ref = model.encode(image[:, :, 0], image_sizes=[[16, 16]] * 2)
        ref_tokens = torch.stack(ref.image_tokens)
        ref_image = model.decode(ref_tokens)
    assert torch.equal(enc_i.indices[:, 0], ref_tokens)
    torch.testing.assert_close(tok.decode(enc_i)[:, :, 0], ref_image, rtol=0, atol=1e-5)
    with pytest.raises(BadInputError, match="multiple of 4"):
        tok.encode(video[:, :, :5])
    # the fused attention kernel: same codes here, reconstruction equal to float rounding
    fused = quiet_create("emu3-vq:attention=sdpa", checkpoint=str(path))
    assert fused.describe()["attention"] == "sdpa" and tok.describe()["attention"] == "eager"
    enc_f = fused.encode(video)
    assert torch.equal(enc_f.indices, enc.indices)
    torch.testing.assert_close(fused.decode(enc_f), ref_video, rtol=0, atol=1e-4)


def test_emu3_portrait_video_keeps_every_token_row(tmp_path):
    """Emu3VQVAE.encode's crop would cut a portrait video's token rows; the adapter codes the whole grid."""
    path = write_upstream_checkpoint("emu3", tiny_model("emu3"), tmp_path / "model.safetensors")
    tok = quiet_create("emu3-vq", checkpoint=str(path))
    x = torch.rand(1, 3, 4, 32, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    enc = tok.encode(x)
    assert enc.indices.shape == (1, 1, 4, 1) and tok.decode(enc).shape == x.shape
    # transformers' own layout (a -hf conversion keeps the VQ under model.vqmodel.) gives the same tokenizer
    from safetensors.torch import save_file

    hf = tmp_path / "hf.safetensors"
    save_file({f"model.vqmodel.{k}": v.contiguous() for k, v in tok.model.state_dict().items()}, str(hf))
    tok_hf = quiet_create("emu3-vq", checkpoint=str(hf))
    assert tok_hf.describe()["weights_layout"] == "transformers"
    assert torch.equal(tok_hf.encode(x).indices, enc.indices)


def test_janus_matches_janusvqvae(tmp_path):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 1, 32, 48, generator=g) * 2 - 1
    model = tiny_model("janus")
    spread_codebook(model, "janus", x)
    path = write_upstream_checkpoint("janus", model, tmp_path / "pytorch_model.bin")
    tok = quiet_create("janus-pro-1b-vq", checkpoint=str(path))
    own = quiet_create("janus-pro-1b-vq:index_rule=transformers", checkpoint=str(path))
    d = tok.describe()
    assert d["weights_layout"] == "upstream" and d["weights_prefix"] == "gen_vision_model."
    assert d["dropped_keys"] == ["quantize.codebook_used"] and d["index_rule"] == "l2"

    # index_rule=transformers is exactly JanusVQVAE.forward (encode -> indices -> decode)
    model.quantize.quant_state_dims = [2, 3]
    with torch.no_grad():
        ref = model(x[:, :, 0]).decoded_pixel_values
        ref_idx = model.encode(x[:, :, 0]).image_tokens.view(2, 2, 3)
    enc_t = own.encode(x)
    assert torch.equal(enc_t.indices[:, 0], ref_idx)
    torch.testing.assert_close(own.decode(enc_t)[:, :, 0], ref, rtol=0, atol=1e-5)

    # default: upstream's rule, the code of largest cosine similarity (l2-normalised latent and codebook)
    enc = tok.encode(x)
    with torch.no_grad():
        z = model.quant_conv(model.encoder(x[:, :, 0])).permute(0, 2, 3, 1).reshape(-1, 8)
        cos = F.normalize(z, dim=-1) @ F.normalize(model.quantize.embedding.weight, dim=-1).t()
        want = cos.argmax(1).view(2, 2, 3)
        ref_l2 = model.decode(want.view(2, -1))
    assert torch.equal(enc.indices[:, 0], want) and want.unique().numel() > 5
    assert not torch.equal(want, ref_idx)  # the two rules differ when codebook rows have unequal norms
    torch.testing.assert_close(tok.decode(enc)[:, :, 0], ref_l2, rtol=0, atol=1e-5)
    assert torch.equal(enc.bits, torch.full((2,), 6 * 6.0, dtype=torch.float64))
    with pytest.raises(BadInputError, match="index_rule"):
        quiet_create("janus-pro-1b-vq:index_rule=cosine", checkpoint=str(path))
    with pytest.raises(BadInputError, match="attention must be eager"):
        quiet_create("janus-pro-1b-vq:attention=sdpa", checkpoint=str(path))


def test_janus_shards_read_only_what_holds_the_vq(tmp_path):
    """A sharded full model (Janus-Pro-7B's layout): only the shard holding gen_vision_model is needed, and the
    transformers layout (model.vqmodel.*) loads to the same tokenizer."""
    from safetensors.torch import save_file

    model = tiny_model("janus", seed=3)
    vq = {f"gen_vision_model.{k}": v.contiguous() for k, v in upstream_names("janus", model.state_dict()).items()}
    folder = tmp_path / "janus-pro-7b"
    folder.mkdir()
    save_file(vq, str(folder / "pytorch_model-00002-of-00002.safetensors"))
    weight_map = {k: "pytorch_model-00002-of-00002.safetensors" for k in vq}
    weight_map["language_model.model.embed_tokens.weight"] = "pytorch_model-00001-of-00002.safetensors"  # absent
    index = folder / "pytorch_model.bin.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    tok = quiet_create("janus-pro-7b-vq", checkpoint=str(index))
    assert tok.describe()["weights_files"] == [str(index), str(folder / "pytorch_model-00002-of-00002.safetensors")]
    x = torch.rand(1, 3, 1, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    y = tok.reconstruct(x)[0]

    hf = tmp_path / "hf" / "model.safetensors"
    hf.parent.mkdir()
    save_file({f"model.vqmodel.{k}": v.contiguous() for k, v in model.state_dict().items()}
              | {"model.language_model.embed_tokens.weight": torch.zeros(4, 4)}, str(hf))
    tok_hf = quiet_create("janus-pro-7b-vq", checkpoint=str(hf.parent))  # a folder works too
    assert tok_hf.describe()["weights_layout"] == "transformers"
    assert torch.equal(tok_hf.reconstruct(x)[0], y)

    weight_map = {k: "missing-shard.safetensors" for k in vq}
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(MissingWeightsError, match=r"shard missing-shard.safetensors .* put it at"):
        quiet_create("janus-pro-7b-vq", checkpoint=str(index))


def test_wrong_files_are_refused_in_one_line(tmp_path):
    janus = write_upstream_checkpoint("janus", tiny_model("janus"), tmp_path / "pytorch_model.bin")
    with pytest.raises(BadInputError, match=r"holds no emu3 VQ"):
        create_tokenizer("emu3-vq", checkpoint=str(janus))
    state = upstream_names("emu3", tiny_model("emu3").state_dict())
    del state["decoder.conv_out.bias"]
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "cut.safetensors"))
    with pytest.raises(BadInputError, match=r"does not fit transformers.Emu3VQVAE: .*1 missing \(decoder.conv_out"):
        quiet_create("emu3-vq", checkpoint=str(tmp_path / "cut.safetensors"))
    with pytest.raises(MissingWeightsError, match="does not exist"):
        create_tokenizer("emu3-vq", checkpoint=str(tmp_path / "nowhere.safetensors"))
