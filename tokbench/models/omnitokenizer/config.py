"""OmniTokenizer hyper-parameters and their mapping to the upstream argparse flags.

Released checkpoints carry the flags they were trained with (``hyper_parameters["args"]``, an
``argparse.Namespace``); reading them from the file, instead of trusting a table, is what makes a wrong
file fail loudly rather than load into a mismatched model.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

ATTN_IMPLS = ("sdpa", "einsum")
SPATIAL_POS = ("rope", "rel")


@dataclass(frozen=True)
class OmniTokenizerConfig:
    """Architecture of one OmniTokenizer checkpoint. Defaults are the released stage-2 VQ model."""

    dim: int = 512  # upstream embedding_dim
    heads: int = 8
    dim_head: int = 64
    ff_mult: float = 4.0
    image_channels: int = 3
    patch_size: int = 8
    temporal_patch_size: int = 4  # 2 for the stage-1 (image-only) files
    enc_block: str = "ttww"  # 't' global attention + PEG, 'w' 8x8 window attention
    dec_block: str = "tttt"
    temporal_depth: int = 4
    window_size: int = 8  # upstream twod_window_size
    spatial_pos: str = "rope"  # "rel" for the stage-1 files
    causal_temporal: bool = True  # upstream causal_in_temporal_transformer
    causal_peg: bool = True  # upstream causal_in_peg
    n_codes: int = 8192
    codebook_dim: int = 8
    l2_code: bool = True
    use_vae: bool = False
    attn_impl: str = "sdpa"  # not in the file: how the checkpoint was trained (see omnitokenizer.md §4.5)

    def __post_init__(self):
        if self.attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, not {self.attn_impl!r}")
        if self.spatial_pos not in SPATIAL_POS:
            raise ValueError(f"spatial_pos must be one of {SPATIAL_POS}, not {self.spatial_pos!r}")
        for name, block, allowed in (("enc_block", self.enc_block, "tw"), ("dec_block", self.dec_block, "t")):
            if not block or set(block) - set(allowed):
                raise ValueError(f"{name} {block!r}: only the letters {allowed!r} are implemented")
        if self.dim != self.heads * self.dim_head:
            raise ValueError(f"dim {self.dim} must equal heads x dim_head ({self.heads} x {self.dim_head})")
        if self.dim_head % 4:
            raise ValueError("dim_head must be a multiple of 4 for the 2-D RoPE")

    @property
    def latent_channels(self) -> int:
        return self.codebook_dim

    @property
    def spatial_multiple(self) -> int:
        """Sides must be multiples of this: patches, and whole windows when the encoder has 'w' blocks."""
        return self.patch_size * (self.window_size if "w" in self.enc_block else 1)

    def to_dict(self) -> dict:
        return asdict(self)


# Fields that make a file a different tokenizer (not merely a different size): a mismatch with the
# registry entry means the user passed the wrong checkpoint for the name.
IDENTITY_FIELDS = ("use_vae", "temporal_patch_size", "patch_size", "spatial_pos", "causal_temporal",
                   "causal_peg", "l2_code", "image_channels")
SIZE_FIELDS = tuple(f.name for f in fields(OmniTokenizerConfig) if f.name not in IDENTITY_FIELDS + ("attn_impl",))

_UNSUPPORTED = {  # upstream flag -> value every released tokenizer uses (anything else is not implemented)
    "patch_embed": "linear",
    "defer_temporal_pool": False,
    "defer_spatial_pool": False,
    "use_external_codebook": False,
    "gen_upscale": None,
}


def _get(args: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in args:
            return args[name]
    return default


def config_from_hparams(args: Any, base: OmniTokenizerConfig) -> OmniTokenizerConfig:
    """Build the config from upstream flags (Namespace or mapping); flags absent in the file keep ``base``.

    Both spellings of the causal flags are accepted: the released training scripts pass
    ``--casual_in_*`` while the current upstream argparse names them ``causal_in_*``.
    """
    a = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    for flag, supported in _UNSUPPORTED.items():
        value = a.get(flag, supported)
        if (value or None) != (supported or None):  # False, None and absent all mean "off"
            raise ValueError(f"upstream option {flag}={a[flag]!r} is not implemented (released tokenizers use "
                             f"{supported!r})")
    spatial_depth = _get(a, "spatial_depth")
    enc_block = _get(a, "enc_block", default=("t" * spatial_depth) if spatial_depth else base.enc_block)
    if spatial_depth is not None and len(enc_block) != spatial_depth:
        raise ValueError(f"enc_block {enc_block!r} does not have spatial_depth={spatial_depth} letters")
    values = dict(
        dim=_get(a, "embedding_dim", default=base.dim),
        heads=_get(a, "heads", default=base.heads),
        dim_head=_get(a, "dim_head", default=base.dim_head),
        ff_mult=float(_get(a, "ff_mult", default=base.ff_mult)),
        image_channels=_get(a, "image_channels", default=base.image_channels),
        patch_size=_get(a, "patch_size", default=base.patch_size),
        temporal_patch_size=_get(a, "temporal_patch_size", default=base.temporal_patch_size),
        enc_block=enc_block,
        dec_block=_get(a, "dec_block", default=("t" * spatial_depth) if spatial_depth else base.dec_block),
        temporal_depth=_get(a, "temporal_depth", default=base.temporal_depth),
        window_size=_get(a, "twod_window_size", default=base.window_size),
        spatial_pos=_get(a, "spatial_pos", default=base.spatial_pos),
        causal_temporal=bool(_get(a, "causal_in_temporal_transformer", "casual_in_temporal_transformer",
                                  default=base.causal_temporal)),
        causal_peg=bool(_get(a, "causal_in_peg", "casual_in_peg", default=base.causal_peg)),
        n_codes=_get(a, "n_codes", default=base.n_codes),
        codebook_dim=_get(a, "codebook_dim", default=base.codebook_dim),
        l2_code=bool(_get(a, "l2_code", default=base.l2_code)),
        use_vae=bool(_get(a, "use_vae", default=base.use_vae)),
    )
    return replace(base, **values)


def config_to_hparams(config: OmniTokenizerConfig, **extra: Any) -> argparse.Namespace:
    """The upstream flags for ``config`` (what a released file's ``hyper_parameters["args"]`` holds),
    spelled as the released training scripts spell them."""
    args = dict(
        embedding_dim=config.dim, heads=config.heads, dim_head=config.dim_head, ff_mult=config.ff_mult,
        image_channels=config.image_channels, patch_embed="linear", patch_size=config.patch_size,
        temporal_patch_size=config.temporal_patch_size, spatial_depth=len(config.enc_block),
        enc_block=config.enc_block, dec_block=config.dec_block, temporal_depth=config.temporal_depth,
        twod_window_size=config.window_size, spatial_pos=config.spatial_pos,
        casual_in_temporal_transformer=config.causal_temporal, casual_in_peg=config.causal_peg,
        n_codes=config.n_codes, codebook_dim=config.codebook_dim, l2_code=config.l2_code, use_vae=config.use_vae,
        use_external_codebook=False, defer_temporal_pool=False, defer_spatial_pool=False,
        no_random_restart=True, norm_type="batch", resolution=256, sequence_length=17,
    )
    args.update(extra)
    return argparse.Namespace(**args)


def config_differences(got: OmniTokenizerConfig, expected: OmniTokenizerConfig,
                       names: Optional[tuple[str, ...]] = None) -> dict[str, tuple[Any, Any]]:
    """``{field: (got, expected)}`` for the fields that differ."""
    names = names or tuple(f.name for f in fields(OmniTokenizerConfig))
    return {n: (getattr(got, n), getattr(expected, n)) for n in names if getattr(got, n) != getattr(expected, n)}
