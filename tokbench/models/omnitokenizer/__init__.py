"""OmniTokenizer (FoundationVision, NeurIPS 2024) re-implemented from shared/reference/omnitokenizer.md so
the released Lightning checkpoints load with strict key matching and give the upstream outputs."""
from tokbench.models.omnitokenizer.config import (OmniTokenizerConfig, config_from_hparams,  # noqa: F401
                                                  config_to_hparams)
from tokbench.models.omnitokenizer.loading import (TRAINING_ONLY_PREFIXES, CheckpointMismatch,  # noqa: F401
                                                   LoadedOmni, build_model)
from tokbench.models.omnitokenizer.model import OmniTokenizer  # noqa: F401
