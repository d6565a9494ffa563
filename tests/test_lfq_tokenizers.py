"""Open-MAGVIT2 and MaskBit entries: specs, upstream file layouts (Lightning EMA / flat .bin) loading strictly,
full-size key layouts, and the LFQ numerics (bit order, sign rule, DCR depth-to-space, adaptive norm, SAME pad).

The full-size key counts and parameter totals below were measured from upstream's own classes (SEED-Voken
b9a17ea ``improved_model.Encoder/Decoder``; maskbit 5ea3d73 ``ConvVQModel``) built on the meta device."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lfq_fixtures import (TINY_MASKBIT_12, TINY_OM2_14, TINY_OM2_F8, TINY_OM2_F16, lightning_checkpoint,
                          open_magvit2_state_dict, random_maskbit, random_open_magvit2, write_maskbit_checkpoint,
                          write_open_magvit2_checkpoint)
from tokbench.cli import main as cli_main
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.models.lfq import lfq_codes, lfq_quantize
from tokbench.models.maskbit import MaskBitConfig, MaskBitTokenizer
from tokbench.models.maskbit.model import Conv2dSame, ResidualBlock
from tokbench.models.open_magvit2 import OpenMagvit2, OpenMagvit2Config, ema_name
from tokbench.models.open_magvit2.model import AdaptiveGroupNorm, depth_to_space
from tokbench.tokenizers.registry import create_tokenizer, get_entry, weights_status

torch.set_num_threads(2)

OM2 = {"open-magvit2-imagenet-256-l": ("TencentARC/Open-MAGVIT2-Tokenizer-256-resolution", "imagenet_256_L.ckpt", 16,
                                       18, "O-MAGVIT2"),
       "open-magvit2-imagenet-128-l": ("TencentARC/Open-MAGVIT2-Tokenizer-128-resolution", "imagenet_128_L.ckpt", 8,
                                       18, "O-MAGVIT2 (F8)"),
       "open-magvit2-pretrain-262144": ("TencentARC/Open-MAGVIT2-Tokenizer-262144-Pretrain", "pretrain256_262144.ckpt",
                                        16, 18, "O-MAGVIT2 (Pretrain)"),
       "open-magvit2-pretrain-16384": ("TencentARC/Open-MAGVIT2-Tokenizer-16384-Pretrain", "pretrain256_16384.ckpt",
                                       16, 14, None)}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _image(side=64, width=None, seed=0, lo=-1.0, hi=1.0, batch=1):
    x = torch.rand(batch, 3, 1, side, width or side, generator=torch.Generator().manual_seed(seed))
    return x * (hi - lo) + lo


# -- registry ---------------------------------------------------------------------------------------------

def test_open_magvit2_specs():
    for name, (repo, file, factor, bits, published) in OM2.items():
        spec = get_entry(name).spec
        assert (spec.family, spec.kind, spec.input_range) == ("open-magvit2", "discrete", (-1.0, 1.0))
        assert spec.spatial_factor == spec.spatial_multiple == factor and not spec.square_only
        assert spec.codebook_size == 2 ** bits and spec.latent_channels == bits
        assert (spec.checkpoint.hub_repo, spec.checkpoint.hub_filename) == (repo, file)
        assert spec.published == published
    assert get_entry("open-magvit2-imagenet-256-l").option_names() == ["from_indices"]


def test_maskbit_specs():
    for bits in (10, 12, 14, 16, 18):
        spec = get_entry(f"maskbit-{bits}bit").spec
        assert (spec.family, spec.kind, spec.input_range) == ("maskbit", "discrete", (0.0, 1.0))
        assert spec.spatial_factor == spec.spatial_multiple == 16 and spec.codebook_size == 2 ** bits
        assert spec.checkpoint.hub_repo == f"markweber/maskbit_tokenizer_{bits}bit"
        assert spec.checkpoint.hub_filename == f"maskbit_tokenizer_{bits}bit.bin"
        assert spec.published == ("MaskBit" if bits == 12 else None)


def test_list_family_filter(capsys):
    assert cli_main(["list", "--family", "open-magvit2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert sorted(r.split()[0] for r in rows) == sorted(OM2)
    assert "O-MAGVIT2 (F8)" in out and "open-magvit2/imagenet_128_L.ckpt" in out and "missing" in out
    assert cli_main(["list", "--family", "maskbit"]) == 0
    assert capsys.readouterr().out.count("maskbit_tokenizer_") == 5


def test_missing_checkpoint_is_one_line_naming_file_and_place():
    for name, file in (("open-magvit2-imagenet-256-l", "open-magvit2/imagenet_256_L.ckpt"),
                       ("maskbit-12bit", "maskbit/maskbit_tokenizer_12bit.bin")):
        with pytest.raises(MissingWeightsError) as err:
            create_tokenizer(name)
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"{name}:") and file in message
        assert weights_status(get_entry(name))["path"].endswith(file)


# -- full-size layouts (meta device) ------------------------------------------------------------------------

def _norm(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def _conv(prefix, cout, cin, k, bias=True):
    return {f"{prefix}.weight": (cout, cin, k, k), **({f"{prefix}.bias": (cout,)} if bias else {})}


def _res(prefix, cin, cout, shortcut_in=None):
    keys = {**_norm(f"{prefix}.norm1", cin), **_conv(f"{prefix}.conv1", cout, cin, 3, bias=False),
            **_norm(f"{prefix}.norm2", cout), **_conv(f"{prefix}.conv2", cout, cout, 3, bias=False)}
    if cin != cout:
        keys[f"{prefix}.nin_shortcut.weight"] = (cout, shortcut_in or cin, 1, 1)
    return keys


def om2_layout(ch, mult, nrb, z) -> dict:
    """Keys and shapes of upstream's improved_model Encoder/Decoder (open-magvit2.md network facts)."""
    k = {"encoder.conv_in.weight": (ch, 3, 3, 3)}
    cin = ch
    for i, m in enumerate(mult):
        for j in range(nrb):
            k.update(_res(f"encoder.down.{i}.block.{j}", cin, ch * m))
            cin = ch * m
        if i < len(mult) - 1:
            k.update(_conv(f"encoder.down.{i}.downsample", cin, cin, 3))
    for j in range(nrb):
        k.update(_res(f"encoder.mid_block.{j}", cin, cin))
    k.update({**_norm("encoder.norm_out", cin), **_conv("encoder.conv_out", z, cin, 1),
              **_conv("decoder.conv_in", cin, z, 3)})
    for j in range(nrb):
        k.update(_res(f"decoder.mid_block.{j}", cin, cin))
    for i in reversed(range(len(mult))):
        for p in ("gamma", "beta"):
            k.update({f"decoder.adaptive.{i}.{p}.weight": (cin, z), f"decoder.adaptive.{i}.{p}.bias": (cin,)})
        for j in range(nrb):
            k.update(_res(f"decoder.up.{i}.block.{j}", cin, ch * mult[i]))
            cin = ch * mult[i]
        if i > 0:
            k.update(_conv(f"decoder.up.{i}.upsample.conv1", 4 * cin, cin, 3))
    k.update({**_norm("decoder.norm_out", cin), **_conv("decoder.conv_out", 3, cin, 3)})
    return k


