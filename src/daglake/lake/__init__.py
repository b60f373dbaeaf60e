"""The local data lake: zones of Hive-partitioned Parquet, landing files, and the catalog."""

from __future__ import annotations

from daglake.lake.tables import ZONES, LakeTable, lake_table

__all__ = ["ZONES", "LakeTable", "lake_table"]
