"""Exceptions users see. Each carries one sentence that names the thing at fault."""


class TokbenchError(Exception):
    """Base class; the CLI prints these as one line and exits non-zero."""


class MissingWeightsError(TokbenchError):
    """A weights file or checkpoint is not on this machine (and could not be downloaded)."""


class BadInputError(TokbenchError):
    """A dataset item, annotation or option is unusable; the message names it."""


class TokenizerOutputError(TokbenchError):
    """A tokenizer returned NaN/Inf, a wrong shape or dtype; the message names tokenizer and item."""


class UnsafeCheckpointError(TokbenchError):
    """A checkpoint would need full pickle loading (code execution) and the user did not opt in."""


class TokenizerFailedError(TokbenchError):
    """A tokenizer raised (an exception, out of memory); the message names tokenizer, item and the cause."""
