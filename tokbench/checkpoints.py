"""Reading checkpoint files without executing their code.

A ``.ckpt`` / ``.pt`` / ``.pth`` file is a pickle, and unpickling can call any function. tokbench reads it
with ``torch.load(weights_only=True)`` plus a short allow-list of inert classes (Lightning checkpoints
pickle their ``argparse.Namespace`` of flags), and ``.safetensors`` files with safetensors. Anything else
is refused unless the user opts in with ``--allow-unsafe-checkpoint`` (API: ``allow_unsafe=True``).
"""
from __future__ import annotations

import argparse
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional

import torch

from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError
from tokbench.weights import WeightFile, verify_checksum

UNSAFE_FLAG = "--allow-unsafe-checkpoint"
SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)


def load_checkpoint(path: str | Path, allow_unsafe: bool = False,
                    allowed_globals: Iterable[Any] = SAFE_GLOBALS, sha256: Optional[str] = None,
                    map_location: str | torch.device = "cpu", what: str = "") -> Any:
    """Load ``path`` safely; refuse a file whose pickle needs more than ``allowed_globals``.

    ``sha256`` pins the file's checksum (a mismatch is refused). ``what`` names the tokenizer or
    evaluator in error messages.
    """
    path = Path(path).expanduser()
    label = what or path.name
    if not path.is_file():
        raise MissingWeightsError(f"{label}: checkpoint file {path} does not exist")
    if sha256:
        verify_checksum(WeightFile(name=label, filename=path.name, sha256=sha256.lower()), path, label)
    if path.suffix == ".safetensors":
        return _load_safetensors(path, map_location, label)
    allowed = list(allowed_globals)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        needed = _blocked_globals(path, e, allowed)
        if not needed:
            raise BadInputError(f"{label}: {path} is not a readable PyTorch checkpoint ({_first_line(e)})") from None
        if not allow_unsafe:
            raise UnsafeCheckpointError(
                f"{label}: {path} needs {', '.join(needed)} to unpickle, which could run arbitrary code; "
                f"pass {UNSAFE_FLAG} only if you trust the file") from None
        warnings.warn(f"{label}: loading {path} with full pickle ({', '.join(needed)}) because unsafe loading "
                      f"was allowed", stacklevel=2)
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # a corrupt or foreign file fails anywhere inside the unpickler
        raise BadInputError(f"{label}: {path} is not a readable PyTorch checkpoint ({_first_line(e)})") from None


def _load_safetensors(path: Path, map_location, label: str) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MissingWeightsError(f"{label}: reading {path.name} needs the safetensors package "
                                  f"(pip install safetensors)") from None
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as e:  # safetensors raises its own SafetensorError for a malformed header
        raise BadInputError(f"{label}: {path} is not a readable safetensors file ({_first_line(e)})") from None


def _blocked_globals(path: Path, error: Exception, allowed: list) -> list[str]:
    """The globals the pickle needs beyond ``allowed`` (empty when the file is simply unreadable)."""
    allowed_names = {f"{g.__module__}.{g.__qualname__}" for g in allowed if hasattr(g, "__qualname__")}
    allowed_names |= {g[1] for g in allowed if isinstance(g, tuple)}  # (stand-in, "pickled.name") entries
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))  # zip-format files
    except Exception:
        found = re.findall(r"GLOBAL ([\w.]+)", str(error))  # legacy format: only the first one is named
    return sorted(set(found) - allowed_names)


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]
