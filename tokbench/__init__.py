"""tokbench: how much fine detail (small text, faces) a visual tokenizer keeps, and what it costs.

Python API (the CLI is a thin layer over it)::

    import tokbench
    tokbench.list_tokenizers()
    report = tokbench.run(tokenizer="jpeg:quality=90", suite="text-face", resolutions=[256])
    print(report.format())
"""
__version__ = "0.1.0"

import os as _os

# torch's OpenMP threads (libgomp) spin-wait after every parallel op by default. Between the many small torch
# ops of a run (PSNR strips, harness conversions) they burnt the cores that onnxruntime, scipy and the dlib
# workers wanted: PSNR took 6.7x the CPU time, the harness 2.8x (2-core machine). libgomp reads this once,
# when torch loads it, so it is set before anything imports torch; a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tokbench.errors import BadInputError, MissingWeightsError, TokbenchError  # noqa: E402
from tokbench.tokenizers.registry import create_tokenizer, list_tokenizers, register_tokenizer  # noqa: E402
from tokbench.suites import get_suite, list_suites  # noqa: E402
from tokbench.report import load_report  # noqa: E402
from tokbench.pipeline import RunConfig, run  # noqa: E402

__all__ = ["BadInputError", "MissingWeightsError", "TokbenchError", "create_tokenizer", "list_tokenizers",
           "register_tokenizer", "get_suite", "list_suites", "load_report", "RunConfig", "run", "__version__"]