@pytest.mark.parametrize("mult,z,count,params", [((1, 1, 2, 2, 4), 18, 339, 115_127_829),
                                                 ((1, 2, 2, 4), 18, 283, 112_021_653),
                                                 ((1, 1, 2, 2, 4), 14, 339, None)])
def test_open_magvit2_full_size_layout(mult, z, count, params):
    with torch.device("meta"):
        model = OpenMagvit2(OpenMagvit2Config(ch_mult=mult, z_channels=z))
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(got) == count and got == om2_layout(128, mult, 4, z)
    if params:
        assert sum(math.prod(s) for s in got.values()) == params
    shadows = {ema_name(k) for k in got}
    assert len(shadows) == count  # the EMA names (dots removed) are unambiguous


def maskbit_layout(bits, hid=128, mult=(1, 1, 2, 2, 4), nrb=2) -> dict:
    """Keys and shapes of upstream's ConvVQModel(legacy=False) (maskbit.md architecture facts)."""
    k = {"encoder.conv_in.weight": (hid, 3, 3, 3)}
    m = (1,) + mult
    for i in range(len(mult)):
        cin, cout = hid * m[i], hid * m[i + 1]
        for j in range(nrb):
            k.update(_res(f"encoder.down.{i}.res_blocks.{j}", cin if j == 0 else cout, cout, shortcut_in=cout))
        if i < len(mult) - 1:
            k.update(_conv(f"encoder.down.{i}.down_conv", cout, cout, 3))
    c = hid * mult[-1]
    for j in range(nrb):
        k.update(_res(f"encoder.mid.res_blocks.{j}", c, c))
        k.update(_res(f"decoder.mid.res_blocks.{j}", c, c))
    k.update({**_norm("encoder.norm_out", c), **_conv("encoder.conv_out", bits, c, 1),
              **_conv("decoder.conv_in", c, bits, 3)})
    m = mult + (mult[-1],)
    for u, i in enumerate(reversed(range(len(mult)))):
        cin, cout = hid * m[i + 1], hid * m[i]
        for j in range(nrb):
            k.update(_res(f"decoder.up.{u}.res_blocks.{j}", cin if j == 0 else cout, cout, shortcut_in=cout))
        if i > 0:
            k.update(_conv(f"decoder.up.{u}.upsample_conv", cout, cout, 3))
    k.update({**_norm("decoder.norm_out", hid), **_conv("decoder.conv_out", 3, hid, 3),
              "quantize.bits_to_indices": (bits,), "quantize.codebook": (2 ** bits, bits)})
    return k


