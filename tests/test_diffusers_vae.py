"""diffusers VAE adapters on tiny randomly initialised models saved in the real diffusers folder format."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

import diffusers  # noqa: E402

from tiny_models import isolate_caches, make_tiny_diffusers  # noqa: E402
from tokbench.errors import BadInputError, MissingWeightsError  # noqa: E402
from tokbench.tokenizers import diffusers_vae as dv  # noqa: E402
from tokbench.tokenizers.registry import create_tokenizer, get_entry, weights_status  # noqa: E402
from tokbench.weights import weights_dir  # noqa: E402

NAMES = sorted(dv.SOURCES)
VIDEO = [n for n in NAMES if "video" in get_entry(n).spec.modalities]


@pytest.fixture(autouse=True)
def _caches(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path / "caches")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One tiny model per registered name, written once for the module."""
    root = tmp_path_factory.mktemp("diffusers")
    return {n: make_tiny_diffusers(n, root) for n in NAMES}


def clip_for(spec, batch=2, seed=0, small=False):
    """A (B, 3, T, H, W) clip in [-1, 1] that satisfies the spec: T = 1 + 2 * temporal_factor for video
    (1 + temporal_factor when ``small``)."""
    g = torch.Generator().manual_seed(seed)
    t = 1 + (1 if small else 2) * spec.temporal_factor if "video" in spec.modalities else 1
    m = spec.spatial_multiple
    h, w = (2 * m, m) if m >= 16 else ((16, 16) if small else (16, 24))
    return torch.rand(batch, 3, t, h, w, generator=g) * 2 - 1


def direct(folder, name, x, sample_seed=None, **decode_kwargs):
    """What diffusers itself gives for x in [-1, 1], without the adapter: mean (or seeded sample) -> decode."""
    source = dv.SOURCES[name]
    model = getattr(diffusers, source.cls).from_pretrained(str(folder)).eval()
    if source.per_sample:  # diffusers' own batched path is wrong for this class; its slicing is batch 1
        model.enable_slicing()
    video = source.cls not in ("AutoencoderKL", "AutoencoderDC", "AutoencoderKLFlux2")  # takes B,C,T,H,W
    inp = x if video else x[:, :, 0]
    with torch.no_grad():
        out = model.encode(inp)
        if hasattr(out, "latent_dist"):
            z = (out.latent_dist.mode() if sample_seed is None
                 else out.latent_dist.sample(generator=torch.Generator().manual_seed(sample_seed)))
        else:
            z = out.latent
        y = model.decode(z, **decode_kwargs).sample
    if source.one_frame_clips:  # an image model on a video architecture: latents (B, c, h, w) like the others
        z = z[:, :, 0]
    return z, (y if video else y[:, :, None])


def test_specs_follow_the_harness_contract():
    assert len(NAMES) == 18
    for name in NAMES:
        spec = get_entry(name).spec
        assert spec.input_range == (-1.0, 1.0), name
        assert spec.kind == "continuous" and spec.latent_bits == 16, name
        assert spec.spatial_multiple % spec.spatial_factor == 0, name
        assert spec.checkpoint.hub_repo and spec.checkpoint.filename == f"{name}/config.json", name
        if "video" in spec.modalities:
            assert spec.causal_first_frame and spec.valid_frames(1), name
            assert spec.valid_frames(spec.default_clip_frames), name
    facts = {n: (get_entry(n).spec.spatial_factor, get_entry(n).spec.temporal_factor, get_entry(n).spec.latent_channels)
             for n in NAMES}
    assert facts["sd-vae-ft-ema"] == (8, 1, 4) and facts["flux1-vae"] == (8, 1, 16) and facts["sd35-vae"] == (8, 1, 16)
    assert facts["dc-ae-f128c512-in"] == (128, 1, 512) and facts["ltx-video-vae"] == (32, 8, 128)
    assert facts["mochi-vae"] == (8, 6, 12) and facts["wan2.1-vae"] == (8, 4, 16)
    assert facts["flux2-vae"] == (8, 1, 32) and facts["qwen-image-vae"] == (8, 1, 16)
    assert facts["wan2.2-vae"] == (16, 4, 48) and facts["hunyuanvideo1.5-vae"] == (16, 4, 32)
    assert get_entry("dc-ae").spec.name == "dc-ae-f32c32-in"  # alias


