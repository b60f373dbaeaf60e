"""Package attributes and modules imported on first use, so importing a package stays cheap."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``sources[name]`` when first asked."""

    def attribute(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return attribute


class _LazyModule(types.ModuleType):
    """Stands for a module until one of its attributes is asked for, then imports it for real.

    Unlike ``importlib.util.LazyLoader`` (not thread-safe before Python 3.12) the real import goes
    through the import system, whose per-module lock lets one thread load it while others wait.
    """

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later lookups find it without coming here
        return getattr(module, name)


def lazy_module(name: str) -> Any:
    """``name``, imported when first used: ``duckdb = lazy_module("duckdb")`` costs nothing until then."""
    return sys.modules.get(name) or _LazyModule(name)
