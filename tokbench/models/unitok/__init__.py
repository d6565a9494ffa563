"""UniTok's multi-codebook image tokenizer (FoundationVision/UniTok), re-implemented from
shared/reference/tokenizer-zoo/unitok.md; ``loading`` reads upstream's training checkpoint layout."""
from tokbench.models.unitok.loading import (CLIP_DEFAULTS, LoadedUniTok, build_unitok,  # noqa: F401
                                            clip_only_shapes, find_state_dict, infer_config)
from tokbench.models.unitok.model import UniTok, UniTokConfig  # noqa: F401
