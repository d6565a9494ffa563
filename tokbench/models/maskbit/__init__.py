"""MaskBit (markweberdev/maskbit) VQGAN+ tokenizers with lookup-free bit tokens, re-implemented so the released
state_dicts load with strict key matching and give upstream's outputs."""
from tokbench.models.maskbit.loading import LoadedMaskBit, build_model  # noqa: F401
from tokbench.models.maskbit.model import MaskBitConfig, MaskBitTokenizer  # noqa: F401
