"""UniTok multi-codebook tokenizer: key layout of the released file, the quantiser and the down projection
against naive re-derivations, upstream's checkpoint nesting through ``--checkpoint``, and ``tokbench run``
end to end with a tiny random checkpoint.

tests/data/unitok_tokenizer.keys lists upstream's state_dict (key, shape; ``-`` is a 0-d tensor), dumped from
upstream's own ``UniTok(Args())`` (FoundationVision/UniTok bb8012e8, timm 1.0.8) built on the meta device.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.models.unitok import UniTok, UniTokConfig, build_unitok, clip_only_shapes
from tokbench.models.unitok.model import ProjectionAttention
from tokbench.report import load_report
from tokbench.tokenizers.registry import create_tokenizer, get_entry

KEYS = Path(__file__).parent / "data" / "unitok_tokenizer.keys"
TINY = UniTokConfig(conv_widths=(8, 16), conv_depths=(1, 2), width=128, depth=1, heads=2,
                    decoder_conv_depths=(2, 1), vocab_width=32, num_codebooks=8, codebook_size=64)
# upstream Args flags of the tiny file (a real file carries all ~110 of them; these size the model)
TINY_ARGS = {"model": "vitamin_large", "img_size": 256, "vocab_size": 8 * 64, "vocab_width": 32, "num_codebooks": 8,
             "quant_proj": "attn", "num_query": 0, "embed_dim": 16, "text_width": 16, "text_heads": 2,
             "text_layers": 1, "text_vocab_size": 10, "text_context_length": 4, "dtype": torch.float32}


def upstream_keys() -> dict[str, tuple[int, ...]]:
    rows = (line.split() for line in KEYS.read_text().splitlines())
    return {k: () if shape == "-" else tuple(int(s) for s in shape.split("x")) for k, shape in rows}


def random_checkpoint(cfg: UniTokConfig = TINY, args: dict = TINY_ARGS, seed: int = 0) -> dict:
    """Random weights in upstream's training-checkpoint layout, CLIP half and usage buffers included."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UniTok(cfg)
    state = dict(model.state_dict())
    for k in state:
        if k.endswith("codebook.weight") or k == "encoder.pos_embed":
            state[k] = torch.randn(state[k].shape, generator=gen)  # spread codes: argmax decisions matter
    for k, shape in clip_only_shapes(cfg.width, args).items():
        state[k] = torch.randn(shape, generator=gen) * 0.02
    for i in range(cfg.num_codebooks):
        state[f"quantizer.codebooks.{i}.vocab_usage"] = torch.zeros(cfg.codebook_size)
    return {"args": dict(args), "epoch": 0, "iter": 10,
            "trainer": {"config": {"dcrit": "hg", "bcr": 4.0}, "unitok": state}}


def write_checkpoint(path: Path, **kw) -> Path:
    torch.save(random_checkpoint(**kw), path)
    return path


# ---------------------------------------------------------------- layout of the released file


def test_full_size_model_has_upstreams_keys_and_shapes():
    with torch.device("meta"):
        model = UniTok()
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    up = upstream_keys()
    clip = clip_only_shapes(1024, {})  # upstream's default flags, those of the released model
    usage = {k for k in up if k.endswith(".vocab_usage")}
    assert (len(up), len(mine), len(clip), len(usage)) == (1335, 1173, 154, 8)
    assert mine == {k: v for k, v in up.items() if k not in clip and k not in usage}
    assert clip == {k: up[k] for k in clip}
    assert sum(p.numel() for p in model.parameters()) == sum(math.prod(s) for k, s in mine.items()
                                                             if not k.endswith("zero_k_bias"))


def test_config_read_back_from_the_tensors():
    loaded = build_unitok(random_checkpoint())
    assert loaded.config == TINY and loaded.nesting == "['trainer']['unitok']"
    assert loaded.dropped_clip_keys == len(clip_only_shapes(TINY.width, TINY_ARGS))
    assert len(loaded.dropped_training_keys) == TINY.num_codebooks
    assert set(loaded.size_deviations) >= {"width", "depth", "codebook_size"}


# ---------------------------------------------------------------- numerics against naive re-derivations


