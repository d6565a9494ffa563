"""VA-VAE (hustvl/LightningDiT) re-implemented from shared/reference/tokenizer-zoo/vavae.md, plus the LDM
convolutional encoder/decoder (``ldm``) that VAR's VQVAE shares."""
from tokbench.models.vavae.ldm import ConvStackConfig, Decoder, Encoder  # noqa: F401
from tokbench.models.vavae.model import (RELEASED, TRAINING_ONLY_PREFIXES, LoadedVAVAE, VAVAE,  # noqa: F401
                                         build_vavae, split_state)
