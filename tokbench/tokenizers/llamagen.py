"""LlamaGen's image VQ tokenizers (FoundationVision/LlamaGen, ``tokenizer/tokenizer_image/vq_model.py``), one
entry per released checkpoint, on tokbench's own ``tokbench.models.vqgan`` in LlamaGen's key layout.

Facts: shared/reference/tokenizer-zoo/llamagen.md. Every file is ``VQ_models[...](codebook_size=16384,
codebook_embed_dim=8)`` with l2-normalised latents and codes. Weights are read from ``ckpt["ema"]``, else
``ckpt["model"]``, else ``ckpt["state_dict"]``, else a bare state_dict, the order of TokBench's
``llamagen_rec.py`` and upstream's ``reconstruction_vq_ddp.py``; ``describe()`` records which one was used.
TokBench's script decodes the straight-through quant of ``encode`` (``decode_from=quant``).
"""
from __future__ import annotations

from tokbench.models.vqgan.model import VQGANConfig
from tokbench.tokenizers.conv_vq import Release, register_release

HUB_C2I = "FoundationVision/LlamaGen"
HUB_T2I = "peizesun/llamagen_t2i"
USAGE_BUFFER = 65536  # quantize.codebook_used: training statistics, in the state_dict, never read at inference


def vq_config(downsampling: int) -> VQGANConfig:
    """``VQ-16`` (ch_mult 1,1,2,2,4) or ``VQ-8`` (1,2,2,4): 16384 codes of 8 dims, attention at the lowest level."""
    mult = (1, 1, 2, 2, 4) if downsampling == 16 else (1, 2, 2, 4)
    return VQGANConfig("llamagen", n_embed=16384, embed_dim=8, ch_mult=mult, attn_levels=(len(mult) - 1,),
                       l2_norm=True, usage_buffer=USAGE_BUFFER)


def _release(name, downsampling, file, hub, what, **kw) -> Release:
    return Release(
        name=name, family="llamagen", file=f"llamagen/{file}", config=vq_config(downsampling), decode_from="quant",
        decode_note="TokBench llamagen_rec.py decodes encode(x)[0]", containers=("ema", "model", "state_dict"),
        hub_repo=hub, hub_filename=file, license="MIT",
        description=f"LlamaGen VQ-{downsampling} ({what}): 16384 l2-normalised 8-d codes, f{downsampling}", **kw)


for _r in (
        _release("llamagen-vq16-c2i", 16, "vq_ds16_c2i.pt", HUB_C2I, "class-conditional, ImageNet; README rFID 2.19 "
                 "at 256", published="LlamaGen", aliases=("llamagen", "llamagen-vq16")),
        _release("llamagen-vq8-c2i", 8, "vq_ds8_c2i.pt", HUB_C2I,
                 "class-conditional, ImageNet; README rFID 0.59 at 256",
                 published="LlamaGen (F8)", aliases=("llamagen-vq8",)),
        _release("llamagen-vq16-t2i", 16, "vq_ds16_t2i.pt", HUB_T2I, "text-to-image, LAION COCO 50M + internal 10M")):
    register_release(_r)
