"""Tokenizers; importing this package registers the built-in families."""
from tokbench.tokenizers.base import Encoded, Tokenizer, TokenizerSpec, continuous_bits, discrete_bits
from tokbench.tokenizers.registry import (TOKENIZERS, create_tokenizer, list_tokenizers, parse_tokenizer_arg,
                                          register_tokenizer)

# codecs and adapters over kept packages' classes
from tokbench.tokenizers import (codecs, cosmos, diffusers_vae, transformers_vq, video_codecs,  # noqa: F401,E402
                                 vidtok)
# own re-implementations
from tokbench.tokenizers import (chameleon, llamagen, maskbit, omni, open_magvit2, taming, titok,  # noqa: F401,E402
                                 tokenflow, unitok, var, vavae)

__all__ = ["Encoded", "Tokenizer", "TokenizerSpec", "continuous_bits", "discrete_bits", "TOKENIZERS",
           "create_tokenizer", "list_tokenizers", "parse_tokenizer_arg", "register_tokenizer"]