@pytest.mark.parametrize("bits,total", [(10, 54_479_255), (12, 54_528_411), (18, 59_228_583)])
def test_maskbit_full_size_layout(bits, total):
    with torch.device("meta"):
        model = MaskBitTokenizer(MaskBitConfig(token_size=bits))
    sd = model.state_dict()
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert len(got) == 177 and got == maskbit_layout(bits)
    assert sum(math.prod(s) for s in got.values()) == total  # parameters + the two quantiser buffers
    assert sd["quantize.bits_to_indices"].dtype == torch.int32 and sd["quantize.codebook"].dtype == torch.float32


# -- upstream file layouts through --checkpoint -----------------------------------------------------------

def test_open_magvit2_full_size_lightning_file_loads(tmp_path):
    """Released f8 size, upstream's Lightning layout (EMA shadows share storage with the training weights so
    the file stays at one copy), through create_tokenizer(checkpoint=...)."""
    cfg = OpenMagvit2Config(ch_mult=(1, 2, 2, 4))
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in OpenMagvit2(cfg).state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    train = {k: torch.randn(s, generator=gen) * 0.02 for k, s in shapes.items()}
    state = dict(train, **{ema_name(k): v for k, v in train.items()})
    state.update({"model_ema.decay": torch.tensor(0.999), "model_ema.num_updates": torch.tensor(-1, dtype=torch.int32),
                  "loss.discriminator.blocks.0.conv1.weight": torch.randn(8, 3, 3, 3)})
    path = tmp_path / "imagenet_128_L.ckpt"
    torch.save(lightning_checkpoint(state, cfg), path)
    tok = create_tokenizer("open-magvit2-imagenet-128-l", checkpoint=str(path))
    d = tok.describe()
    assert d["weights_used"] == "ema" and d["dropped_training_keys"] == 3 and d["superseded_training_weights"] == 283
    assert "size_deviations" not in d and d["model_config"]["ch_mult"] == [1, 2, 2, 4]
    assert torch.equal(tok.model.decoder.conv_out.weight, train["decoder.conv_out.weight"])
    enc = tok.encode(_image(32))
    assert enc.indices.shape == (1, 1, 4, 4) and enc.bits.item() == 16 * 18


def test_maskbit_full_size_bin_loads(tmp_path):
    cfg = MaskBitConfig(token_size=12)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = MaskBitTokenizer(cfg).state_dict()
    path = tmp_path / "maskbit_tokenizer_12bit.bin"
    torch.save(state, path)
    tok = create_tokenizer("maskbit-12bit", checkpoint=str(path))
    assert "size_deviations" not in tok.describe()
    assert torch.equal(tok.model.encoder.conv_out.weight, state["encoder.conv_out.weight"])
    enc = tok.encode(_image(32, lo=0.0))
    assert enc.indices.shape == (1, 1, 2, 2) and enc.bits.item() == 4 * 12


