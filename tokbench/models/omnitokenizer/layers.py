"""OmniTokenizer transformer building blocks (spec: shared/reference/omnitokenizer.md §4).

Attribute names and ``nn.Sequential`` / ``nn.ModuleList`` positions mirror the upstream modules because
they *are* the checkpoint's state_dict keys. Several behaviours look like bugs and are kept on purpose,
since the released weights were trained with them: k/v read the un-normalised input, the PEG reshapes
the temporal token layout as if it were the spatial one, attention uses l2-normalised q/k with a fixed
scale of 8, and the SDPA path silently ignores the relative-position bias and ALiBi.
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

VideoShape = tuple[int, int, int, int]  # (B, T, H, W) of the token grid


class LayerNorm(nn.Module):
    """LayerNorm with a learned gain and a *fixed* zero bias (a buffer, so it is in the state_dict)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


class GEGLU(nn.Module):
    """First half is the value, second half the gate; exact (erf) GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * value


def feed_forward(dim: int, mult: float = 4.0) -> nn.Sequential:
    inner = int(mult * (2 / 3) * dim)  # 1365 for dim 512
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner * 2, bias=False),
        GEGLU(),
        nn.Dropout(0.0),
        nn.Linear(inner, dim, bias=False),
    )


class PEG(nn.Module):
    """Positional encoding generator: depthwise 3x3x3 conv over the (T, H, W) token grid.

    The tokens are reshaped to ``(B, T, H, W, D)`` with a plain ``reshape`` whatever their layout; in the
    temporal stacks the layout is ``(b h w) t d``, so the conv sees a scrambled (but per-sample) view.
    That is how the checkpoints were trained: do not fix it.
    """

    def __init__(self, dim: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.dsconv = nn.Conv3d(dim, dim, 3, groups=dim)

    def forward(self, x: torch.Tensor, video_shape: VideoShape) -> torch.Tensor:
        orig_shape = x.shape
        grid = x.reshape(*video_shape, x.shape[-1]).permute(0, 4, 1, 2, 3)  # B D T H W
        time_pad = (2, 0) if self.causal else (1, 1)
        grid = F.pad(grid, (1, 1, 1, 1, *time_pad), value=0.0)
        grid = self.dsconv(grid)
        return grid.permute(0, 2, 3, 4, 1).reshape(orig_shape)


def rope_2d_frequencies(dim_head: int, n: int, device=None, theta: float = 10000.0) -> torch.Tensor:
    """Complex rotations (n, dim_head/2) for tokens on a sqrt(n) x sqrt(n) grid, x and y interleaved.

    Token ``i`` sits at column ``i % side`` and row ``i // side``; the 32 complex slots of a 64-d head are
    ordered ``[x0, y0, x1, y1, ...]`` with ``dim_head/4`` frequencies ``theta^(-4k/dim_head)``.
    """
    side = int(n ** 0.5)
    pos = torch.arange(n, device=device)
    freqs = 1.0 / (theta ** (torch.arange(0, dim_head, 4, device=device)[: dim_head // 4].float() / dim_head))
    x_angles = torch.outer(pos % side, freqs).float()
    y_angles = torch.outer(pos // side, freqs).float()
    x_rot = torch.polar(torch.ones_like(x_angles), x_angles)
    y_rot = torch.polar(torch.ones_like(y_angles), y_angles)
    return torch.stack([x_rot, y_rot], dim=-1).reshape(n, -1)


def apply_rope_2d(q: torch.Tensor, k: torch.Tensor, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q, k of shape (B, N, heads, dim_head): adjacent real pairs form the complex numbers; the same
    rotation for every head. Done in float32 like upstream."""

    def rotate(t: torch.Tensor) -> torch.Tensor:
        as_complex = torch.view_as_complex(t.float().reshape(*t.shape[:-1], -1, 2))
        out = torch.view_as_real(as_complex * rotations[None, :, None, :]).flatten(3)
        return out.type_as(t)

    return rotate(q), rotate(k)


