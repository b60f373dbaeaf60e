"""One settings class per engine, validating its ``[engine.<name>]`` table without importing the
engine's client library (a project is validated before any engine is opened)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

Report = Callable[[str, str], None]  # (key, message)

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``"dev_${USER}_"`` with the variable's value; raises KeyError naming a missing one."""

    def one(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in os.environ:
            raise KeyError(name)
        return os.environ[name]

    return _ENV.sub(one, value)


@dataclass(frozen=True)
class EngineSettings:
    """Settings every engine shares; subclasses add their keys as dataclass fields."""

    engine: ClassVar[str]
    # key -> accepted Python types, for the keys users may set
    KEYS: ClassVar[dict[str, type | tuple[type, ...]]] = {}
    # the keys saying where the tables are and what decides their rows: a build on other
    # values says nothing of these tables (not credentials, limits, retries or prices)
    IDENTITY: ClassVar[tuple[str, ...]] = ()

    def identity(self) -> dict[str, Any]:
        """The values of :attr:`IDENTITY` (what "only what changed runs" keys builds by)."""
        return {key: getattr(self, key) for key in self.IDENTITY}

    @classmethod
    def from_table(cls, table: dict[str, Any], report: Report) -> EngineSettings:
        """Settings from a TOML table; each unknown key or bad value is reported, not raised."""
        values: dict[str, Any] = {}
        for key, value in table.items():
            expected = cls.KEYS.get(key)
            if expected is None:
                report(key, f"unknown key '{key}' for the {cls.engine} engine (known: {', '.join(sorted(cls.KEYS))})")
                continue
            if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
                report(key, f"{key} must be {type_name(expected)}")
                continue
            if isinstance(value, str):
                try:
                    value = expand_env(value)
                except KeyError as missing:
                    report(key, f"{key} reads the environment variable {missing.args[0]}, which is not set")
                    continue
            problem = cls.check(key, value)
            if problem:
                report(key, problem)
                continue
            values[key] = value
        return cls(**values)

    @classmethod
    def check(cls, key: str, value: Any) -> str | None:
        """A message when ``value`` is not acceptable for ``key`` (types are checked already)."""
        return None

    def merged(self, table: dict[str, Any], report: Report) -> EngineSettings:
        """These settings with a target's table applied on top."""
        override = type(self).from_table(table, report)
        given = {f.name: getattr(override, f.name) for f in fields(self) if f.name in table}
        return replace(self, **given)


@dataclass(frozen=True)
class DuckDBSettings(EngineSettings):
    engine: ClassVar[str] = "duckdb"
    KEYS: ClassVar[dict[str, type | tuple[type, ...]]] = {"path": str, "memory_limit": str, "threads": int}
    IDENTITY: ClassVar[tuple[str, ...]] = ("path",)

    path: str = ".daglake/warehouse.duckdb"
    memory_limit: str | None = None
    threads: int | None = None

    @classmethod
    def check(cls, key: str, value: Any) -> str | None:
        if key == "threads" and value < 1:
            return "threads must be at least 1"
        return None

    def options(self) -> dict[str, Any]:
        """Database-wide DuckDB settings to apply with ``SET``."""
        return {k: v for k, v in (("memory_limit", self.memory_limit), ("threads", self.threads)) if v is not None}


@dataclass(frozen=True)
class BigQuerySettings(EngineSettings):
    engine: ClassVar[str] = "bigquery"
    KEYS: ClassVar[dict[str, type | tuple[type, ...]]] = {
        "project": str,
        "location": str,
        "credentials": str,
        "dataset_prefix": str,
        "maximum_bytes_billed": int,
        "price_per_tib": (int, float),
        "api_endpoint": str,
        "retry_deadline": (int, float),
    }
    IDENTITY: ClassVar[tuple[str, ...]] = ("project", "location", "dataset_prefix", "api_endpoint")

    project: str | None = None
    location: str = "US"
    credentials: str | None = None  # a service-account key file; default: application default
    dataset_prefix: str = ""
    maximum_bytes_billed: int | None = None
    price_per_tib: float = 6.25
    api_endpoint: str | None = None  # an emulator's URL: anonymous credentials then
    retry_deadline: float = 600.0  # seconds transient errors (429, 5xx, backend errors) are retried

    @classmethod
    def check(cls, key: str, value: Any) -> str | None:
        if key == "retry_deadline" and value <= 0:
            return "retry_deadline must be more than 0 seconds"
        if key in ("maximum_bytes_billed", "price_per_tib") and value < 0:
            return f"{key} must be at least 0"
        if key == "dataset_prefix" and not re.fullmatch(r"[A-Za-z0-9_]*", value):
            return f"dataset_prefix {value!r} may hold only letters, digits and underscores"
        return None


@dataclass(frozen=True)
class SparkSettings(EngineSettings):
    engine: ClassVar[str] = "spark"
    KEYS: ClassVar[dict[str, type | tuple[type, ...]]] = {"master": str, "warehouse": str, "conf": dict}
    IDENTITY: ClassVar[tuple[str, ...]] = ("warehouse", "conf")  # conf: spark.sql.ansi.enabled changes results

    master: str = "local[*]"
    warehouse: str = ".daglake/spark-warehouse"
    conf: dict[str, Any] = field(default_factory=dict)  # Spark properties: {"spark.executor.memory" = "4g"}

    @classmethod
    def check(cls, key: str, value: Any) -> str | None:
        if key == "master" and not re.fullmatch(r"local(\[(\*|\d+)(,\d+)?\])?|(spark|sc|k8s|mesos)://\S+|yarn", value):
            return f"master {value!r} is not a Spark master URL (local[*], local[N], spark://host:port, sc://host:port, yarn, k8s://…)"
        if key == "conf":
            bad = [k for k, v in value.items() if not isinstance(v, (str, int, float, bool))]
            if bad:
                return f"conf values must be strings, numbers or booleans ({', '.join(sorted(bad))} is not)"
        return None


def type_name(expected: type | tuple[type, ...]) -> str:
    """How a message names the type a setting must have."""
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table", float: "a number"}
    if expected == (int, float):
        return "a number"
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)


SETTINGS: dict[str, type[EngineSettings]] = {cls.engine: cls for cls in (DuckDBSettings, BigQuerySettings, SparkSettings)}
"""The engines daglake can open, by name (``daglake.engines`` opens them)."""
