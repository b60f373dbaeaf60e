"""The local data lake: zones of Hive-partitioned Parquet, landing files, ingestion, catalog."""

from __future__ import annotations

from daglake.lake.ingest import IngestResult, Rule, ingest_json, land_and_pending
from daglake.lake.landing import LandedFile, land, manifest
from daglake.lake.tables import ZONES, LakeTable, lake_table

__all__ = [
    "ZONES",
    "IngestResult",
    "LakeTable",
    "LandedFile",
    "Rule",
    "ingest_json",
    "lake_table",
    "land",
    "land_and_pending",
    "manifest",
]
