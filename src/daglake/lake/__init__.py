"""The local data lake: zones of Hive-partitioned Parquet, landing files, ingestion, catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglake._lazy import lazy_attributes

if TYPE_CHECKING:
    from daglake.lake.ingest import IngestResult, Rule, ingest_json, land_and_pending
    from daglake.lake.landing import LandedFile, land, manifest
    from daglake.lake.tables import ZONES, LakeTable, lake_table

# imported when first asked for: a run that ingests nothing does not pay for ingestion's modules
__getattr__ = lazy_attributes(__name__, {
    "IngestResult": "daglake.lake.ingest", "Rule": "daglake.lake.ingest", "ingest_json": "daglake.lake.ingest",
    "land_and_pending": "daglake.lake.ingest", "LandedFile": "daglake.lake.landing", "land": "daglake.lake.landing",
    "manifest": "daglake.lake.landing", "ZONES": "daglake.lake.tables", "LakeTable": "daglake.lake.tables",
    "lake_table": "daglake.lake.tables",
})

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
