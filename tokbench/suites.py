"""Suites as data: which datasets, which metrics, which resolutions.

A suite lists only metrics that are implemented; evaluators added later register themselves and are
appended here, so the same ``tokbench run`` command scores more as the project grows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from tokbench.registry import Registry


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    modality: str = "image"
    resolutions: tuple[int, ...] = (256, 512, 1024)
    description: str = ""

    def describe(self) -> dict:
        return asdict(self)


SUITES: Registry[Suite] = Registry("suite")


def register_suite(suite: Suite, *aliases: str) -> Suite:
    return SUITES.add(suite.name, suite, aliases)


def get_suite(name: str) -> Suite:
    _ensure_builtins()
    return SUITES.get(name)


def list_suites() -> list[str]:
    _ensure_builtins()
    return SUITES.names()


_loaded = False


def _ensure_builtins():
    global _loaded
    if not _loaded:
        _loaded = True
        import tokbench.builtin_suites  # noqa: F401
