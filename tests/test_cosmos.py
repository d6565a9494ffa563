"""Cosmos TorchScript adapters on tiny scripted encoder.jit / decoder.jit files with the upstream call signatures.

The windowing and padding are checked against an independent NumPy transcription of the upstream uint8 path
(``CausalVideoTokenizer.forward`` with ``pad_video_batch`` / ``unpad_video_batch``, ``numpy2tensor``,
``tensor2numpy``)."""
from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from tiny_models import isolate_caches, make_tiny_cosmos
from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError
from tokbench.tokenizers import cosmos as cz
from tokbench.tokenizers.registry import create_tokenizer, get_entry, list_tokenizers, weights_status
from tokbench.weights import weights_dir

NAMES = sorted(n for n in list_tokenizers() if get_entry(n).spec.family == "cosmos-jit")


@pytest.fixture(autouse=True)
def _caches(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path / "caches")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cosmos")
    return {n: make_tiny_cosmos(n, root) for n in NAMES}


def load(name, folders, **options):
    return create_tokenizer(name, checkpoint=str(folders[name.split(":")[0]]), allow_unsafe=True, **options)


# ---------------------------------------------------------------- upstream transcription (NumPy, uint8 video)


def upstream_pad(batch: np.ndarray):
    """pad_video_batch: B,F,H,W,3 uint8; zero-pad H, W to 16 (centred), edge-pad frames to 1 + 8k."""
    f, h, w = batch.shape[1:4]
    hp = (16 - h % 16) if h % 16 else 0
    wp = (16 - w % 16) if w % 16 else 0
    fp = (8 - (f - 1) % 8) if (f - 1) % 8 else 0
    region = [fp >> 1, hp >> 1, wp >> 1, f + (fp >> 1), h + (hp >> 1), w + (wp >> 1)]
    batch = np.pad(batch, ((0, 0), (0, 0), (hp >> 1, hp - (hp >> 1)), (wp >> 1, wp - (wp >> 1)), (0, 0)))
    batch = np.pad(batch, ((0, 0), (fp >> 1, fp - (fp >> 1)), (0, 0), (0, 0), (0, 0)), mode="edge")
    return batch, region


