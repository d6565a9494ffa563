"""tokbench: how much fine detail (small text, faces) a visual tokenizer keeps, and what it costs.

Python API (the CLI is a thin layer over it)::

    import tokbench
    tokbench.list_tokenizers()
    report = tokbench.run(tokenizer="jpeg:quality=90", suite="text-face", resolutions=[256])
    print(report.format())
"""
__version__ = "0.1.0"

from tokbench.errors import BadInputError, MissingWeightsError, TokbenchError  # noqa: E402
from tokbench.tokenizers.registry import create_tokenizer, list_tokenizers, register_tokenizer  # noqa: E402
from tokbench.suites import get_suite, list_suites  # noqa: E402
from tokbench.report import load_report  # noqa: E402
from tokbench.pipeline import RunConfig, run  # noqa: E402

__all__ = ["BadInputError", "MissingWeightsError", "TokbenchError", "create_tokenizer", "list_tokenizers",
           "register_tokenizer", "get_suite", "list_suites", "load_report", "RunConfig", "run", "__version__"]
