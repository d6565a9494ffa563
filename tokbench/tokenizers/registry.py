"""Tokenizer registry in the timm style: ``register_tokenizer`` / ``create_tokenizer`` / ``list_tokenizers``.

A registered entry is a static spec plus a factory ``factory(spec, *, checkpoint=None, **options)``.
Families with heavy dependencies import them inside the factory, so listing never needs them.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from tokbench.errors import BadInputError
from tokbench.registry import Registry
from tokbench.tokenizers.base import Tokenizer, TokenizerSpec


@dataclass(frozen=True)
class TokenizerEntry:
    spec: TokenizerSpec
    factory: Callable[..., Tokenizer]

    def option_names(self) -> list[str]:
        params = inspect.signature(self.factory).parameters
        return [n for n, p in params.items() if n not in ("spec", "checkpoint", "allow_unsafe")
                and p.kind == p.KEYWORD_ONLY]

    def option_defaults(self) -> dict:
        """Each option's default: what a run uses when the option is not given."""
        params = inspect.signature(self.factory).parameters
        return {n: params[n].default for n in self.option_names() if params[n].default is not inspect.Parameter.empty}


TOKENIZERS: Registry[TokenizerEntry] = Registry("tokenizer")


def register_tokenizer(spec: TokenizerSpec):
    """Decorator: ``@register_tokenizer(TokenizerSpec(name="jpeg", ...))`` on the factory."""

    def decorator(factory):
        TOKENIZERS.add(spec.name, TokenizerEntry(spec, factory), spec.aliases)
        return factory

    return decorator


def parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_tokenizer_arg(arg: str) -> tuple[str, dict]:
    """``"jpeg:quality=90,subsampling=420"`` -> ``("jpeg", {"quality": 90, "subsampling": 420})``."""
    name, _, rest = arg.partition(":")
    options = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise BadInputError(f"tokenizer option {part!r} in {arg!r} is not key=value")
        options[key.strip()] = parse_value(value.strip())
    return name.strip(), options


def get_entry(name: str) -> TokenizerEntry:
    _ensure_builtins()
    return TOKENIZERS.get(name)


def create_tokenizer(arg: str, checkpoint: Optional[str] = None, device: str = "cpu",
                     dtype: torch.dtype = torch.float32, allow_unsafe: bool = False, **options) -> Tokenizer:
    """Build a tokenizer from ``name[:key=value,...]`` plus keyword options."""
    name, parsed = parse_tokenizer_arg(arg)
    parsed.update(options)
    entry = get_entry(name)
    valid = entry.option_names()
    unknown = sorted(set(parsed) - set(valid))
    if unknown:
        raise BadInputError(f"tokenizer {entry.spec.name}: unknown option(s) {', '.join(unknown)}; "
                            f"valid options: {', '.join(valid) or 'none'}")
    defaults = entry.option_defaults()
    parsed = {k: _checked_option(entry.spec, k, v, defaults.get(k)) for k, v in parsed.items()}
    kwargs = dict(parsed)
    params = inspect.signature(entry.factory).parameters
    if "checkpoint" in params:
        kwargs["checkpoint"] = checkpoint
    elif checkpoint is not None:
        raise BadInputError(f"tokenizer {entry.spec.name} takes no checkpoint")
    if "allow_unsafe" in params:
        kwargs["allow_unsafe"] = allow_unsafe
    tok = entry.factory(entry.spec, **kwargs)
    # the effective options, defaults included, are what produced the numbers; the label shows the given ones
    # plus the spec's rate settings (jpeg's quality), so a default run is not mistaken for an unknown setting
    tok.options = {**defaults, **parsed}
    tok.label_keys = tuple(sorted(set(parsed) | set(entry.spec.label_options)))
    return tok.to(device, dtype)


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def _checked_option(spec: TokenizerSpec, key: str, value: Any, default: Any) -> Any:
    """An option's value has its default's type (None defaults take anything); a mismatch is one line."""
    if default is None:
        return value
    kind = type(default)
    if kind is str and value is not None:
        return str(value)
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
          isinstance(value, kind))
    if not ok:
        hint = spec.description.rpartition("; ")[2] if "option" in spec.description else ""
        raise BadInputError(f"tokenizer {spec.name}: option {key} must be {_TYPE_WORDS.get(kind, kind.__name__)}, "
                            f"got {value!r}" + (f" ({hint})" if hint.startswith("option") else f" (default {default})"))
    return value


def list_tokenizers() -> list[str]:
    _ensure_builtins()
    return TOKENIZERS.names()


def weights_status(entry: TokenizerEntry) -> dict:
    """Whether the tokenizer's weights are on this machine, and where they would be loaded from."""
    wf = entry.spec.checkpoint
    if wf is None:
        return {"weights": "none needed", "path": ""}
    local = wf.find_local()
    return {"weights": "present" if local else "missing", "path": str(local or wf.where_to_put())}


_loaded = False


def _ensure_builtins():
    global _loaded
    if not _loaded:
        _loaded = True
        import tokbench.tokenizers  # noqa: F401  (registers the built-in families)

        load_entry_point_plugins()


PLUGIN_GROUP = "tokbench.tokenizers"


def load_entry_point_plugins(warn=None) -> list[str]:
    """Import the installed packages that declare ``[project.entry-points."tokbench.tokenizers"]``; their
    import registers their tokenizers. A broken plugin is reported and skipped, never fatal to tokbench."""
    import sys
    from importlib.metadata import entry_points

    warn = warn or (lambda m: print(f"warning: {m}", file=sys.stderr))
    loaded = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
            loaded.append(ep.name)
        except Exception as e:
            warn(f"tokenizer plugin {ep.name} ({ep.value}) failed to load: {type(e).__name__}: {e}")
    return loaded


def load_plugins(modules) -> None:
    """``--plugin MODULE``: import modules that register tokenizers (on the Python path, or a .py file)."""
    import hashlib
    import importlib
    import importlib.util
    import sys

    for name in modules or ():
        try:
            if name.endswith(".py"):
                path = Path(name).resolve()
                if not path.is_file():
                    raise FileNotFoundError(f"no such file {name}")
                module_name = f"tokbench_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
                if module_name in sys.modules:  # imported once per process, like a module name
                    continue
                spec = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[module_name]
                    raise
            else:
                importlib.import_module(name)
        except Exception as e:
            raise BadInputError(f"--plugin {name}: cannot import it ({type(e).__name__}: {e})") from None
