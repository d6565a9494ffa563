"""VAR's multi-scale residual VQVAE (FoundationVision/VAR) re-implemented from
shared/reference/tokenizer-zoo/var.md; its encoder/decoder is the LDM stack in ``tokbench.models.vavae.ldm``."""
from tokbench.models.var.model import (SCHEDULES, TRAINING_ONLY_KEYS, LoadedVAR, VARVQConfig,  # noqa: F401
                                       VARVQVAE, build_var, phi_indices, split_flat)
