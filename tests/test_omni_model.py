"""OmniTokenizer architecture against its specification (shared/reference/omnitokenizer.md): the published
state_dict layout, shapes, the frame/side rules, and each documented quirk checked against an explicit
computation written here from the spec text."""
from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch
import torch.nn.functional as F

from omni_fixtures import TINY_VAE, TINY_VQ, random_omni_model
from tokbench.models.omnitokenizer import OmniTokenizer, OmniTokenizerConfig
from tokbench.models.omnitokenizer.layers import (PEG, Attention, ContinuousPositionBias, GEGLU, WindowAttention,
                                                  apply_rope_2d, rope_2d_frequencies)

torch.set_num_threads(2)


# -- published state_dict layout (§7), written out from the spec, not from the model ---------------------

def _ln(prefix, d):
    return {f"{prefix}.weight": (d,), f"{prefix}.bias": (d,)}


def _custom_ln(prefix, d=512):
    return {f"{prefix}.gamma": (d,), f"{prefix}.beta": (d,)}


def _rel_mlp(prefix):
    return {f"{prefix}.net.0.0.weight": (512, 2), f"{prefix}.net.0.0.bias": (512,),
            f"{prefix}.net.1.0.weight": (512, 512), f"{prefix}.net.1.0.bias": (512,),
            f"{prefix}.net.2.weight": (8, 512), f"{prefix}.net.2.bias": (8,)}


def _t_block(prefix, rel):
    keys = {f"{prefix}.0.dsconv.weight": (512, 1, 3, 3, 3), f"{prefix}.0.dsconv.bias": (512,)}
    a = f"{prefix}.1"
    keys.update(_custom_ln(f"{a}.norm"))
    keys.update(_custom_ln(f"{a}.context_norm"))
    keys.update({f"{a}.to_q.weight": (512, 512), f"{a}.to_kv.weight": (1024, 512), f"{a}.q_scale": (64,),
                 f"{a}.k_scale": (64,), f"{a}.to_out.weight": (512, 512)})
    if rel:
        keys.update(_rel_mlp(f"{a}.spatial_rel_pos_bias"))
    keys.update(_ff(f"{prefix}.3"))
    return keys


def _w_block(prefix):
    a = f"{prefix}.1"
    keys = _custom_ln(f"{a}.norm")
    keys.update({f"{a}.relative_position_bias_table": (225, 8), f"{a}.relative_position_index": (64, 64),
                 f"{a}.qkv.weight": (1536, 512), f"{a}.proj.weight": (512, 512), f"{a}.proj.bias": (512,)})
    keys.update(_ff(f"{prefix}.3"))
    return keys


def _ff(prefix):
    return {**_ln(f"{prefix}.0", 512), f"{prefix}.1.weight": (2730, 512), f"{prefix}.4.weight": (512, 1365)}


def published_layout(vae: bool, pt: int, rel: bool) -> dict[str, tuple]:
    patch = 3 * pt * 64
    keys = {}
    keys.update(_ln("encoder.to_patch_emb_first_frame.1", 192))
    keys.update({"encoder.to_patch_emb_first_frame.2.weight": (512, 192),
                 "encoder.to_patch_emb_first_frame.2.bias": (512,)})
    keys.update(_ln("encoder.to_patch_emb_first_frame.3", 512))
    keys.update(_ln("encoder.to_patch_emb.1", patch))
    keys.update({"encoder.to_patch_emb.2.weight": (512, patch), "encoder.to_patch_emb.2.bias": (512,)})
    keys.update(_ln("encoder.to_patch_emb.3", 512))
    for i in (0, 1):
        keys.update(_t_block(f"encoder.enc_spatial_transformer.layers.{i}", rel))
    for i in (2, 3):
        keys.update(_w_block(f"encoder.enc_spatial_transformer.layers.{i}"))
    keys.update(_custom_ln("encoder.enc_spatial_transformer.norm_out"))
    for stack in ("encoder.enc_temporal_transformer", "decoder.dec_temporal_transformer"):
        for i in range(4):
            keys.update(_t_block(f"{stack}.layers.{i}", rel=True))  # temporal stacks own unused rel MLPs
        keys.update(_custom_ln(f"{stack}.norm_out"))
    for i in range(4):
        keys.update(_t_block(f"decoder.dec_spatial_transformer.layers.{i}", rel))
    keys.update(_custom_ln("decoder.dec_spatial_transformer.norm_out"))
    keys.update({"decoder.to_pixels_first_frame.0.weight": (192, 512), "decoder.to_pixels_first_frame.0.bias": (192,),
                 "decoder.to_pixels.0.weight": (patch, 512), "decoder.to_pixels.0.bias": (patch,)})
    keys.update({"pre_vq_conv.1.weight": (16 if vae else 8, 512), "pre_vq_conv.1.bias": (16 if vae else 8,),
                 "post_vq_conv.1.weight": (512, 8), "post_vq_conv.1.bias": (512,)})
    keys.update({"codebook.embeddings": (8192, 8), "codebook.N": (8192,), "codebook.z_avg": (8192, 8),
                 "codebook.codebook_usage": (8192,)})
    return keys


