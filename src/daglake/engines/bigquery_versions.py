"""What BigQuery knows of the tables daglake did not build: a version per table for "only what
changed runs" (SPEC §4), found without scanning a byte on BigQuery itself.

BigQuery keeps a table's last-modified time and row count in its metadata, updated by every
load, query, copy and DML job, with the streaming buffer's estimate beside them: one free
``tables.get`` per table, made concurrently. The emulator (``api_endpoint``) leaves them as
the table was created whatever DML follows, so there the version adds a content fingerprint:
row count and the sum of every row's FARM_FINGERPRINT, all tables in one query.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from google.api_core import exceptions as google_errors

from daglake.engines.bigquery_sql import Sent
from daglake.errors import TaskError

if TYPE_CHECKING:
    from google.cloud import bigquery

    from daglake.engines.bigquery import BigQueryEngine

# a view's or an external table's metadata says nothing of the rows it returns
_VERSIONED_KINDS = {"TABLE", "SNAPSHOT", "CLONE"}
_CONCURRENT_CALLS = 8


def source_versions(engine: BigQueryEngine, tables: list[str]) -> dict[str, str | None]:
    """``bigquery:<modified>:<rows>`` per table (None: missing, a view, an external table, or
    not readable); on an emulator with ``:<count>:<content>`` after it."""
    versions = metadata_versions(engine, tables)
    if engine.settings.api_endpoint is not None:
        versions = content_versions(engine, versions)
    return versions


def metadata_versions(engine: BigQueryEngine, tables: list[str]) -> dict[str, str | None]:
    """Each table's last-modified time and row count: a ``tables.get`` each, 8 at a time."""
    if not tables:
        return {}

    def describe(table: str) -> tuple[str, str | None]:
        try:
            found = engine.client.get_table(engine._table_ref(table), retry=engine.retry)
        except (google_errors.NotFound, google_errors.Forbidden, google_errors.BadRequest):
            return table, None
        return table, _metadata_version(found)

    with ThreadPoolExecutor(max_workers=min(_CONCURRENT_CALLS, len(tables))) as pool:
        return dict(engine._call(lambda: list(pool.map(describe, tables)), "reading tables' metadata"))


def _metadata_version(table: bigquery.Table) -> str | None:
    if table.table_type not in _VERSIONED_KINDS or table.modified is None:
        return None
    version = f"bigquery:{table.modified.isoformat()}:{table.num_rows}"
    buffer = table.streaming_buffer  # rows streamed in but not yet counted in num_rows
    if buffer is not None:
        oldest = buffer.oldest_entry_time.isoformat() if buffer.oldest_entry_time else ""
        version += f"+{buffer.estimated_rows}@{oldest}"
    return version


def content_versions(engine: BigQueryEngine, versions: dict[str, str | None]) -> dict[str, str | None]:
    """The versions with each table's row count and sum of row fingerprints, in one query (a
    full scan: billed on BigQuery, which is why only the emulator takes it)."""
    known = [table for table, version in versions.items() if version is not None]
    if not known:
        return versions
    digest = "CAST(SUM(CAST(FARM_FINGERPRINT(TO_JSON_STRING(t)) AS BIGNUMERIC)) AS STRING)"
    sql = " UNION ALL ".join(
        f"SELECT {index} AS i, COUNT(*) AS n, {digest} AS h FROM `{engine._table_ref(table)}` AS t"
        for index, table in enumerate(known)
    )
    try:
        _, rows = engine.query(sql, Sent.generated(None), engine.job_config())
    except TaskError:  # a table it cannot read: its readers run, and say why
        return dict.fromkeys(versions)
    found = dict(versions)
    for index, count, total in (tuple(row.values()) for row in rows):
        found[known[index]] = f"{versions[known[index]]}:{count}:{total or ''}"
    return found