class ContinuousPositionBias(nn.Module):
    """SwinV2-style MLP over log-spaced relative (dy, dx) offsets; one bias per head (einsum path only)."""

    def __init__(self, dim: int, heads: int, layers: int = 2):
        super().__init__()
        self.net = nn.ModuleList([nn.Sequential(nn.Linear(2, dim), nn.LeakyReLU(0.1))])
        for _ in range(layers - 1):
            self.net.append(nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.1)))
        self.net.append(nn.Linear(dim, heads))

    def forward(self, h: int, w: int, device=None) -> torch.Tensor:
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        grid = torch.stack([ys, xs]).reshape(2, -1).t()  # (h w) 2
        rel = grid[:, None, :] - grid[None, :, :]
        rel = (torch.sign(rel) * torch.log(rel.abs() + 1)).float()
        for layer in self.net:
            rel = layer(rel)
        return rel.permute(2, 0, 1)  # heads, i, j


def alibi_slopes(heads: int) -> torch.Tensor:
    """The standard geometric ALiBi slopes (Press et al.), as upstream computes them."""

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]

    if math.log2(heads).is_integer():
        slopes = power_of_2(heads)
    else:
        closest = 2 ** math.floor(math.log2(heads))
        slopes = power_of_2(closest) + power_of_2(2 * closest)[0::2][: heads - closest]
    return torch.tensor(slopes)


def alibi_bias(heads: int, i: int, j: int, device=None) -> torch.Tensor:
    """(heads, i, j) bias ``-|q_pos - k_pos| * slope``; query positions are the last ``i`` of ``j``."""
    q_pos = torch.arange(j - i, j, device=device)
    k_pos = torch.arange(j, device=device)
    dist = -torch.abs(k_pos[None, None, :] - q_pos[None, :, None])
    return dist * alibi_slopes(heads).to(device).view(heads, 1, 1)


class Attention(nn.Module):
    """Global multi-head self-attention of the 't' blocks.

    Order matters for checkpoint fidelity: k/v come from the input *before* ``norm``; RoPE (spatial stacks
    with ``spatial_pos="rope"``) is applied before the l2 normalisation of q and k, which are then scaled
    by learned per-dimension ``q_scale`` / ``k_scale``; logits use a fixed scale of 8.

    ``attn_impl="sdpa"`` reproduces upstream's ``scaled_dot_product_attention`` branch: plain causal mask,
    no relative-position bias, no ALiBi. ``"einsum"`` reproduces the explicit branch: continuous
    position bias (spatial, ``rel``) and ALiBi + causal mask (temporal, causal).
    """

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, causal: bool = False,
                 spatial_pos: str = "rel", scale: float = 8.0, attn_impl: str = "sdpa"):
        super().__init__()
        inner = dim_head * heads
        self.heads, self.dim_head = heads, dim_head
        self.causal, self.scale = causal, scale
        self.spatial_pos = spatial_pos
        self.attn_impl = attn_impl
        if spatial_pos == "rel":  # also owned (unused) by the temporal stacks, which keep the default "rel"
            self.spatial_rel_pos_bias = ContinuousPositionBias(dim=dim, heads=heads)
        self.norm = LayerNorm(dim)
        self.context_norm = LayerNorm(dim)  # only used with cross-attention context, which OmniTokenizer has not
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, is_spatial: bool = True) -> torch.Tensor:
        b, n, _ = x.shape
        kv_input = x
        x = self.norm(x)
        q = self.to_q(x)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, self.dim_head) for t in (q, k, v))
        if self.spatial_pos == "rope" and is_spatial:
            q, k = apply_rope_2d(q, k, rope_2d_frequencies(self.dim_head, n, device=x.device))
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # b h n d
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        if self.attn_impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        else:
            out = self._einsum_attention(q, k, v, n, is_spatial)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))

    def _einsum_attention(self, q, k, v, n: int, is_spatial: bool) -> torch.Tensor:
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
        i, j = sim.shape[-2:]
        if self.spatial_pos == "rel" and is_spatial:
            side = int(math.sqrt(n))
            sim = sim + self.spatial_rel_pos_bias(side, side, device=q.device)
        if self.causal:
            sim = sim + alibi_bias(self.heads, i, j, device=q.device).to(sim.dtype)
            future = torch.ones((i, j), device=q.device, dtype=torch.bool).triu(j - i + 1)
            sim = sim.masked_fill(future, -torch.finfo(sim.dtype).max)
        return torch.einsum("bhij,bhjd->bhid", sim.softmax(dim=-1), v)


