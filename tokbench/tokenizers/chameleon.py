"""Chameleon's image tokenizer (facebookresearch/chameleon ``chameleon/inference/vqgan.py``, an inference copy of
taming-transformers' VQGAN), on tokbench's own ``tokbench.models.vqgan`` in taming's key layout.

Facts: shared/reference/tokenizer-zoo/chameleon.md. ``vqgan.yaml``: 8192 codes of 256 dims, f16, and *no*
level attention (``attn_resolutions: []``); only the middle blocks attend. The weights are gated (Meta sends
a download link after the Chameleon Research License is accepted): put ``data/tokenizer/vqgan.ckpt`` at the path
``tokbench list`` shows. The Hugging Face conversions (``facebook/chameleon-7b``) and transformers'
``ChameleonVQVAE`` hold only the encoder half, so they cannot reconstruct; tokbench does not use them.
TokBench's ``chameleon_vae_rec.py`` goes through ``ImageTokenizer``: tokens, then ``get_codebook_entry`` and
``decode`` (``decode_from=indices``). Upstream's resize/crop to 512 is a pre-processing step tokbench's harness
replaces with the benchmark protocol, as TokBench's modified tokenizer did.
"""
from __future__ import annotations

from tokbench.models.vqgan.model import VQGANConfig, taming_attn_levels
from tokbench.tokenizers.conv_vq import Release, register_release

register_release(Release(
    name="chameleon-vqgan", family="chameleon", file="chameleon/vqgan.ckpt",
    config=VQGANConfig("taming", n_embed=8192, embed_dim=256, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2,
                       z_channels=256, attn_levels=taming_attn_levels(512, (), 5)),
    decode_from="indices", decode_note="TokBench chameleon_vae_rec.py: ImageTokenizer.pil_from_img_toks",
    containers=("state_dict",), training_prefixes=("loss.",), license="Chameleon Research License",
    page="https://ai.meta.com/resources/models-and-libraries/chameleon-downloads/ (gated; data/tokenizer/vqgan.ckpt)",
    description="Chameleon VQGAN image tokenizer (7B/30B): 8192 codes of 256 dims, f16, no level attention",
    published="Chameleon", aliases=("chameleon",)))