@pytest.mark.parametrize("vae,pt,spatial_pos", [(False, 4, "rope"), (True, 4, "rope"), (False, 2, "rel")])
def test_state_dict_matches_published_layout(vae, pt, spatial_pos):
    cfg = OmniTokenizerConfig(use_vae=vae, temporal_patch_size=pt, spatial_pos=spatial_pos)
    with torch.device("meta"):
        model = OmniTokenizer(cfg)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = published_layout(vae, pt, spatial_pos == "rel")
    assert sorted(set(want) - set(got)) == []
    assert sorted(set(got) - set(want)) == []
    assert {k: s for k, s in got.items() if want[k] != s} == {}
    # the zero LayerNorm bias and the window index are buffers (state_dict, not parameters)
    params = dict(model.named_parameters())
    assert "encoder.enc_spatial_transformer.norm_out.beta" not in params
    assert "encoder.enc_spatial_transformer.layers.2.1.relative_position_index" not in params
    assert "encoder.enc_spatial_transformer.norm_out.gamma" in params


def test_real_size_video_shapes_17x256():
    """Released size, 17 x 256 x 256 -> 5 x 32 x 32 tokens and back (shape propagation on the meta
    device: the real-size float run takes ~25 s on 2 CPU cores, see the image test for real numbers)."""
    with torch.device("meta"):
        vq, vae = OmniTokenizer(), OmniTokenizer(OmniTokenizerConfig(use_vae=True))
        x = torch.empty(2, 3, 17, 256, 256)
        idx = vq.encode_indices(x)
        assert idx.shape == (2, 5, 32, 32) and idx.dtype == torch.int64
        assert vq.decode_indices(idx).shape == (2, 3, 17, 256, 256)
        z = vae.encode_latents(x)
        assert z.shape == (2, 8, 5, 32, 32)
        assert vae.decode_latents(z).shape == (2, 3, 17, 256, 256)
        stage1 = OmniTokenizer(OmniTokenizerConfig(temporal_patch_size=2, spatial_pos="rel", attn_impl="einsum"))
        assert stage1.encode_indices(torch.empty(1, 3, 17, 256, 256)).shape == (1, 9, 32, 32)


def test_real_size_image_reconstruction_runs():
    """Released size with random weights on a real 256 x 256 image: 1 x 32 x 32 indices, finite output."""
    torch.manual_seed(0)
    model = OmniTokenizer().eval()
    x = torch.rand(1, 3, 1, 256, 256) - 0.5
    with torch.inference_mode():
        idx = model.encode_indices(x)
        y = model.decode_indices(idx)
    assert idx.shape == (1, 1, 32, 32) and 0 <= idx.min() and idx.max() < 8192
    assert y.shape == (1, 3, 1, 256, 256) and torch.isfinite(y).all()


