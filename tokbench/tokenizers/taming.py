"""taming-transformers' ImageNet VQGANs (CompVis/taming-transformers ``VQModel`` + ``VectorQuantizer2``), one entry
per released checkpoint, on tokbench's own ``tokbench.models.vqgan`` in taming's key layout.

Facts: shared/reference/tokenizer-zoo/taming-vqgan.md. Both files share ``model.yaml``'s architecture (ch 128,
ch_mult 1,1,2,2,4, attention at nominal resolution 16, 256-d codes) and differ in the codebook (1024 / 16384).
``last.ckpt`` is a Lightning checkpoint: weights under ``state_dict``, where the ``loss.*`` modules (LPIPS and
the PatchGAN discriminator) are training-only and dropped. The files are on heibox, not the HF hub: put
``last.ckpt`` at the path ``tokbench list`` shows. TokBench's ``taming_rec.py`` decodes the straight-through
quant of ``encode`` (``decode_from=quant``).
"""
from __future__ import annotations

from tokbench.models.vqgan.model import VQGANConfig, taming_attn_levels
from tokbench.tokenizers.conv_vq import Release, register_release

PAGES = {1024: "https://heibox.uni-heidelberg.de/d/8088892a516d4e3baf92/",
         16384: "https://heibox.uni-heidelberg.de/d/a7530b09fed84f80a887/"}
README_FID = {1024: "7.94", 16384: "4.98"}  # upstream README reconstruction FIDs


def imagenet_f16_config(n_embed: int) -> VQGANConfig:
    return VQGANConfig("taming", n_embed=n_embed, embed_dim=256, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2,
                       z_channels=256, attn_levels=taming_attn_levels(256, (16,), 5))


for _n, _extra in ((1024, {}), (16384, {"published": "VQGAN", "aliases": ("vqgan", "taming-vqgan")})):
    register_release(Release(
        name=f"taming-vqgan-imagenet-f16-{_n}", family="taming", file=f"taming/vqgan_imagenet_f16_{_n}/last.ckpt",
        config=imagenet_f16_config(_n), decode_from="quant", decode_note="TokBench taming_rec.py decodes encode(x)[0]",
        containers=("state_dict",), training_prefixes=("loss.",), page=PAGES[_n], license="MIT",
        description=f"taming-transformers VQGAN vqgan_imagenet_f16_{_n} (ImageNet): {_n} codes of 256 dims, f16; "
                    f"README reconstruction FID {README_FID[_n]}", **_extra))
