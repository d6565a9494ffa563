"""Reading checkpoint files without executing their code.

A ``.ckpt`` / ``.pt`` / ``.pth`` file is a pickle, and unpickling can call any function. tokbench reads it
with ``torch.load(weights_only=True)`` plus a short allow-list of inert classes (Lightning checkpoints
pickle their ``argparse.Namespace`` of flags), and ``.safetensors`` files with safetensors. Anything else
is refused unless the user opts in with ``--allow-unsafe-checkpoint`` (API: ``allow_unsafe=True``).
"""
from __future__ import annotations

import argparse
import contextvars
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional

import torch

from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError
from tokbench.weights import WeightFile, verify_checksum

UNSAFE_FLAG = "--allow-unsafe-checkpoint"
UNSAFE_ENV = "TOKBENCH_ALLOW_UNSAFE_CHECKPOINT"  # =1: the same opt-in for commands without the flag (stats)
TRUSTED_ENV = "TOKBENCH_TRUSTED_TORCHSCRIPT"  # comma-separated sha256 of TorchScript files the user vouches for
UNSAFE_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar("tokbench_allow_unsafe", default=False)
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


# ---------------------------------------------------------------- TorchScript: one rule for every file


def torchscript_trusted(path: str | Path, allow_unsafe: bool = False, known_sha256: Optional[str] = None
                        ) -> tuple[bool, str]:
    """A TorchScript archive is a program (its code runs when called). It loads when the user opted in
    (``allow_unsafe``, ``--allow-unsafe-checkpoint`` for the run, $TOKBENCH_ALLOW_UNSAFE_CHECKPOINT=1) or when
    its sha256 is a pinned known-good one (the registry's, or listed in $TOKBENCH_TRUSTED_TORCHSCRIPT).
    Returns (trusted, sha256 or "" when not computed)."""
    if allow_unsafe or UNSAFE_ALLOWED.get() or os.environ.get(UNSAFE_ENV, "") == "1":
        return True, ""
    from tokbench.data.dataset import sha256_file

    trusted = {t.strip().lower() for t in os.environ.get(TRUSTED_ENV, "").split(",") if t.strip()}
    if known_sha256:
        trusted.add(known_sha256.lower())
    digest = sha256_file(path)
    return digest in trusted, digest


def load_torchscript(path: str | Path, what: str, allow_unsafe: bool = False, known_sha256: Optional[str] = None,
                     map_location: str | torch.device = "cpu"):
    """``torch.jit.load`` under the rule above; refusals and unreadable files are one line naming the file."""
    ok, digest = torchscript_trusted(path, allow_unsafe, known_sha256)
    if not ok:
        raise UnsafeCheckpointError(
            f"{what}: {path} is a TorchScript program (its code runs when it is called); pass {UNSAFE_FLAG} "
            f"(or set {UNSAFE_ENV}=1) if you trust it, or add its sha256 {digest} to {TRUSTED_ENV}")
    try:
        with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; these files ship nothing else
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=map_location).eval()
    except Exception as e:  # noqa: BLE001  (RuntimeError, zip errors, ... for a foreign or torn file)
        raise BadInputError(f"{what}: {path} is not a loadable TorchScript file ({_first_line(e)})") from None