def test_harness_maps_pixels_to_minus_one_one():
    from tokbench.harness import to_input, to_uint8

    spec = get_entry("sd-vae-ft-mse").spec
    pixels = np.array([0, 51, 128, 255], dtype=np.uint8).reshape(1, 1, 1, 4, 1).repeat(3, axis=4)
    x = to_input(pixels, spec, "cpu", torch.float32)
    expected = torch.tensor([-1.0, 51 / 127.5 - 1, 128 / 127.5 - 1, 1.0])
    torch.testing.assert_close(x[0, 0, 0, 0], expected, atol=1e-6, rtol=0)
    assert np.array_equal(to_uint8(x, spec, x.shape, "t", "i"), pixels)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_model_round_trip_matches_diffusers(name, folders):
    spec = get_entry(name).spec
    tok = create_tokenizer(name, checkpoint=str(folders[name]))
    x = clip_for(spec)
    enc = tok.encode(x)
    y = tok.decode(enc)
    b, _, t, h, w = x.shape
    tl = 1 + (t - 1) // spec.temporal_factor if "video" in spec.modalities else t
    assert enc.latents.shape == (b, spec.latent_channels, tl, h // spec.spatial_factor, w // spec.spatial_factor)
    assert torch.equal(enc.bits, torch.full((b,), float(enc.latents[0].numel() * 16), dtype=torch.float64))
    assert y.shape == x.shape and y.dtype == torch.float32
    z_ref, y_ref = direct(folders[name], name, x)
    # the adapter feeds [-1, 1] unchanged, takes the posterior mean and applies no scaling factor
    torch.testing.assert_close(enc.latents if "video" in spec.modalities else enc.latents[:, :, 0], z_ref,
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)


def test_image_model_codes_each_frame_alone(folders):
    tok = create_tokenizer("sd-vae-ft-ema", checkpoint=str(folders["sd-vae-ft-ema"]))
    x = torch.rand(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    enc = tok.encode(x)
    assert enc.latents.shape == (1, 4, 3, 4, 4) and enc.bits.item() == 3 * 4 * 4 * 4 * 16
    y = tok.decode(enc)
    one = tok.reconstruct(x[:, :, 1:2])[0]
    torch.testing.assert_close(y[:, :, 1:2], one, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["sd-vae-ft-mse", "wan2.1-vae"])
def test_mean_is_deterministic_and_sampling_is_seeded(name, folders):
    spec = get_entry(name).spec
    x = clip_for(spec, batch=1, small=True)
    mean = create_tokenizer(name, checkpoint=str(folders[name]))
    a, b = mean.reconstruct(x)[0], mean.reconstruct(x)[0]
    assert torch.equal(a, b)
    s0 = create_tokenizer(f"{name}:sample=true,seed=0", checkpoint=str(folders[name]))
    s1 = create_tokenizer(name, checkpoint=str(folders[name]), sample=True, seed=1)
    assert s0.label == f"{name}:sample=True,seed=0"
    z0, z0b, z1 = s0.encode(x).latents, s0.encode(x).latents, s1.encode(x).latents
    zm = mean.encode(x).latents
    assert torch.equal(z0, z0b)
    assert (z0 - zm).abs().mean() > 0.1 and (z0 - z1).abs().mean() > 0.1
    _, y_ref = direct(folders[name], name, x, sample_seed=0)
    torch.testing.assert_close(s0.decode(s0.encode(x)), y_ref, rtol=1e-5, atol=1e-5)
    assert mean.describe()["posterior"] == "mean" and s0.describe()["posterior"] == "sample"


def test_cogvideox_pads_to_its_own_frame_rule(folders):
    name = "cogvideox-vae"
    spec = get_entry(name).spec
    assert spec.valid_frames(5)  # the spec's 1 + 4k ...
    x = torch.rand(1, 3, 5, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    tok = create_tokenizer(name, checkpoint=str(folders[name]))
    enc = tok.encode(x)
    assert enc.latents.shape[2] == 3  # ... coded as 9 = 1 + 8 frames (last frame repeated 4 times)
    y = tok.decode(enc)
    assert y.shape == x.shape
    padded = torch.cat([x, x[:, :, -1:].repeat(1, 1, 4, 1, 1)], dim=2)
    torch.testing.assert_close(y, direct(folders[name], name, padded)[1][:, :, :5], rtol=1e-5, atol=1e-5)


def test_ltx_timestep_conditioned_decoder(tmp_path):
    folder = make_tiny_diffusers("ltx-video-vae", tmp_path, timestep_conditioning=True)
    spec = get_entry("ltx-video-vae").spec
    x = clip_for(spec, batch=1, small=True)
    tok = create_tokenizer("ltx-video-vae", checkpoint=str(folder))
    y = tok.reconstruct(x)[0]
    torch.testing.assert_close(y, direct(folder, "ltx-video-vae", x, temb=torch.zeros(1))[1], rtol=1e-5, atol=1e-5)
    noisy = create_tokenizer("ltx-video-vae:decode_timestep=0.05", checkpoint=str(folder))
    a, b = noisy.reconstruct(x)[0], noisy.reconstruct(x)[0]
    assert torch.equal(a, b) and not torch.allclose(a, y)


def test_dc_ae_is_deterministic_and_has_no_sample_option(folders):
    with pytest.raises(BadInputError, match="unknown option.*sample"):
        create_tokenizer("dc-ae-f32c32-in:sample=true", checkpoint=str(folders["dc-ae-f32c32-in"]))


def test_missing_weights_offline_is_one_line():
    for name in ("sd-vae-ft-ema", "wan2.1-vae"):
        with pytest.raises(MissingWeightsError) as err:
            create_tokenizer(name)
        msg = str(err.value)
        assert "\n" not in msg and dv.SOURCES[name].repo in msg and str(weights_dir() / name) in msg
        assert "offline" in msg
        assert weights_status(get_entry(name)) == {"weights": "missing",
                                                   "path": str(weights_dir() / name / "config.json")}


def test_bad_checkpoint_folders(tmp_path, folders):
    with pytest.raises(MissingWeightsError, match="does not exist"):
        create_tokenizer("sdxl-vae", checkpoint=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="no config.json"):
        create_tokenizer("sdxl-vae", checkpoint=str(tmp_path / "empty"))
    half = tmp_path / "config-only"
    half.mkdir()
    shutil.copy(folders["sdxl-vae"] / "config.json", half / "config.json")
    with pytest.raises(MissingWeightsError, match="not a complete diffusers AutoencoderKL folder"):
        create_tokenizer("sdxl-vae", checkpoint=str(half))
    with pytest.raises(BadInputError, match="describes a AutoencoderKLWan, expected a AutoencoderKL"):
        create_tokenizer("sdxl-vae", checkpoint=str(folders["wan2.1-vae"]))
    weights = next(folders["sdxl-vae"].glob("*.safetensors"))
    with pytest.raises(BadInputError, match="is a file"):
        create_tokenizer("sdxl-vae", checkpoint=str(weights))


def test_weights_dir_pipeline_snapshot_and_hub_cache(tmp_path):
    # <weights dir>/<name>/ is found without --checkpoint, and `tokbench list` reports it
    make_tiny_diffusers("sd-vae-ft-mse", weights_dir())
    entry = get_entry("sd-vae-ft-mse")
    assert weights_status(entry) == {"weights": "present", "path": str(weights_dir() / "sd-vae-ft-mse" / "config.json")}
    tok = create_tokenizer("sd-vae-ft-mse")
    assert tok.checkpoint_path == str(weights_dir() / "sd-vae-ft-mse") and len(tok.checkpoint_sha256) == 64
    # a whole pipeline snapshot (vae/ inside) passed as --checkpoint
    snap = make_tiny_diffusers("flux1-vae", tmp_path, subfolder="vae")
    assert create_tokenizer("flux1-vae", checkpoint=str(snap)).checkpoint_path == str(snap / "vae")
    # the Hugging Face cache layout of the hub repo (what an earlier online run leaves behind)
    import huggingface_hub.constants as hf

    repo = dv.SOURCES["flux1-vae"].repo
    repo_dir = Path(hf.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("0" * 40)
    make_tiny_diffusers("flux1-vae", repo_dir / "snapshots", folder_name="0" * 40, subfolder="vae")
    assert weights_status(get_entry("flux1-vae"))["weights"] == "present"
    tok = create_tokenizer("flux1-vae")
    assert tok.checkpoint_path.endswith("0" * 40 + "/vae")
    assert json.loads((repo_dir / "snapshots" / ("0" * 40) / "vae" / "config.json").read_text())["_class_name"] \
        == "AutoencoderKL"


def test_gpu_path_options_on_cpu(folders):
    name = "sd-vae-ft-ema"
    x = clip_for(get_entry(name).spec, batch=1, small=True)
    ref = create_tokenizer(name, checkpoint=str(folders[name]))
    y32 = ref.reconstruct(x)[0]
    assert ref.describe()["dtype"] == "float32" and ref.describe()["autocast"] is False
    assert ref.describe()["channels_last"] is False  # auto: CUDA only
    cl = create_tokenizer(f"{name}:channels_last=true", checkpoint=str(folders[name]))
    assert cl.channels_last
    torch.testing.assert_close(cl.reconstruct(x)[0], y32, rtol=1e-4, atol=1e-4)
    bf = create_tokenizer(name, checkpoint=str(folders[name]), dtype=torch.bfloat16)
    assert next(bf.model.parameters()).dtype == torch.bfloat16
    ybf = bf.reconstruct(x.to(torch.bfloat16))[0]
    assert ybf.dtype == torch.float32 and bf.describe()["dtype"] == "bfloat16" and bf.describe()["autocast"]
    assert (ybf - y32).abs().mean() < 0.05 * y32.abs().mean() + 1e-3
    tiled = create_tokenizer(f"{name}:tiling=true,slicing=true", checkpoint=str(folders[name]))
    assert tiled.model.use_tiling and tiled.model.use_slicing
    big = torch.rand(2, 3, 1, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    yt = tiled.reconstruct(big)[0]
    assert yt.shape == big.shape and torch.isfinite(yt).all()
    if not torch.cuda.is_available():
        with pytest.raises(BadInputError, match="CUDA is not available"):
            ref.to("cuda", torch.float32)


def test_describe_records_what_ran(folders):
    d = create_tokenizer("mochi-vae", checkpoint=str(folders["mochi-vae"])).describe()
    assert d["diffusers_class"] == "AutoencoderKLMochi" and d["diffusers_version"] == diffusers.__version__
    assert d["spec"]["temporal_factor"] == 6 and d["checkpoint_path"] == str(folders["mochi-vae"])
    assert math.isclose(d["spec"]["input_range"][0], -1.0)


def test_precision_rules(folders):
    from tokbench.tokenizers.torch_module import ieee_fp32, parse_dtype

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with ieee_fp32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == saved
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("fp16") is torch.float16
    with pytest.raises(BadInputError, match="unknown dtype"):
        parse_dtype("int8")
    # float32 pixels stay float32 under autocast (Mochi's 2**7 * 2 * pi Fourier features need them)
    tok = create_tokenizer("mochi-vae", checkpoint=str(folders["mochi-vae"]), dtype=torch.bfloat16)
    x = torch.zeros(1, 3, 1, 16, 16)
    assert tok.prepare(x).dtype == torch.float32 and tok.prepare(x.bfloat16()).dtype == torch.bfloat16
    ref = create_tokenizer("mochi-vae", checkpoint=str(folders["mochi-vae"]))
    assert ref.prepare(x.bfloat16()).dtype == torch.float32