def test_quantiser_is_per_chunk_cosine_argmax_and_decodes_normalised_rows():
    model = build_unitok(random_checkpoint()).model
    torch.manual_seed(1)
    f = torch.randn(2, 9, TINY.vocab_width)
    idx = model.quantizer.indices(f)
    assert idx.shape == (2, TINY.num_codebooks, 9) and idx.dtype == torch.int64
    d = TINY.code_dim
    for i, book in enumerate(model.quantizer.codebooks):
        chunk = f[..., i * d:(i + 1) * d].double()
        rows = book.codebook.weight.double()
        cos = (chunk / chunk.norm(dim=-1, keepdim=True)) @ (rows / rows.norm(dim=-1, keepdim=True)).T
        assert torch.equal(idx[:, i], cos.argmax(-1))
        assert torch.allclose(model.quantizer.features(idx)[..., i * d:(i + 1) * d].double(),
                              (rows / rows.norm(dim=-1, keepdim=True))[idx[:, i]], atol=1e-6)
    assert len(idx.unique()) > 20  # the codebooks are really searched


def test_down_projection_averages_heads():
    torch.manual_seed(2)
    attn = ProjectionAttention(32, 8, heads=4).eval()
    for p in attn.parameters():
        p.data.normal_(0, 0.3)
    x = torch.randn(2, 5, 32)
    w = attn.qkv.weight
    q = (x @ w[:32].T + attn.q_bias).view(2, 5, 4, 8).transpose(1, 2)
    k = (x @ w[32:64].T).view(2, 5, 4, 8).transpose(1, 2)
    v = (x @ w[64:].T + attn.v_bias).view(2, 5, 4, 8).transpose(1, 2)
    heads = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1) @ v  # (2, 4, 5, 8)
    want = F.linear(heads.mean(1), attn.proj.weight, attn.proj.bias)
    with torch.no_grad():
        assert torch.allclose(attn(x), want, atol=1e-5)


# ---------------------------------------------------------------- the registry entry and loading


def test_spec():
    spec = get_entry("unitok").spec
    assert spec.family == "unitok" and spec.published == "UniTok" and spec.kind == "discrete"
    with open(Path(__file__).resolve().parent.parent / "tokbench/leaderboard/published_tokbench.csv") as f:
        assert {"UniTok"} <= {row["method"] for row in csv.DictReader(f)}
    assert spec.square_only and spec.spatial_multiple == 16 and spec.input_range == (-1.0, 1.0)
    assert spec.codebook_size == 4096 and spec.latent_channels == 64
    assert spec.checkpoint.hub_repo == "FoundationVision/unitok_tokenizer"
    assert spec.checkpoint.hub_filename == "unitok_tokenizer.pth"


