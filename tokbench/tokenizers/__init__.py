"""Tokenizers; importing this package registers the built-in families."""
from tokbench.tokenizers.base import Encoded, Tokenizer, TokenizerSpec, continuous_bits, discrete_bits
from tokbench.tokenizers.registry import (TOKENIZERS, create_tokenizer, list_tokenizers, parse_tokenizer_arg,
                                          register_tokenizer)

from tokbench.tokenizers import codecs, cosmos, diffusers_vae, omni, video_codecs  # noqa: F401,E402
from tokbench.tokenizers import (chameleon, llamagen, maskbit, open_magvit2, taming, var,  # noqa: F401,E402
                                 vavae)
from tokbench.tokenizers import titok  # noqa: F401,E402

__all__ = ["Encoded", "Tokenizer", "TokenizerSpec", "continuous_bits", "discrete_bits", "TOKENIZERS",
           "create_tokenizer", "list_tokenizers", "parse_tokenizer_arg", "register_tokenizer"]