def test_tiny_video_17x256_through_both_bottlenecks():
    x = torch.rand(1, 3, 17, 256, 256, generator=torch.Generator().manual_seed(1)) - 0.5
    vq, vae = random_omni_model(TINY_VQ), random_omni_model(TINY_VAE)
    with torch.inference_mode():
        idx = vq.encode_indices(x)
        assert idx.shape == (1, 5, 32, 32) and idx.dtype == torch.int64
        assert vq.decode_indices(idx).shape == x.shape
        clip = x[:, :, :9, :64, :64]
        mean = vae.encode_latents(clip)
        assert mean.shape == (1, 4, 3, 8, 8)
        assert vae.decode_latents(mean).shape == clip.shape
        img = x[:, :, :1, :64, :64]
        assert vq.encode_indices(img).shape == (1, 1, 8, 8)
        assert vq.encode_indices(img[:, :, 0]).shape == (1, 1, 8, 8)  # 4-D images get T = 1


def _unscrambled_peg_forward(peg):
    """The "TO FIX" version upstream did not ship: read (b h w) t d tokens in their true order."""

    def forward(x, video_shape):
        b, t, h, w = video_shape
        grid = x.reshape(b, h, w, t, -1).permute(0, 3, 1, 2, 4).reshape(b * t, h * w, -1)
        out = PEG.forward(peg, grid, video_shape)
        return out.reshape(b, t, h, w, -1).permute(0, 2, 3, 1, 4).reshape(x.shape)

    return forward


def test_first_frame_path_and_the_peg_scramble_breaking_causality():
    """An image is frame 0 through the first-frame patch embedding. With the temporal PEG read in true
    order, frame 0 of a video would encode exactly like the image alone (causal attention, causal PEG
    padding); the shipped scrambled PEG lets later frames leak into frame 0's tokens, so they differ."""
    model = random_omni_model(TINY_VQ)
    x = torch.rand(1, 3, 5, 64, 64, generator=torch.Generator().manual_seed(2)) - 0.5
    with torch.inference_mode():
        image = model.encoder(x[:, :, :1])
        shipped_first = model.encoder(x)[:, :, :1]
        for layer in model.encoder.enc_temporal_transformer.layers:
            layer[0].forward = _unscrambled_peg_forward(layer[0])
        fixed_first = model.encoder(x)[:, :, :1]
        fixed_image = model.encoder(x[:, :, :1])
    torch.testing.assert_close(fixed_image, image)  # T' = 1: both views coincide
    torch.testing.assert_close(fixed_first, image, rtol=1e-5, atol=1e-5)
    assert (shipped_first - image).abs().max() > 1e-2


def test_vq_indices_and_vae_mean_are_deterministic_and_sampling_is_seeded():
    x = torch.rand(2, 3, 5, 64, 64, generator=torch.Generator().manual_seed(3)) - 0.5
    vq, vae = random_omni_model(TINY_VQ), random_omni_model(TINY_VAE)
    with torch.inference_mode():
        assert torch.equal(vq.encode_indices(x), vq.encode_indices(x))
        assert torch.equal(vae.encode_latents(x), vae.encode_latents(x))
        mean, logvar = vae.encode_posterior(x)
        s1 = vae.encode_latents(x, sample=True, generator=torch.Generator().manual_seed(7))
        s2 = vae.encode_latents(x, sample=True, generator=torch.Generator().manual_seed(7))
        s3 = vae.encode_latents(x, sample=True, generator=torch.Generator().manual_seed(8))
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    noise = (s1 - mean) / torch.exp(0.5 * logvar)
    assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1) < 0.1  # mean + std * N(0, 1)
    assert torch.equal(mean, vae.encode_latents(x))


def test_vq_lookup_is_squared_l2_to_unnormalised_codes():
    """l2-normalised encoder vectors, nearest code by squared Euclidean distance, codes used as stored."""
    model = random_omni_model(TINY_VQ)
    with torch.no_grad():
        model.codebook.embeddings.mul_(torch.linspace(0.5, 2.0, 64)[:, None])  # codes of unequal norms
    x = torch.rand(1, 3, 1, 64, 64, generator=torch.Generator().manual_seed(4)) - 0.5
    with torch.inference_mode():
        z = F.normalize(model.encode_moments(x), dim=1)
        want = torch.cdist(z.movedim(1, -1).reshape(-1, 4), model.codebook.embeddings).argmin(1)
        got = model.encode_indices(x).reshape(-1)
    assert torch.equal(got, want)