def test_open_magvit2_uses_the_ema_weights(tmp_path):
    path = write_open_magvit2_checkpoint(tmp_path / "tiny.ckpt", TINY_OM2_F16, seed=3)
    with pytest.warns(UserWarning, match="not the released size"):
        tok = create_tokenizer("open-magvit2-imagenet-256-l", checkpoint=str(path))
    train, ema = random_open_magvit2(TINY_OM2_F16, 3), random_open_magvit2(TINY_OM2_F16, 1003)
    x = _image(64, seed=1)
    y = tok.reconstruct(x)[0][:, :, 0]
    with torch.no_grad():
        want = ema.decode(ema.encode(x[:, :, 0])[0]).clamp(-1, 1)
        not_want = train.decode(train.encode(x[:, :, 0])[0]).clamp(-1, 1)
    assert torch.equal(y, want) and (y - not_want).abs().max() > 1e-2
    d = tok.describe()
    assert d["weights_used"] == "ema" and d["dropped_training_keys"] == 2 + 3 + 2
    assert d["superseded_training_weights"] == len(train.state_dict())
    assert d["decode_path"].startswith("straight-through")


def test_open_magvit2_bare_and_model_nested_state_dicts_load_as_is(tmp_path):
    model = random_open_magvit2(TINY_OM2_F8, seed=5)
    x = _image(64, seed=2)
    with torch.no_grad():
        want = model.decode(model.encode(x[:, :, 0])[0]).clamp(-1, 1)
    for name, obj in (("bare.pt", model.state_dict()), ("nested.pt", {"model": model.state_dict()})):
        torch.save(obj, tmp_path / name)
        with pytest.warns(UserWarning):
            tok = create_tokenizer("open-magvit2-imagenet-128-l", checkpoint=str(tmp_path / name))
        assert tok.describe()["weights_used"] == "raw"
        assert torch.equal(tok.reconstruct(x)[0][:, :, 0], want)


def test_open_magvit2_strict_errors_name_keys_and_file(tmp_path):
    train, ema = random_open_magvit2(TINY_OM2_F16, 0), random_open_magvit2(TINY_OM2_F16, 1)
    state = open_magvit2_state_dict(train, ema)
    cases = {
        "missing-ema": ({k: v for k, v in state.items() if k != ema_name("decoder.conv_out.bias")},
                        "model_ema.decoderconv_outbias"),
        "stray-ema": ({**state, "model_ema.encoderextraweight": torch.zeros(1)}, "model_ema.encoderextraweight"),
        "unexpected": ({**state, "encoder.extra.weight": torch.zeros(1)}, "encoder.extra.weight"),
        "shape": ({**state, ema_name("decoder.conv_in.bias"): torch.zeros(7)}, "decoder.conv_in.bias"),
    }
    for label, (bad, key) in cases.items():
        path = tmp_path / f"{label}.ckpt"
        torch.save({"state_dict": bad}, path)
        with pytest.raises(BadInputError) as err:
            create_tokenizer("open-magvit2-imagenet-256-l", checkpoint=str(path))
        message = str(err.value)
        assert "\n" not in message and str(path) in message and key in message, (label, message)
    # a 14-bit file is not the 18-bit entry, nor an f8 file the f16 one
    for cfg, entry, said in ((TINY_OM2_14, "open-magvit2-imagenet-256-l", "z_channels=14 (expected 18)"),
                             (TINY_OM2_F8, "open-magvit2-imagenet-256-l", "levels=4 (expected 5)")):
        path = write_open_magvit2_checkpoint(tmp_path / "other.ckpt", cfg)
        with pytest.raises(BadInputError, match=r"\(expected"):
            create_tokenizer(entry, checkpoint=str(path))
        with pytest.raises(BadInputError) as err:
            create_tokenizer(entry, checkpoint=str(path))
        assert said in str(err.value)


def test_maskbit_strict_errors(tmp_path):
    state = random_maskbit(TINY_MASKBIT_12).state_dict()
    bad_codes = dict(state, **{"quantize.bits_to_indices": state["quantize.bits_to_indices"].flip(0)})
    for label, bad, needle in (("missing", {k: v for k, v in state.items() if k != "decoder.conv_out.bias"},
                                "decoder.conv_out.bias"),
                               ("extra", dict(state, **{"discriminator.w": torch.zeros(1)}), "discriminator.w"),
                               ("order", bad_codes, "quantize.bits_to_indices")):
        path = tmp_path / f"{label}.bin"
        torch.save(bad, path)
        with pytest.raises(BadInputError) as err:
            create_tokenizer("maskbit-12bit", checkpoint=str(path))
        assert needle in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    path = write_maskbit_checkpoint(tmp_path / "t.bin")
    with pytest.raises(BadInputError, match=r"token_size=12 \(expected 14\)"):
        create_tokenizer("maskbit-14bit", checkpoint=str(path))


