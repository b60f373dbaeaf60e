"""The engines by name: each a module imported only when a run opens it, and its settings."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daglake.engine_settings import SETTINGS, EngineSettings

if TYPE_CHECKING:
    from daglake.engines.base import Engine


@dataclass(frozen=True)
class EngineSpec:
    name: str
    module: str
    cls: str
    settings: type[EngineSettings]
    lake: bool  # reads and writes the local data lake (section 6 of SPEC)

    def load(self) -> type[Engine]:
        engine: type[Engine] = getattr(importlib.import_module(self.module), self.cls)
        return engine


_CLASSES = {
    "duckdb": ("daglake.engines.duckdb", "DuckDBEngine", True),
    "bigquery": ("daglake.engines.bigquery", "BigQueryEngine", False),  # until a GCS lake exists
    "spark": ("daglake.engines.spark", "SparkEngine", True),
}
REGISTRY: dict[str, EngineSpec] = {
    name: EngineSpec(name, module, cls, SETTINGS[name], lake) for name, (module, cls, lake) in _CLASSES.items()
}



def create_engine(settings: EngineSettings, root: Path, *, read_only: bool = False, lazy: bool = False) -> Engine:
    """Open the engine ``settings`` are for, on the project in ``root`` (``lazy``: see
    :class:`~daglake.engines.base.Engine`)."""
    return REGISTRY[settings.engine].load()(settings, root, read_only=read_only, lazy=lazy)


def engine_class(name: str) -> type[Engine]:
    return REGISTRY[name].load()


def nothing_built(settings: EngineSettings, root: Path) -> bool:
    """True when the engine keeps its warehouse in a local file that does not exist yet."""
    path = getattr(settings, "path", None)
    return path is not None and path != ":memory:" and not (root / path).exists()