def _window_relative_index(window: int) -> torch.Tensor:
    """(window^2, window^2) index into the (2w-1)^2 relative-position table (Swin)."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys, xs]).flatten(1)  # 2, w*w
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


class WindowAttention(nn.Module):
    """Swin W-MSA over non-overlapping ``window x window`` tiles of a square token grid (no shift).

    Unlike ``Attention``: q/k are not l2-normalised, the scale is ``head_dim ** -0.5``, qkv come from
    the normalised input, and a learned relative-position table is added.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.dim, self.window, self.num_heads = dim, window_size, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.norm = LayerNorm(dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", _window_relative_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        side, w = int(math.sqrt(n)), self.window
        x = self.norm(x)
        tiles = (x.reshape(b, side // w, w, side // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c))
        bw, nw = tiles.shape[:2]
        qkv = self.qkv(tiles).reshape(bw, nw, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(nw, nw, -1)
        attn = (attn + bias.permute(2, 0, 1).unsqueeze(0)).softmax(dim=-1)
        tiles = self.proj((attn @ v).transpose(1, 2).reshape(bw, nw, c))
        out = tiles.reshape(b, side // w, side // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
        return out.reshape(b, n, c)


class Transformer(nn.Module):
    """A stack of 't' (PEG + global attention + FF) and 'w' (window attention + FF) blocks.

    ``layers[i]`` is ``ModuleList([peg, self_attn, cross_attn, ff])`` with ``None`` in the unused slots,
    matching the upstream key positions (``layers.{i}.0`` PEG, ``.1`` attention, ``.3`` feed-forward).
    """

    def __init__(self, dim: int, *, block: str, dim_head: int, heads: int, ff_mult: float, causal: bool,
                 peg_causal: bool, window_size: int, spatial_pos: str, attn_impl: str):
        super().__init__()
        self.block = block
        self.layers = nn.ModuleList()
        for letter in block:
            if letter == "t":
                self.layers.append(nn.ModuleList([
                    PEG(dim, causal=peg_causal),
                    Attention(dim, dim_head=dim_head, heads=heads, causal=causal, spatial_pos=spatial_pos,
                              attn_impl=attn_impl),
                    None,
                    feed_forward(dim, ff_mult),
                ]))
            elif letter == "w":
                self.layers.append(nn.ModuleList([
                    None, WindowAttention(dim, window_size, heads), None, feed_forward(dim, ff_mult)]))
            else:
                raise ValueError(f"block letter {letter!r} is not implemented")
        self.norm_out = LayerNorm(dim)

    def forward(self, x: torch.Tensor, video_shape: VideoShape, is_spatial: bool) -> torch.Tensor:
        for peg, attn, _, ff in self.layers:
            if peg is not None:
                x = peg(x, video_shape) + x
            x = (attn(x, is_spatial=is_spatial) if isinstance(attn, Attention) else attn(x)) + x
            x = ff(x) + x
        return self.norm_out(x)


def set_attention_impl(module: nn.Module, attn_impl: str) -> None:
    """Switch every global ``Attention`` under ``module`` between the "sdpa" and "einsum" semantics."""
    for m in module.modules():
        if isinstance(m, Attention):
            m.attn_impl = attn_impl
