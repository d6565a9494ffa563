"""TokenFlow's dual-codebook tokenizer (ByteFlow-AI/TokenFlow) re-implemented from
shared/reference/tokenizer-zoo/tokenflow.md; the pixel CNN is ``tokbench.models.vqgan`` in LlamaGen's layout."""
from tokbench.models.tokenflow.loading import LoadedTokenFlow, build_model, find_state_dict, infer_config  # noqa: F401
from tokbench.models.tokenflow.model import (CLIPB_ENHANCED, SIGLIP, DualCodebookQuantizer,  # noqa: F401
                                             TokenFlow, TokenFlowConfig)
