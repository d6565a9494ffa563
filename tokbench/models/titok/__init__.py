"""TiTok 1-D tokenizers (bytedance/1d-tokenizer), re-implemented so the released state_dicts load with strict
key matching and give upstream's outputs."""
from tokbench.models.titok.loading import LoadedTiTok, build_model  # noqa: F401
from tokbench.models.titok.model import VIT_SIZES, TiTok, TiTokConfig  # noqa: F401