def test_maskbit_tokenizer_round_trip_and_paths(tmp_path):
    path = write_maskbit_checkpoint(tmp_path / "t.bin", seed=4)
    with pytest.warns(UserWarning):
        tok = create_tokenizer("maskbit-12bit", checkpoint=str(path))
    with pytest.warns(UserWarning):
        tok_idx = create_tokenizer("maskbit-12bit:from_indices=true", checkpoint=str(path))
    model = random_maskbit(TINY_MASKBIT_12, seed=4)
    x = _image(64, 96, seed=5, lo=0.0, batch=2)
    y, bits = tok.reconstruct(x)
    with torch.no_grad():
        z, idx = model.encode(x[:, :, 0])
        want = model.decode(z).clamp(0, 1)
    assert torch.equal(y[:, :, 0], want) and y.min() >= 0 and y.max() <= 1
    assert bits.tolist() == [4 * 6 * 12] * 2
    y2 = tok_idx.reconstruct(x)[0]
    assert (y2 - y).abs().max() < 1e-5  # the exact +-1 codes vs the straight-through latent: rounding apart
    assert "indices" in tok_idx.describe()["decode_path"]


# -- numerics ---------------------------------------------------------------------------------------------

def test_lfq_bit_order_and_sign_rule():
    z = torch.tensor([0.5, -0.1, 0.0, 2.0, float("nan")]).view(1, 5, 1, 1)
    st, idx = lfq_quantize(z)
    assert idx.item() == 1 + 8  # channels 0 and 3 positive; 0 and NaN count as negative
    assert torch.equal(lfq_codes(idx, 5)[0, :4, 0, 0], torch.tensor([1.0, -1.0, -1.0, 1.0]))
    all_idx = torch.arange(2 ** 6).view(1, 8, 8)
    st, again = lfq_quantize(lfq_codes(all_idx, 6))
    assert torch.equal(again, all_idx) and torch.equal(st, lfq_codes(all_idx, 6))


def test_depth_to_space_is_dcr_order():
    x = torch.arange(2 * 12 * 2 * 3, dtype=torch.float32).view(2, 12, 2, 3)
    y = depth_to_space(x)
    c = 3
    for di in range(2):
        for dj in range(2):
            assert torch.equal(y[:, :, di::2, dj::2], x[:, (di * 2 + dj) * c:(di * 2 + dj + 1) * c])
    assert not torch.equal(y, F.pixel_shuffle(x, 2))


def test_adaptive_group_norm_uses_unbiased_style_statistics():
    torch.manual_seed(0)
    agn = AdaptiveGroupNorm(4, 32).eval()
    x, style = torch.randn(2, 32, 4, 4), torch.randn(2, 4, 3, 5)
    var = ((style - style.mean((2, 3), keepdim=True)) ** 2).sum((2, 3)) / (15 - 1)
    scale = agn.gamma((var + 1e-6).sqrt())[..., None, None]
    bias = agn.beta(style.mean((2, 3)))[..., None, None]
    want = scale * F.group_norm(x, 32, eps=1e-6) + bias
    assert torch.allclose(agn(x, style), want, atol=1e-5)


def test_open_magvit2_needs_two_latent_positions(tmp_path):
    path = write_open_magvit2_checkpoint(tmp_path / "t.ckpt", TINY_OM2_F16)
    with pytest.warns(UserWarning):
        tok = create_tokenizer("open-magvit2-imagenet-256-l", checkpoint=str(path))
    with pytest.raises(BadInputError, match="1x1 latent"):
        tok.encode(_image(16))
    assert tok.encode(_image(16, 32)).indices.shape == (1, 1, 1, 2)


def test_maskbit_same_padding_and_output_shortcut():
    conv = Conv2dSame(2, 2, 3, stride=2)
    x = torch.randn(1, 2, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, conv.bias, stride=2))
    block = ResidualBlock(32, 64).eval()
    x = torch.randn(1, 32, 4, 4)
    h = block.conv2(F.silu(block.norm2(block.conv1(F.silu(block.norm1(x))))))
    assert torch.allclose(block(x), h + block.nin_shortcut(h))
