"""TiTok (bytedance/1d-tokenizer): the nine registry entries, upstream's full-size key layouts, strict loading
of upstream-layout files, the architecture's quirks against closed forms, the harness' fixed 256x256 input, and
``tokbench run`` end to end with a tiny random checkpoint.

tests/data/titok.keys lists upstream's state_dict (key, shape) per release, dumped from upstream's own
``modeling.titok.TiTok`` (942a96f) built on the meta device from its ``configs/infer/TiTok/*.yaml``; a
``transformer.*`` line with a third column stands for that many layers. Exactness against upstream's modules
was measured outside the test suite (upstream needs accelerate/omegaconf and is not a dependency)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tokbench.cli import main as cli_main
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.harness import plan_image, plan_video
from tokbench.models.titok import TiTok, TiTokConfig, build_model
from tokbench.report import load_report
from tokbench.tokenizers.registry import create_tokenizer, get_entry, weights_status
from tokbench.tokenizers.titok import RELEASES

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
KEYS = Path(__file__).parent / "data" / "titok.keys"
NAMES = [r.name.replace("_", "-") for r in RELEASES]
TINY_VIT = (64, 1, 1)
TINY_PIXEL = dict(pixel_codes=64, pixel_z=32, pixel_hidden=32, pixel_mult=(1, 1, 1, 1, 1), pixel_res_blocks=1)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny(name: str) -> TiTokConfig:
    """The release's identity (tokens, channels, codebook, head) with tiny transformers and pixel decoder."""
    cfg = next(r for r in RELEASES if r.name.replace("_", "-") == name).config()
    return TiTokConfig(**{**cfg.__dict__, "encoder": TINY_VIT, "decoder": TINY_VIT,
                          **(TINY_PIXEL if cfg.legacy else {})})


def random_state(cfg: TiTokConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in TiTok(cfg).state_dict().items()}
    state = {}
    for k, shape in shapes.items():
        fan = math.prod(shape[1:]) if len(shape) > 1 else 1
        scale = 1.0 if "quantize" in k else (0.1 if len(shape) == 1 else fan ** -0.5)
        state[k] = torch.randn(shape, generator=gen) * scale + (1.0 if k.endswith(("norm1.weight", "norm2.weight",
                                                                                  "norm_out.weight")) or
                                                                ".ln_" in k and k.endswith("weight") else 0.0)
    return state


def write_checkpoint(path: Path, cfg: TiTokConfig, seed: int = 0) -> Path:
    state = random_state(cfg, seed)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def upstream_keys() -> dict[str, dict[str, tuple[int, ...]]]:
    out, cur = {}, None
    for line in KEYS.read_text().splitlines():
        parts = line.split()
        if parts[0].startswith("["):
            cur = parts[0][1:-1]
            out[cur] = {"_count": int(parts[1]), "_params": int(parts[2])}
            continue
        shape = tuple(int(s) for s in parts[1].split("x"))
        for i in range(int(parts[2]) if len(parts) == 3 else 1):
            out[cur][parts[0].replace("*", str(i))] = shape
    return out


