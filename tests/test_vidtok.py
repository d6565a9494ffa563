"""VidTok through diffusers' AutoencoderVidTok: registry entries, strict conversion of upstream's Lightning
checkpoints (full-size keys against upstream's, tiny random files through ``--checkpoint``) and numerics against
diffusers' own ``forward``. The tiny end-to-end run on the video suite is in test_families_run.py.

tests/data/vidtok_upstream.keys holds the state_dict keys and shapes of upstream's encoder / decoder / regularizer
for every released config (microsoft/VidTok HEAD d6ad92d, built on the meta device from configs/*.yaml).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

import diffusers  # noqa: E402

from tiny_models import isolate_caches, make_tiny_vidtok  # noqa: E402
from tokbench.errors import BadInputError, MissingWeightsError  # noqa: E402
from tokbench.models.vidtok import RELEASES, convert_state_dict, empty_model  # noqa: E402
from tokbench.tokenizers.registry import create_tokenizer, get_entry, list_tokenizers, weights_status  # noqa: E402
from tokbench.weights import weights_dir  # noqa: E402

KEYS = Path(__file__).parent / "data" / "vidtok_upstream.keys"
TINY_CH = 8
REGISTERED = sorted(n for n, r in RELEASES.items() if r.runs_as_upstream)


@pytest.fixture(autouse=True)
def _caches(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path / "caches")


def upstream_keys() -> dict[str, dict[str, tuple]]:
    """release file stem -> {key: shape} from tests/data/vidtok_upstream.keys."""
    releases, sets, current = {}, {}, None
    for line in KEYS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("@release "):
            _, name, set_id = line.split()
            releases[name] = set_id
        elif line.startswith("@set "):
            parts = line.split()
            current = dict(sets[parts[2]]) if len(parts) == 3 else {}
            sets[parts[1]] = current
        else:
            sign = line[0] if line[0] in "+-" else ""
            key, shape = line[len(sign):].split()
            if sign == "-":  # a key removed from the base, or its base shape replaced by a '+' line
                if current.get(key) == (() if shape == "-" else tuple(int(v) for v in shape.split("x"))):
                    del current[key]
            else:
                current[key] = () if shape == "-" else tuple(int(s) for s in shape.split("x"))
    return {name: sets[s] for name, s in releases.items()}


def tiny_checkpoint(name: str, path: Path, **kwargs) -> Path:
    return make_tiny_vidtok(name, path, ch=TINY_CH, **kwargs)


def clip(spec, t: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, t, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---------------------------------------------------------------- registry


def test_entries_and_their_specs():
    names = [n for n in list_tokenizers() if get_entry(n).spec.family == "vidtok"]
    assert sorted(names) == REGISTERED and len(names) == 13  # 7 v1.1 causal + 6 non-causal
    assert not any(n for n, r in RELEASES.items() if r.causal and not r.v1_1 and n in names)
    for n in names:
        spec, rel = get_entry(n).spec, RELEASES[n]
        assert spec.input_range == (-1.0, 1.0) and spec.published is None
        assert spec.checkpoint.hub_repo == "microsoft/VidTok" and spec.checkpoint.hub_filename == rel.hub_filename
        assert spec.checkpoint.filename == f"vidtok/{rel.file}.ckpt"
        assert spec.causal_first_frame == rel.causal
        assert spec.default_clip_frames == (17 if rel.causal else 16) and spec.valid_frames(spec.default_clip_frames)
        assert spec.kind == ("discrete" if rel.regularizer == "fsq" else "continuous")
    facts = {n: (get_entry(n).spec.temporal_factor, get_entry(n).spec.spatial_factor,
                 get_entry(n).spec.latent_channels, get_entry(n).spec.codebook_size) for n in names}
    assert facts["vidtok-kl-causal-488-4chn-v1.1"] == (4, 8, 4, None)
    assert facts["vidtok-kl-causal-288-8chn-v1.1"] == (2, 8, 8, None)
    assert facts["vidtok-kl-causal-41616-16chn-v1.1"] == (4, 16, 16, None)
    assert facts["vidtok-fsq-causal-888-32768-v1.1"] == (8, 8, 5, 32768)
    assert facts["vidtok-fsq-noncausal-41616-262144"] == (4, 16, 6, 262144)
    assert get_entry("vidtok-kl-noncausal-488-4chn").spec.modalities == frozenset({"video"})
    assert RELEASES["vidtok-fsq-causal-488-4096"].hub_filename == "checkpoints/vidtok_fsq_causal_488_4096.ckpt"
    assert RELEASES["vidtok-fsq-causal-488-32768-v1.1"].hub_filename == \
        "checkpoints/vidtok_v1_1/vidtok_fsq_causal_488_32768_v1_1.ckpt"


def test_list_shows_weights_status_and_location(capsys):
    from tokbench.cli import main as cli_main

    name = "vidtok-kl-causal-488-4chn-v1.1"
    want = weights_dir() / "vidtok" / "vidtok_kl_causal_488_4chn_v1_1.ckpt"
    assert weights_status(get_entry(name)) == {"weights": "missing", "path": str(want)}
    assert cli_main(["list", "--family", "vidtok"]) == 0
    lines = [s for s in capsys.readouterr().out.splitlines() if s.startswith("vidtok-")]
    assert len(lines) == 13
    line = next(s for s in lines if s.startswith(name + " "))
    assert "missing" in line and str(want) in line and "4x8x8" in line and "1+4k" in line
    tiny_checkpoint(name, want)
    assert weights_status(get_entry(name)) == {"weights": "present", "path": str(want)}
    with pytest.warns(UserWarning, match="base width 8"):
        tok = create_tokenizer(name)  # found in <weights dir>/vidtok/ without --checkpoint
    assert tok.checkpoint_path == str(want) and len(tok.checkpoint_sha256) == 64


def test_missing_file_is_one_line():
    name = "vidtok-fsq-causal-488-32768-v1.1"
    with pytest.raises(MissingWeightsError) as err:
        create_tokenizer(name)
    msg = str(err.value)
    assert "\n" not in msg and "hf://microsoft/VidTok/checkpoints/vidtok_v1_1/vidtok_fsq_causal_488_32768_v1_1.ckpt" in msg
    assert str(weights_dir() / "vidtok" / "vidtok_fsq_causal_488_32768_v1_1.ckpt") in msg
    with pytest.raises(MissingWeightsError, match="does not exist"):
        create_tokenizer(name, checkpoint="/nonexistent/vidtok.ckpt")


# ---------------------------------------------------------------- conversion, full size


def test_conversion_of_upstream_full_size_keys_gives_diffusers_keys_exactly():
    """For every released config (the v1.0 causal ones too): upstream's keys and shapes, plus the training state
    a Lightning file carries, converted, equal AutoencoderVidTok(config)'s keys and shapes on the meta device."""
    upstream = upstream_keys()
    assert sorted(upstream) == sorted(r.file for r in RELEASES.values()) and len(upstream) == 23
    counts = {}
    for name, rel in RELEASES.items():
        keys = upstream[rel.file]
        file = {k: torch.empty(s, device="meta") for k, s in keys.items()}
        file.update({"loss.logvar": torch.empty((), device="meta"),
                     "loss.perceptual_loss.net.slice1.0.weight": torch.empty(64, 3, 3, 3, device="meta")})
        converted = {k: tuple(v.shape) for k, v in convert_state_dict({"state_dict": file}).items()}
        model = {k: tuple(v.shape) for k, v in empty_model(rel.diffusers_config()).state_dict().items()}
        assert converted == model, name
        counts[name] = len(model)
    assert counts["vidtok-kl-causal-488-4chn-v1.1"] == 416 and counts["vidtok-kl-causal-288-8chn-v1.1"] == 410
    assert counts["vidtok-fsq-causal-41616-262144-v1.1"] == 500 and counts["vidtok-fsq-causal-888-32768-v1.1"] == 422
    assert counts["vidtok-kl-causal-444-4chn"] == 412
    shapes = upstream["vidtok_kl_causal_488_16chn_v1_1"]
    assert shapes["encoder.conv_out.conv.weight"] == (32, 512, 3, 3, 3)  # double_z: 2 x 16 channels
    assert upstream["vidtok_fsq_noncausal_488_262144"]["decoder.conv_in.weight"] == (512, 6, 3, 3, 3)