def test_frame_and_side_rules():
    model = random_omni_model(TINY_VQ)
    for shape, words in [((1, 3, 4, 64, 64), "1 + k * 4"), ((1, 3, 1, 64, 128), "square"),
                         ((1, 3, 1, 96, 96), "multiples of 64"), ((1, 1, 1, 64, 64), "channels")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            model.check_input(torch.zeros(shape))
    stage1 = OmniTokenizer(dataclasses.replace(TINY_VQ, temporal_patch_size=2))
    assert stage1.check_input(torch.zeros(1, 3, 3, 64, 64)).shape[2] == 3


# -- quirks, each against an explicit computation ---------------------------------------------------------

def _reference_attention(attn: Attention, x, rope=False, causal=False, alibi=False, rel_bias=None):
    """softmax(8 * (q/|q| * q_scale) . (k/|k| * k_scale) + bias) v, with k, v from the *un-normalised* x."""
    b, n, _ = x.shape
    h, d = attn.heads, attn.dim_head
    q = attn.to_q(F.layer_norm(x, x.shape[-1:], attn.norm.gamma, attn.norm.beta)).view(b, n, h, d)
    k, v = attn.to_kv(x).view(b, n, 2, h, d).unbind(2)
    if rope:
        q, k = _explicit_rope(q), _explicit_rope(k)
    q = q / q.norm(dim=-1, keepdim=True) * attn.q_scale
    k = k / k.norm(dim=-1, keepdim=True) * attn.k_scale
    logits = 8.0 * torch.einsum("bihd,bjhd->bhij", q, k)
    if rel_bias is not None:
        logits = logits + rel_bias
    if alibi:
        slopes = torch.tensor([2.0 ** -(8 * (i + 1) / h) for i in range(h)])  # ALiBi, h a power of two
        pos = torch.arange(n)
        logits = logits - slopes[:, None, None] * (pos[None, :, None] - pos[None, None, :]).abs()
    if causal:
        logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    out = torch.einsum("bhij,bjhd->bihd", logits.softmax(-1), v).reshape(b, n, h * d)
    return attn.to_out(out)


def _explicit_rope(t):
    """§4.6 spelled out: complex slot m is the real pair (2m, 2m+1), rotated by x (even m) or y (odd m)
    times frequency 10000^(-4 floor(m/2) / d), token i at column i % side, row i // side."""
    b, n, h, d = t.shape
    side = int(math.isqrt(n))
    out = torch.empty_like(t)
    freqs = [10000.0 ** (-(4 * i) / d) for i in range(d // 4)]
    for tok in range(n):
        col, row = tok % side, tok // side
        for slot in range(d // 2):
            pos = col if slot % 2 == 0 else row  # slots interleave [x0, y0, x1, y1, ...]
            angle = pos * freqs[slot // 2]
            c, s = math.cos(angle), math.sin(angle)
            a, bb = t[:, tok, :, 2 * slot], t[:, tok, :, 2 * slot + 1]
            out[:, tok, :, 2 * slot] = a * c - bb * s
            out[:, tok, :, 2 * slot + 1] = a * s + bb * c
    return out


def _attention(seed=0, **kw):
    torch.manual_seed(seed)
    attn = Attention(32, dim_head=8, heads=4, **kw)
    with torch.no_grad():
        for p in (attn.norm.gamma, attn.q_scale, attn.k_scale):
            p.add_(0.2 * torch.randn(p.shape))
        attn.norm.beta.add_(0.1 * torch.randn(attn.norm.beta.shape))  # prove beta is applied
    return attn.eval()


def test_rope_is_2d_interleaved_on_adjacent_pairs():
    q = torch.randn(2, 16, 3, 8)
    k = torch.randn(2, 16, 3, 8)
    rq, rk = apply_rope_2d(q, k, rope_2d_frequencies(8, 16))
    torch.testing.assert_close(rq, _explicit_rope(q), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rk, _explicit_rope(k), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["sdpa", "einsum"])
def test_spatial_rope_attention_matches_reference(impl):
    attn = _attention(spatial_pos="rope", attn_impl=impl)
    x = torch.randn(2, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, is_spatial=True), _reference_attention(attn, x, rope=True),
                                   rtol=1e-4, atol=1e-5)
        # temporal use of the same module: no rope
        torch.testing.assert_close(attn(x, is_spatial=False), _reference_attention(attn, x), rtol=1e-4, atol=1e-5)


def test_causal_attention_sdpa_has_plain_mask_einsum_adds_alibi():
    x = torch.randn(3, 5, 32)
    sdpa = _attention(causal=True, attn_impl="sdpa")
    einsum = _attention(causal=True, attn_impl="einsum")
    with torch.no_grad():
        out_sdpa, out_einsum = sdpa(x, is_spatial=False), einsum(x, is_spatial=False)
        torch.testing.assert_close(out_sdpa, _reference_attention(sdpa, x, causal=True), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out_einsum, _reference_attention(einsum, x, causal=True, alibi=True),
                                   rtol=1e-4, atol=1e-5)
    assert (out_sdpa - out_einsum).abs().max() > 1e-3  # ALiBi is the only difference, and it matters
    torch.testing.assert_close(out_sdpa[:, 0], out_einsum[:, 0])  # first position: nothing to bias


def test_rel_position_bias_only_on_the_einsum_path():
    x = torch.randn(2, 16, 32)
    sdpa = _attention(spatial_pos="rel", attn_impl="sdpa")
    einsum = _attention(spatial_pos="rel", attn_impl="einsum")
    # the bias written out: MLP over sign(d) * log(|d| + 1) of (dy, dx) on the 4x4 grid
    coords = torch.tensor([(i // 4, i % 4) for i in range(16)], dtype=torch.float32)
    delta = coords[:, None, :] - coords[None, :, :]
    feats = torch.sign(delta) * torch.log(delta.abs() + 1)
    net = einsum.spatial_rel_pos_bias.net
    hidden = F.leaky_relu(net[0][0](feats), 0.1)
    hidden = F.leaky_relu(net[1][0](hidden), 0.1)
    bias = net[2](hidden).permute(2, 0, 1)
    with torch.no_grad():
        torch.testing.assert_close(einsum.spatial_rel_pos_bias(4, 4), bias)
        torch.testing.assert_close(sdpa(x), _reference_attention(sdpa, x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(einsum(x), _reference_attention(einsum, x, rel_bias=bias), rtol=1e-4, atol=1e-5)


def test_window_attention_matches_per_window_reference():
    torch.manual_seed(0)
    wa = WindowAttention(32, window_size=2, num_heads=4).eval()
    with torch.no_grad():
        wa.relative_position_bias_table.normal_()
        wa.norm.gamma.add_(0.2 * torch.randn(32))
    x = torch.randn(2, 16, 32)  # 4x4 grid, four 2x2 windows
    want = torch.empty_like(x)
    xn = F.layer_norm(x, (32,), wa.norm.gamma, wa.norm.beta)
    with torch.no_grad():
        for b in range(2):
            for wy in range(2):
                for wx in range(2):
                    toks = [(2 * wy + dy) * 4 + (2 * wx + dx) for dy in range(2) for dx in range(2)]
                    q, k, v = wa.qkv(xn[b, toks]).view(4, 3, 4, 8).unbind(1)  # token, head, dim
                    logits = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(8)
                    for i, ti in enumerate(toks):
                        for j, tj in enumerate(toks):
                            dy = ti // 4 - tj // 4 + 1
                            dx = ti % 4 - tj % 4 + 1
                            logits[:, i, j] += wa.relative_position_bias_table[dy * 3 + dx]
                    out = torch.einsum("hij,jhd->ihd", logits.softmax(-1), v).reshape(4, 32)
                    want[b, toks] = wa.proj(out)
        torch.testing.assert_close(wa(x), want, rtol=1e-4, atol=1e-5)


def test_peg_temporal_stack_uses_the_plain_reshape():
    """Temporal stacks hold tokens as (b h w) t d, and the PEG reshapes that memory to (B, T, H, W, D)
    as if it were (b t h w) d — the scrambled view the checkpoints were trained with."""
    torch.manual_seed(0)
    peg = PEG(6, causal=True)
    B, T, H, W, D = 2, 3, 4, 4, 6
    x = torch.randn(B * H * W, T, D)
    with torch.no_grad():
        got = peg(x, (B, T, H, W))
        grid = x.reshape(B, T, H, W, D).permute(0, 4, 1, 2, 3)
        grid = F.pad(grid, (1, 1, 1, 1, 2, 0))
        want = F.conv3d(grid, peg.dsconv.weight, peg.dsconv.bias, groups=D).permute(0, 2, 3, 4, 1).reshape(x.shape)
        torch.testing.assert_close(got, want)
        # the "fixed" view (true (b, t, h, w) order) gives something else: the quirk is real
        true_grid = x.reshape(B, H, W, T, D).permute(0, 3, 1, 2, 4)
        fixed = peg(true_grid.reshape(B * T, H * W, D), (B, T, H, W))
        fixed = fixed.reshape(B, T, H, W, D).permute(0, 2, 3, 1, 4).reshape(x.shape)
        assert (fixed - got).abs().max() > 1e-3
        # each sample keeps to its own block: batch of two == two batches of one
        one = peg(x[: H * W], (1, T, H, W))
        torch.testing.assert_close(got[: H * W], one)
        # non-causal padding is symmetric in time
        peg.causal = False
        sym = F.pad(x.reshape(B, T, H, W, D).permute(0, 4, 1, 2, 3), (1, 1, 1, 1, 1, 1))
        want_sym = F.conv3d(sym, peg.dsconv.weight, peg.dsconv.bias, groups=D).permute(0, 2, 3, 4, 1)
        torch.testing.assert_close(peg(x, (B, T, H, W)), want_sym.reshape(x.shape))


def test_geglu_value_first_gate_second_exact_gelu():
    x = torch.randn(5, 10)
    value, gate = x[:, :5], x[:, 5:]
    want = value * 0.5 * gate * (1 + torch.erf(gate / math.sqrt(2)))
    torch.testing.assert_close(GEGLU()(x), want)


def test_continuous_position_bias_shape():
    cpb = ContinuousPositionBias(dim=16, heads=4)
    assert cpb(3, 3).shape == (4, 9, 9)


def test_attention_paths_on_a_whole_tiny_model():
    """rope files: the two paths agree for images (T' = 1, nothing for ALiBi to bias) and differ for
    video (ALiBi in the causal temporal stacks). rel files: they differ already for images."""
    model = random_omni_model(TINY_VQ)
    image = torch.rand(1, 3, 1, 64, 64, generator=torch.Generator().manual_seed(5)) - 0.5
    video = torch.rand(1, 3, 9, 64, 64, generator=torch.Generator().manual_seed(6)) - 0.5
    with torch.inference_mode():
        zi_sdpa, zv_sdpa = model.encoder(image), model.encoder(video)
        model.set_attn_impl("einsum")
        assert model.config.attn_impl == "einsum"
        zi_einsum, zv_einsum = model.encoder(image), model.encoder(video)
    torch.testing.assert_close(zi_sdpa, zi_einsum, rtol=1e-4, atol=1e-4)
    assert (zv_sdpa - zv_einsum).abs().max() > 1e-3
    rel = random_omni_model(dataclasses.replace(TINY_VQ, spatial_pos="rel"))
    with torch.inference_mode():
        a = rel.encoder(image)
        rel.set_attn_impl("einsum")
        b = rel.encoder(image)
    assert (a - b).abs().max() > 1e-3