@torch.no_grad()
def upstream_forward(video: np.ndarray, enc, dec, window: int) -> np.ndarray:
    """CausalVideoTokenizer.forward in float32: independent windows, pad, autoencode, crop, uint8."""
    out = []
    for idx in range((video.shape[1] - 1) // window + 1):
        padded, (f1, y1, x1, f2, y2, x2) = upstream_pad(video[:, idx * window:(idx + 1) * window])
        x = torch.from_numpy(2.0 * (padded.transpose(0, 4, 1, 2, 3) / 255.0) - 1.0).float()  # numpy2tensor
        code = enc(x)
        y = dec(code[0] if isinstance(code, tuple) else code)
        u = (((y.float() + 1) / 2).clamp(0, 1).numpy().transpose(0, 2, 3, 4, 1) * 255 + 0.5).astype(np.uint8)
        out.append(u[:, f1:f2, y1:y2, x1:x2])
    return np.concatenate(out, axis=1)


def jit_pair(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(folder / "encoder.jit")), torch.jit.load(str(folder / "decoder.jit"))


def to_uint8(y: torch.Tensor) -> np.ndarray:
    return (((y.float() + 1) / 2).clamp(0, 1).numpy().transpose(0, 2, 3, 4, 1) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------- tests


def test_registry_entries():
    assert len(NAMES) == 12
    for name in NAMES:
        spec = get_entry(name).spec
        assert spec.input_range == (-1.0, 1.0) and spec.spatial_multiple == 16
        assert spec.checkpoint.hub_repo.startswith("nvidia/Cosmos-") and spec.checkpoint.hub_filename == "encoder.jit"
        if spec.kind == "discrete":
            assert spec.codebook_size == 64000 == math.prod((8, 8, 8, 5, 5, 5)) and spec.latent_bits is None
        else:
            assert spec.latent_channels == 16 and spec.latent_bits == 16
        if "video" in spec.modalities:
            assert spec.causal_first_frame and spec.default_clip_frames == 17 and spec.valid_frames(17)
    s = get_entry("cosmos-dv4x8x8").spec
    assert (s.temporal_factor, s.spatial_factor, s.kind) == (4, 8, "discrete")
    s = get_entry("cosmos-cv8x16x16").spec
    assert (s.temporal_factor, s.spatial_factor, s.kind) == (8, 16, "continuous")
    s = get_entry("cosmos-di16x16").spec
    assert (s.temporal_factor, s.spatial_factor, s.modalities) == (1, 16, frozenset({"image"}))
    assert get_entry("cosmos-1.0-cv8x8x8").spec.checkpoint.hub_repo == "nvidia/Cosmos-1.0-Tokenizer-CV8x8x8"
    assert get_entry("cosmos-0.1-ci8x8").spec.name == "cosmos-ci8x8"


@pytest.mark.parametrize("t", range(1, 42))
def test_window_padding_matches_upstream_rule(t):
    x = torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1).expand(1, 3, t, 20, 40).contiguous()
    padded, region = cz.pad_window(x)
    ref, ref_region = upstream_pad(np.zeros((1, t, 20, 40, 3), np.uint8))
    assert padded.shape[2:] == ref.shape[1:4] and list(region) == ref_region
    assert (padded.shape[2] - 1) % 8 == 0 and padded.shape[2] - t < 8
    f0, y0, x0, f1, y1, x1 = region
    assert torch.equal(cz.crop(padded, region), x)
    inside = padded[..., y0:y1, x0:x1]
    assert (inside[:, :, :f0] == 0).all() and (inside[:, :, f1:] == t - 1).all()  # first / last frame repeated
    assert (padded[..., :y0, :] == -1).all() and (padded[..., y1:, :] == -1).all()  # black = -1
    assert (padded[..., :x0] == -1).all() and (padded[..., x1:] == -1).all()


@pytest.mark.parametrize("name,frames", [("cosmos-cv4x8x8", 13), ("cosmos-dv4x8x8", 33), ("cosmos-dv8x16x16", 17),
                                         ("cosmos-cv8x8x8", 41)])
def test_video_reconstruction_matches_upstream_windowing(name, frames, folders):
    tok = load(name, folders)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (2, frames, 40, 48, 3), dtype=np.uint8)  # 40: not a multiple of 16
    x = torch.from_numpy(2.0 * (video.transpose(0, 4, 1, 2, 3) / 255.0) - 1.0).float()  # what the harness feeds
    enc = tok.encode(x)
    y = tok.decode(enc)
    assert y.shape == x.shape and y.dtype == torch.float32
    enc_jit, dec_jit = jit_pair(folders[name])
    assert np.array_equal(to_uint8(y), upstream_forward(video, enc_jit, dec_jit, 17))
    spec = tok.spec
    windows = [(frames - 1) // 17 + 1, [min(17, frames - 17 * i) for i in range((frames - 1) // 17 + 1)]]
    latent_t = sum(1 + (n + cz.frames_to_pad(n) - 1) // spec.temporal_factor for n in windows[1])
    hw = (48 // spec.spatial_factor, 48 // spec.spatial_factor)  # 40 -> 48 after padding
    if spec.kind == "discrete":
        assert enc.latents is None and enc.indices.shape == (2, latent_t, *hw)
        assert enc.indices.dtype == torch.int64 and 0 <= enc.indices.min() and enc.indices.max() < 64000
        assert torch.allclose(enc.bits, torch.full((2,), latent_t * hw[0] * hw[1] * math.log2(64000),
                                                   dtype=torch.float64))
    else:
        assert enc.indices is None and enc.latents.shape == (2, 16, latent_t, *hw)
        assert torch.equal(enc.bits, torch.full((2,), float(16 * latent_t * hw[0] * hw[1] * 16), dtype=torch.float64))


def test_temporal_window_option(folders):
    name = "cosmos-cv4x8x8"
    x = torch.rand(1, 3, 33, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    short, long = load(name, folders), load(f"{name}:temporal_window=49", folders)
    assert long.describe()["temporal_window"] == 49 and long.label == f"{name}:temporal_window=49"
    e17, e49 = short.encode(x), long.encode(x)
    assert e17.latents.shape[2] == 5 + 5 and e49.latents.shape[2] == 9  # two 17/16-frame windows vs one of 33
    assert not torch.allclose(short.decode(e17), long.decode(e49))
    with pytest.raises(BadInputError, match="temporal_window"):
        load(f"{name}:temporal_window=0", folders)


@pytest.mark.parametrize("name", ["cosmos-ci8x8", "cosmos-di16x16"])
def test_image_tokenizers_code_frames_alone(name, folders):
    tok = load(name, folders)
    x = torch.rand(2, 3, 1, 40, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    enc = tok.encode(x)
    y = tok.decode(enc)
    assert y.shape == x.shape
    enc_jit, dec_jit = jit_pair(folders[name])
    padded = torch.nn.functional.pad(x[:, :, 0], (0, 0, 4, 4), value=-1.0)  # 40 -> 48, centred, black
    with torch.no_grad():
        ref = dec_jit(enc_jit(padded)[0])[:, :, 4:44]
    torch.testing.assert_close(y[:, :, 0], ref)
    f = tok.spec.spatial_factor
    if tok.spec.kind == "discrete":
        assert enc.indices.shape == (2, 1, 48 // f, 32 // f)
    else:
        assert enc.latents.shape == (2, 16, 1, 48 // f, 32 // f)
    # a clip of 3 frames: each frame alone, as a batch
    clip = torch.rand(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    torch.testing.assert_close(tok.reconstruct(clip)[0][:, :, 2:3], tok.reconstruct(clip[:, :, 2:3])[0])


def test_torchscript_needs_opt_in(folders):
    with pytest.raises(UnsafeCheckpointError) as err:
        create_tokenizer("cosmos-dv4x8x8", checkpoint=str(folders["cosmos-dv4x8x8"]))
    msg = str(err.value)
    assert "\n" not in msg and "--allow-unsafe-checkpoint" in msg and "nvidia/Cosmos-0.1-Tokenizer-DV4x8x8" in msg


def test_missing_and_broken_checkpoints(tmp_path, folders):
    with pytest.raises(MissingWeightsError) as err:
        create_tokenizer("cosmos-cv8x16x16", allow_unsafe=True)
    msg = str(err.value)
    assert "\n" not in msg and "hf://nvidia/Cosmos-0.1-Tokenizer-CV8x16x16/encoder.jit" in msg
    assert str(weights_dir() / "Cosmos-0.1-Tokenizer-CV8x16x16" / "encoder.jit") in msg
    with pytest.raises(MissingWeightsError, match="does not exist"):
        create_tokenizer("cosmos-cv8x16x16", checkpoint=str(tmp_path / "nowhere"), allow_unsafe=True)
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(folders["cosmos-cv8x16x16"] / "encoder.jit", half / "encoder.jit")
    with pytest.raises(MissingWeightsError, match="decoder.jit is missing"):
        create_tokenizer("cosmos-cv8x16x16", checkpoint=str(half), allow_unsafe=True)
    (half / "decoder.jit").write_bytes(b"not a torchscript archive")
    with pytest.raises(BadInputError, match="not a loadable TorchScript file"):
        create_tokenizer("cosmos-cv8x16x16", checkpoint=str(half / "encoder.jit"), allow_unsafe=True)


def test_weights_folder_is_found_and_listed(folders):
    entry = get_entry("cosmos-dv8x8x8")
    assert weights_status(entry)["weights"] == "missing"
    target = weights_dir() / "Cosmos-0.1-Tokenizer-DV8x8x8"
    shutil.copytree(folders["cosmos-dv8x8x8"], target)
    assert weights_status(entry) == {"weights": "present", "path": str(target / "encoder.jit")}
    tok = create_tokenizer("cosmos-dv8x8x8", allow_unsafe=True)
    assert tok.checkpoint_path == str(target) and tok.checkpoint_sha256.startswith("encoder.jit:")
    d = tok.describe()
    assert d["loader"] == "torch.jit.load" and d["temporal_window"] == 17


def test_reduced_precision_on_cpu(folders):
    name = "cosmos-cv4x8x8"
    x = torch.rand(1, 3, 9, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    ref = load(name, folders).reconstruct(x)[0]
    tok = create_tokenizer(name, checkpoint=str(folders[name]), allow_unsafe=True, dtype=torch.bfloat16)
    assert tok.describe()["dtype"] == "bfloat16" and tok.describe()["autocast"] is False
    y = tok.reconstruct(x.to(torch.bfloat16))[0]
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert (y - ref).abs().max() < 0.05