def _image(seed=0, batch=1, frames=1):
    return torch.rand(batch, 3, frames, 256, 256, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- registry


def test_specs_weights_and_published_row():
    for r, name in zip(RELEASES, NAMES):
        spec = get_entry(name).spec
        assert (spec.family, spec.input_range, spec.input_size) == ("titok", (0.0, 1.0), 256)
        assert spec.kind == ("discrete" if r.codebook else "continuous")
        assert spec.codebook_size == r.codebook and spec.latent_channels == r.channels
        assert (spec.checkpoint.hub_repo, spec.checkpoint.hub_filename) == (
            f"yucornetto/tokenizer_{r.name}_imagenet", "model.safetensors")
        assert spec.checkpoint.filename == f"titok/tokenizer_{r.name}_imagenet.safetensors"
        assert spec.published == ("TiTok" if name == "titok-l32" else None)
    assert get_entry("titok-bl64-vae-c16").option_names() == ["sample", "seed"]
    assert get_entry("titok-l32").option_names() == []


def test_list_and_missing_file(capsys):
    assert cli_main(["list", "--family", "titok"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    assert sorted(rows) == sorted(NAMES)
    assert out.count(" missing ") == 9 and "titok/tokenizer_titok_sl256_vq8k_imagenet.safetensors" in out
    assert out.count(" 1D (256px in) ") == 9  # no spatial grid; the one input side the harness fits into
    with pytest.raises(MissingWeightsError) as err:
        create_tokenizer("titok-bl128-vae-c16")
    message = str(err.value)
    assert "\n" not in message and message.startswith("titok-bl128-vae-c16:")
    assert "titok/tokenizer_titok_bl128_vae_c16_imagenet.safetensors" in message and "put it at" in message
    assert weights_status(get_entry("titok-l32"))["path"].endswith("titok/tokenizer_titok_l32_imagenet.safetensors")


# ---------------------------------------------------------------- full-size layouts (meta device)


def test_full_size_models_have_upstreams_keys_and_shapes():
    up = upstream_keys()
    counts = {}
    for r in RELEASES:
        with torch.device("meta"):
            model = TiTok(r.config())
        mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        want = {k: v for k, v in up[r.name].items() if not k.startswith("_")}
        assert mine == want, r.name
        assert sum(math.prod(s) for s in mine.values()) == up[r.name]["_params"]
        counts[r.name] = len(mine)
    assert counts == {"titok_l32": 692, "titok_b64": 404, "titok_s128": 308, "titok_bl64_vq8k": 459,
                      "titok_bl128_vq8k": 459, "titok_sl256_vq8k": 411, "titok_ll32_vae_c16": 602,
                      "titok_bl64_vae_c16": 458, "titok_bl128_vae_c16": 458}


# ---------------------------------------------------------------- loading


@pytest.mark.parametrize("name,suffix,batch,frames", [("titok-l32", ".safetensors", 1, 2),
                                                       ("titok-bl64-vq8k", ".bin", 2, 1),
                                                       ("titok-ll32-vae-c16", ".safetensors", 2, 2)])
def test_upstream_layout_file_loads_through_checkpoint(name, suffix, batch, frames, tmp_path):
    cfg = tiny(name)
    path = write_checkpoint(tmp_path / f"model{suffix}", cfg)
    with pytest.warns(UserWarning, match="not the released size"):
        tok = create_tokenizer(name, checkpoint=str(path))
    assert tok.model.config == cfg
    state = random_state(cfg)
    for k, v in tok.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    x = _image(batch=batch, frames=frames)
    enc = tok.encode(x)
    y = tok.decode(enc)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and y.std() > 0
    spec = tok.spec
    if spec.kind == "discrete":
        assert enc.indices.shape == (batch, frames, cfg.num_tokens) and enc.indices.max() < cfg.codebook_size
        assert enc.indices.unique().numel() > 4  # the codebook is really searched
        assert enc.bits.tolist() == [frames * cfg.num_tokens * math.log2(cfg.codebook_size)] * batch
        # frames are independent images: the second frame alone gives the same tokens
        assert torch.equal(tok.encode(x[:, :, -1:]).indices[:, 0], enc.indices[:, -1])
    else:
        assert enc.latents.shape == (batch, 16, frames, cfg.num_tokens)
        assert enc.bits.tolist() == [frames * 16 * cfg.num_tokens * 32.0] * batch
        torch.testing.assert_close(tok.encode(x[:, :, -1:]).latents[:, :, 0], enc.latents[:, :, -1])
    d = tok.describe()
    released = next(r for r in RELEASES if r.name.replace("_", "-") == name).config()
    assert d["size_deviations"]["encoder"] == [list(TINY_VIT), list(released.encoder)]
    assert d["model_config"]["legacy"] == cfg.legacy


def test_strict_loading_errors_name_file_and_keys(tmp_path):
    cfg = tiny("titok-b64")
    state = random_state(cfg)
    wrong_tokens = random_state(TiTokConfig(**{**cfg.__dict__, "num_tokens": 32}))
    torch.save(wrong_tokens, tmp_path / "tokens.bin")
    with pytest.raises(BadInputError, match=r"tokens\.bin does not fit: .*num_tokens=32 \(expected 64\)"):
        create_tokenizer("titok-b64", checkpoint=str(tmp_path / "tokens.bin"))
    del state["decoder.ffn.2.bias"]
    torch.save(state, tmp_path / "missing.bin")
    with pytest.raises(BadInputError, match=r"missing\.bin does not fit: .*1 missing \(decoder\.ffn\.2\.bias\)"):
        create_tokenizer("titok-b64", checkpoint=str(tmp_path / "missing.bin"))
    vae = random_state(tiny("titok-bl64-vae-c16"))
    torch.save(vae, tmp_path / "vae.bin")
    with pytest.raises(BadInputError, match=r"quantizer='vae' \(expected 'vq'\)"):
        create_tokenizer("titok-bl64-vq8k", checkpoint=str(tmp_path / "vae.bin"))


# ---------------------------------------------------------------- numerics against closed forms


def test_legacy_encoder_reads_latent_rows_without_transpose():
    """Legacy files project the (N, W) latent rows reinterpreted as a (W, N) map; the others transpose."""
    for legacy in (True, False):
        cfg = TiTokConfig(**{**tiny("titok-s128" if legacy else "titok-bl128-vq8k").__dict__})
        model = build_model(random_state(cfg, seed=3), cfg).model
        x = _image(seed=4)[:, :, 0]
        captured = {}
        model.encoder.ln_post.register_forward_hook(lambda m, i, o: captured.setdefault("rows", o))
        with torch.no_grad():
            z = model.encode_latent(x)
        rows = captured["rows"][0]  # (N, W)
        n, w = rows.shape
        grid = rows.reshape(w, n) if legacy else rows.T
        conv = model.encoder.conv_out
        want = conv.weight[:, :, 0, 0] @ grid + conv.bias[:, None]
        torch.testing.assert_close(z[0, :, 0], want, rtol=1e-5, atol=1e-5)


def test_vq_picks_nearest_code_and_decodes_normalised_codes():
    cfg = tiny("titok-s128")
    model = build_model(random_state(cfg, seed=5), cfg).model
    x = _image(seed=6)[:, :, 0]
    with torch.no_grad():
        z = model.encode_latent(x)[0, :, 0].T  # (N, C)
        idx = model.encode_indices(x)[0]
        codes = F.normalize(model.quantize.embedding.weight, dim=-1)
        want = torch.cdist(F.normalize(z, dim=-1).double(), codes.double()).argmin(1)
        assert torch.equal(idx, want)
        looked = model.quantize.lookup(idx[None])[0, :, 0].T
    torch.testing.assert_close(looked, codes[idx])


def test_single_stage_head_places_patch_pixels_row_major():
    """Channel (p1 * 16 + p2) * 3 + c of the 1x1 head is pixel (16 h + p1, 16 w + p2) of colour c."""
    cfg = tiny("titok-bl64-vq8k")
    dec = build_model(random_state(cfg), cfg).model.decoder
    with torch.no_grad():
        dec.conv_out.weight.zero_()
        dec.conv_out.weight[:, :, 1, 1] = torch.eye(3)
        dec.conv_out.bias.zero_()
        head = dec.ffn[0]
        head.weight.zero_()
        head.bias.copy_(torch.arange(16 * 16 * 3, dtype=torch.float32))
        y = dec(torch.randn(1, 64, 1, 64))[0]
    h, w, p1, p2, c = 5, 11, 3, 7, 2
    assert y[c, 16 * h + p1, 16 * w + p2] == (p1 * 16 + p2) * 3 + c


def test_vae_mean_by_default_and_seeded_sample(tmp_path):
    cfg = tiny("titok-bl64-vae-c16")
    path = write_checkpoint(tmp_path / "vae.safetensors", cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean_tok = create_tokenizer("titok-bl64-vae-c16", checkpoint=str(path))
        s1 = create_tokenizer("titok-bl64-vae-c16:sample=true,seed=3", checkpoint=str(path))
        s2 = create_tokenizer("titok-bl64-vae-c16:sample=true,seed=3", checkpoint=str(path))
    x = _image(seed=7)
    with torch.no_grad():
        mean, std = mean_tok.model.posterior(x[:, :, 0])
        params = mean_tok.model.encode_latent(x[:, :, 0])
    torch.testing.assert_close(mean, params[:, :16])
    torch.testing.assert_close(std, torch.exp(0.5 * params[:, 16:].clamp(-30, 20)))
    torch.testing.assert_close(mean_tok.encode(x).latents[:, :, 0], mean[:, :, 0])
    a, b = s1.encode(x).latents, s2.encode(x).latents
    assert torch.equal(a, b) and not torch.equal(a[:, :, 0], mean[:, :, 0])
    assert s1.describe()["posterior"] == "sample(seed=3)" and mean_tok.describe()["posterior"] == "mean"


# ---------------------------------------------------------------- harness: the fixed 256 x 256 input


def test_harness_fits_every_size_into_the_fixed_square(tmp_path):
    spec = get_entry("titok-l32").spec
    for size in (256, 512, 1024, None):
        g = plan_image(600, 300, size, spec)
        assert (g.canvas_h, g.canvas_w, g.fit_h, g.fit_w, g.top, g.left) == (256, 256, 256, 128, 0, 64)
    g = plan_video(360, 640, 480, spec)
    assert (g.canvas_h, g.canvas_w, g.fit_h, g.fit_w) == (256, 256, 144, 256)
    with pytest.raises(BadInputError, match="256x256 only"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from tokbench.tokenizers.titok import load_titok
            cfg = tiny("titok-l32")
            tok = load_titok(spec, write_checkpoint(tmp_path / "m.bin", cfg))
        tok.encode(torch.rand(1, 3, 1, 128, 128))


# ---------------------------------------------------------------- end to end


def test_tokbench_run_end_to_end(tmp_path):
    """``tokbench run`` (its in-process entry, tokbench.pipeline.run) on the image suite: the harness fits the
    64 px evaluation into 256 x 256, the rate is 64 tokens x 13 bits over the 256 x 256 canvas. (The single-stage
    entry keeps it cheap; the legacy pixel decoder runs in the loading test above.)"""
    from tiny_models import isolate_caches
    from tokbench.pipeline import RunConfig, run

    ckpt = write_checkpoint(tmp_path / "model.safetensors", tiny("titok-bl64-vq8k"))
    with pytest.MonkeyPatch.context() as mp:
        isolate_caches(mp, tmp_path / "caches")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tiny file is not the released size
            run(RunConfig(tokenizer="titok-bl64-vq8k", suite="text-face", checkpoint=str(ckpt), limit=1,
                          resolutions=[64], out=str(tmp_path / "out"), quiet=True, name="t", metrics=["psnr"],
                          allow_unbinned_resolution=True))
    report = load_report(tmp_path / "out" / "t")
    top = report.rows[report.rows.level == "image"]
    assert len(top) >= 1 and np.isfinite(top["PSNR"].to_numpy(float)).all() and (top["PSNR"] > 0).all()
    assert np.allclose(top["bpp"].to_numpy(float), 64 * 13 / 256 ** 2, rtol=1e-12)
    man = report.manifest
    assert man["tokenizer"]["name"] == "titok-bl64-vq8k" and man["tokenizer"]["checkpoint_path"] == str(ckpt)
    assert man["tokenizer"]["size_deviations"]["decoder"] == [list(TINY_VIT), [1024, 24, 16]]
    assert man["tokenizer"]["spec"]["input_size"] == 256 and "256x256 only" in man["harness"]["fixed_input"]


def test_leaderboard_factor_column_says_1d():
    from tokbench.leaderboard.catalog import _factor

    assert _factor(get_entry("titok-l32").spec.describe(), "image") == "1D"
    assert _factor(get_entry("titok-bl64-vae-c16").spec.describe(), "image") == "1D"
    assert _factor(get_entry("identity").spec.describe(), "image") == "-"
    assert _factor(get_entry("maskbit-12bit").spec.describe(), "image") == "16x"