# ---------------------------------------------------------------- tiny upstream-layout files through --checkpoint


@pytest.mark.parametrize("name", ["vidtok-kl-causal-488-4chn-v1.1", "vidtok-fsq-causal-488-32768-v1.1",
                                  "vidtok-fsq-noncausal-488-262144"])
def test_checkpoint_file_matches_diffusers_forward(name, tmp_path):
    rel = RELEASES[name]
    path = tiny_checkpoint(name, tmp_path / f"{rel.file}.ckpt")
    with pytest.warns(UserWarning, match="base width 8, not the released 128"):
        tok = create_tokenizer(name, checkpoint=str(path))
    spec = tok.spec
    t = 9 if rel.causal else 16
    x = clip(spec, t)
    enc = tok.encode(x)
    y = tok.decode(enc)
    assert y.shape == x.shape and y.dtype == torch.float32
    tl = 1 + (t - 1) // spec.temporal_factor if rel.causal else t // spec.temporal_factor
    assert enc.latents.shape == (2, rel.z_channels, tl, 32 // spec.spatial_factor, 32 // spec.spatial_factor)
    positions = tl * (32 // spec.spatial_factor) ** 2
    if rel.regularizer == "fsq":  # rate: positions x log2(8 ** channels)
        assert enc.indices.shape == (2, tl, 4, 4)
        assert torch.equal(enc.bits, torch.full((2,), positions * 3.0 * rel.z_channels, dtype=torch.float64))
        assert int(enc.indices.max()) < 8 ** rel.z_channels
    else:
        assert torch.equal(enc.bits, torch.full((2,), positions * rel.z_channels * 16.0, dtype=torch.float64))
    # diffusers' own forward() on the same weights (its padding and cropping) gives the same video
    state = torch.load(path, weights_only=True)["state_dict"]
    ref = diffusers.AutoencoderVidTok(**rel.diffusers_config(ch=TINY_CH))
    ref.load_state_dict({k: v for k, v in state.items() if not k.startswith("loss.")})
    with torch.no_grad():
        want = ref.eval()(x, sample_posterior=False).sample
    torch.testing.assert_close(y, want, rtol=0, atol=1e-5)
    d = tok.describe()
    assert d["diffusers_class"] == "AutoencoderVidTok" and d["model_config"]["ch"] == TINY_CH
    assert d["upstream_checkpoint"] == f"hf://microsoft/VidTok/{rel.hub_filename}"


def test_fsq_indices_decode_to_the_same_codes(tmp_path):
    name = "vidtok-fsq-causal-488-32768-v1.1"
    path = tiny_checkpoint(name, tmp_path / "f.ckpt", seed=3)
    with pytest.warns(UserWarning):
        tok = create_tokenizer(name, checkpoint=str(path))
    enc = tok.encode(clip(tok.spec, 5, seed=2))
    with torch.no_grad():
        codes = tok.model.indices_to_latent(enc.indices)
    torch.testing.assert_close(codes, enc.latents, rtol=0, atol=1e-6)  # the indices carry the whole latent
    assert set(torch.unique(enc.latents * 4).tolist()) <= set(range(-4, 4))  # 8 levels per channel
    one = clip(tok.spec, 1, seed=4)  # an image: one causal frame, one latent frame
    e1 = tok.encode(one)
    assert e1.indices.shape == (2, 1, 4, 4) and tok.decode(e1).shape == one.shape


def test_strict_conversion_errors_are_one_line(tmp_path):
    name = "vidtok-kl-causal-488-4chn-v1.1"
    extra = tiny_checkpoint(name, tmp_path / "extra.ckpt", extra={"quant_conv.weight": torch.zeros(2)})
    with pytest.raises(BadInputError) as err, pytest.warns(UserWarning):
        create_tokenizer(name, checkpoint=str(extra))
    msg = str(err.value)
    assert "\n" not in msg and "quant_conv.weight" in msg and str(extra) in msg and name in msg
    missing = tiny_checkpoint(name, tmp_path / "missing.ckpt", drop="decoder.conv_out.conv.bias")
    with pytest.raises(BadInputError, match=r"1 missing \(decoder.conv_out.conv.bias\)") as err, \
            pytest.warns(UserWarning):
        create_tokenizer(name, checkpoint=str(missing))
    assert "\n" not in str(err.value) and str(missing) in str(err.value)
    other = tiny_checkpoint("vidtok-kl-causal-488-16chn-v1.1", tmp_path / "16chn.ckpt")
    with pytest.raises(BadInputError, match="wrong shape") as err, pytest.warns(UserWarning):
        create_tokenizer(name, checkpoint=str(other))  # a 16-channel file under the 4-channel entry
    assert "\n" not in str(err.value)


def test_sampling_is_seeded_and_kl_only(tmp_path):
    name = "vidtok-kl-noncausal-488-4chn"
    path = tiny_checkpoint(name, tmp_path / "n.ckpt")
    with pytest.warns(UserWarning):
        mean = create_tokenizer(name, checkpoint=str(path))
        s0 = create_tokenizer(f"{name}:sample=true,seed=0", checkpoint=str(path))
    x = clip(mean.spec, 8)  # shorter than 16: padded with the last frame, cropped after decoding
    zm, z0, z0b = mean.encode(x).latents, s0.encode(x).latents, s0.encode(x).latents
    assert zm.shape[2] == 4 and torch.equal(z0, z0b) and (z0 - zm).abs().mean() > 0.01
    assert mean.decode(mean.encode(x)).shape == x.shape
    fsq = tiny_checkpoint("vidtok-fsq-noncausal-488-262144", tmp_path / "q.ckpt")
    with pytest.raises(BadInputError, match="sample=true needs a KL model"), pytest.warns(UserWarning):
        create_tokenizer("vidtok-fsq-noncausal-488-262144:sample=true", checkpoint=str(fsq))
