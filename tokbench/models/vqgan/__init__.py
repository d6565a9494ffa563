"""taming-transformers' convolutional VQGAN and its descendants (LlamaGen VQ, Chameleon), re-implemented from
shared/reference/tokenizer-zoo/{taming-vqgan,llamagen,chameleon}.md so the released checkpoints load with
strict key matching and give upstream's outputs."""
from tokbench.models.vqgan.loading import (CheckpointMismatch, LoadedVQGAN, build_model,  # noqa: F401
                                           find_state_dict, infer_config, model_weights)
from tokbench.models.vqgan.model import VQGAN, VQGANConfig, taming_attn_levels  # noqa: F401