def tiny_tokenizer(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        return create_tokenizer("unitok", checkpoint=str(path))


def test_upstream_layout_loads_strictly_and_tokenizer_is_the_models_inference_path(tmp_path):
    ckpt = write_checkpoint(tmp_path / "unitok_tiny.pth")
    with pytest.warns(UserWarning, match="not the released size"):
        tok = create_tokenizer("unitok", checkpoint=str(ckpt))
    d = tok.describe()
    assert d["checkpoint_nesting"] == "['trainer']['unitok']" and d["codebooks"] == 8
    assert "centre crop 256" in d["preprocessing"] and "no mean/std" in d["normalisation"]
    assert d["checkpoint_flags"]["model"] == "vitamin_large"
    x = torch.rand(2, 3, 1, 32, 32) * 2 - 1
    enc = tok.encode(x)
    assert enc.indices.shape == (2, 1, 8, 4)
    assert torch.equal(enc.bits, torch.full((2,), 4 * 8 * math.log2(64), dtype=torch.float64))
    y = tok.decode(enc)
    model = tok.model
    with torch.no_grad():
        idx = model.img_to_idx(x[:, :, 0])
        want = model.idx_to_img(idx)
    assert torch.equal(enc.indices[:, 0], idx)
    assert y.shape == x.shape and torch.equal(y[:, :, 0], want) and y.abs().max() <= 1
    with pytest.raises(BadInputError, match="square inputs"):
        tok.encode(torch.zeros(1, 3, 1, 32, 48))



def test_bfloat16_keeps_the_codebook_search_in_float32(tmp_path):
    ckpt = write_checkpoint(tmp_path / "unitok_tiny.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t32 = create_tokenizer("unitok", checkpoint=str(ckpt))
        t16 = create_tokenizer("unitok", checkpoint=str(ckpt), dtype=torch.bfloat16)
    assert t16.model.quantizer.codebooks[0].codebook.weight.dtype == torch.float32
    assert t16.model.decoder.norm.weight.dtype == torch.bfloat16
    x = torch.rand(1, 3, 1, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    enc = t32.encode(x)
    assert (t16.encode(x).indices == enc.indices).float().mean() > 0.9
    y16 = t16.decode(enc)
    assert y16.dtype == torch.float32 and (y16 - t32.decode(enc)).abs().max() < 0.1

@pytest.mark.parametrize("damage,message", [
    (lambda c: c["trainer"]["unitok"].pop("decoder.norm.bias"), "1 missing .*decoder.norm.bias"),
    (lambda c: c["trainer"]["unitok"].pop("text_encoder.ln_final.bias"), "CLIP-half key"),
    (lambda c: c["trainer"]["unitok"].__setitem__("projection.weight", torch.zeros(3, 3)), "projection.weight"),
    (lambda c: c["args"].__setitem__("quant_proj", "linear"), "quant_proj='linear'"),
    (lambda c: c["trainer"].pop("unitok"), "no 'unitok' state_dict"),
])
def test_a_file_that_does_not_fit_is_one_line(tmp_path, damage, message):
    ckpt = random_checkpoint()
    damage(ckpt)
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    with pytest.raises(BadInputError, match=message) as e:
        tiny_tokenizer(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_weights_is_one_line(tmp_path, monkeypatch):
    from tiny_models import isolate_caches

    isolate_caches(monkeypatch, tmp_path)
    with pytest.raises(MissingWeightsError, match=r"missing unitok/unitok_tokenizer.pth \(from hf://FoundationVision/"
                                                  r"unitok_tokenizer/unitok_tokenizer.pth\); put it at .*unitok/"
                                                  r"unitok_tokenizer.pth or pass its path") as e:
        create_tokenizer("unitok")
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- end to end


def test_cli_run_and_list(tmp_path, monkeypatch, capsys):
    """``tokbench run`` and ``tokbench list`` through the command-line entry point (in process: no interpreter
    start), on the image suite at 64 px with a tiny checkpoint in upstream's layout."""
    from tokbench.cli import main
    from tiny_models import isolate_caches

    isolate_caches(monkeypatch, tmp_path / "caches")
    ckpt = write_checkpoint(tmp_path / "unitok_tiny.pth")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the released size"
        rc = main(["run", "--tokenizer", "unitok", "--checkpoint", str(ckpt), "--suite", "text-face", "--limit", "2",
                   "--resolution", "64", "--allow-unbinned-resolution", "--metrics", "psnr", "--quiet",
                   "--out", str(out), "--name", "unitok"])
    assert rc == 0, capsys.readouterr().err[-3000:]
    rep = load_report(out / "unitok")
    images = rep.rows[rep.rows.level == "image"]
    assert len(images) >= 4 and (images["PSNR"] > 0).all()
    # 64 px canvas: 4 x 4 positions x 8 codebooks x log2(64) bits
    assert (images["bpp"] == 4 * 4 * 8 * math.log2(TINY.codebook_size) / 64 ** 2).all()
    tok = rep.manifest["tokenizer"]
    assert tok["name"] == "unitok" and tok["checkpoint_path"] == str(ckpt)
    assert tok["checkpoint_nesting"] == "['trainer']['unitok']" and "harness geometry" in tok["preprocessing"]
    capsys.readouterr()
    assert main(["list", "--family", "unitok"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("unitok")]
    assert len(rows) == 1 and " UniTok " in rows[0] and "missing" in rows[0]
    assert " 8 x codebook 4096 " in rows[0]  # the latent column counts the codebooks
    assert rows[0].rstrip().endswith(str(Path(os.environ["TOKBENCH_CACHE"]) / "weights" / "unitok" /
                                         "unitok_tokenizer.pth"))
