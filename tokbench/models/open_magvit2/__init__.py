"""Open-MAGVIT2 (TencentARC SEED-Voken) LFQ image tokenizers, re-implemented so the released Lightning
checkpoints load with strict key matching and their EMA weights give upstream's outputs."""
from tokbench.models.open_magvit2.loading import (TRAINING_ONLY_PREFIXES, LoadedOpenMagvit2,  # noqa: F401
                                                  build_model, ema_name)
from tokbench.models.open_magvit2.model import OpenMagvit2, OpenMagvit2Config  # noqa: F401
