"""What Python tasks and the API's appends do on BigQuery: queries and load jobs for tasks,
parameterized DML for appends (the streaming API's bad rows are retried for minutes)."""

from __future__ import annotations

import io
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as google_errors
from google.cloud import bigquery

from daglake.engines.base import AppendError, Column, Output, PythonSession, RowWriter
from daglake.engines.bigquery_sql import Sent

if TYPE_CHECKING:
    from daglake.engines.bigquery import BigQueryEngine

_ARROW_TYPES = (
    (pa.types.is_boolean, "BOOL"),
    (pa.types.is_integer, "INT64"),
    (pa.types.is_floating, "FLOAT64"),
    (pa.types.is_decimal, "NUMERIC"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "STRING"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "BYTES"),
    (pa.types.is_date, "DATE"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMP"),
    (pa.types.is_timestamp, "DATETIME"),
    (pa.types.is_time, "TIME"),
)


def _as_arrow(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if hasattr(data, "to_arrow"):  # polars, a DuckDB relation, a BigQuery row iterator
        converted = data.to_arrow()
        return converted.read_all() if isinstance(converted, pa.RecordBatchReader) else converted
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"cannot write {type(data).__name__} to BigQuery: return Arrow, pandas, polars or SQL")


def _schema(table: pa.Table) -> list[bigquery.SchemaField]:
    fields = []
    for field in table.schema:
        kind = next((name for test, name in _ARROW_TYPES if test(field.type)), None)
        if kind is None:
            raise TypeError(f"column {field.name}: {field.type} has no BigQuery load type daglake knows")
        fields.append(bigquery.SchemaField(field.name, kind))
    return fields


class BigQuerySession(PythonSession):
    """``native`` is the BigQuery client; writes are load jobs into a staging table, then one
    ``CREATE OR REPLACE TABLE … AS SELECT`` (atomic per table)."""

    def __init__(self, engine: BigQueryEngine, location: str, jobs: list[str]) -> None:
        self.engine = engine
        self.native = engine.client
        self.location = location
        self.jobs = jobs  # every query and load job the task ran, for its attempt's record

    def _run(self, sql: str, config: bigquery.QueryJobConfig | None = None) -> Any:
        config = config or self.engine.job_config(task=self.location)
        return self.engine.query(sql, Sent.generated(self.location), config, self.jobs)[1]

    def query(self, sql: str, params: Any = None) -> pa.Table:
        config = self.engine.job_config(tuple(self.engine._parameters), task=self.location)
        if params:
            config.query_parameters = [*_parameters(params), *config.query_parameters]
        rows = self._run(self.engine.prepared(sql), config)
        return rows.to_arrow(create_bqstorage_client=False)

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        table = self.query(sql)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return list(zip(*columns, strict=True)) if columns else []

    def write(
        self, output: Output, data: Any, *, replace: bool = False, native: Any = None, append: bool = False
    ) -> int | None:
        self.engine.forget_description(output.table)
        target = self.engine.quoted(output.table)
        verb = f"INSERT INTO {target}" if append else f"CREATE OR REPLACE TABLE {target} AS"
        if isinstance(data, str):
            self._run(f"{verb} {self.engine.prepared(data)}")
            return None
        table = _as_arrow(data)
        dataset = self.engine.dataset(output.table.rpartition(".")[0])
        staging = f"{self.engine.project}.{dataset}._daglake_load_{uuid.uuid4().hex[:12]}"
        client = self.engine.client
        client.create_table(bigquery.Table(staging, schema=_schema(table)), retry=self.engine.retry)
        try:
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            buffer.seek(0)
            labels = self.engine.job_config(task=self.location).labels
            config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET, write_disposition="WRITE_APPEND", labels=labels)
            load = client.load_table_from_file(buffer, staging, job_config=config)
            self.jobs.append(load.job_id)
            load.result(retry=self.engine.retry)
            self._run(f"{verb} SELECT * FROM `{staging}`")
        finally:
            client.delete_table(staging, not_found_ok=True, retry=self.engine.retry)
        return int(table.num_rows)


def _parameters(params: Any) -> list[bigquery.ScalarQueryParameter]:
    if not isinstance(params, dict):
        raise TypeError("on BigQuery, ctx.sql params are a dict of @name values")
    kinds = {bool: "BOOL", int: "INT64", float: "FLOAT64", str: "STRING"}
    return [bigquery.ScalarQueryParameter(name, kinds.get(type(value), "STRING"), value) for name, value in params.items()]


class BigQueryRowWriter(RowWriter):
    """``POST /{table}``: one parameterized ``INSERT … SELECT CAST(@v AS type)`` per batch,
    the values bound as strings and never spliced into SQL; rows returned as BigQuery casts them."""

    def __init__(self, engine: BigQueryEngine) -> None:
        self.engine = engine
        self._described: dict[tuple[str, str], tuple[str, list[Column]]] = {}  # for insert()

    def columns(self, schema: str, table: str) -> tuple[str, list[Column]] | None:
        wanted = table.lower()
        for name in self.tables(schema):
            if name.lower() == wanted:
                found = self.engine.client.get_table(f"{self.engine.project}.{self.engine.dataset(schema)}.{name}", retry=self.engine.retry)
                self._described[(schema.lower(), wanted)] = described = (name, [Column(f.name, f.field_type) for f in found.schema])
                return described
        self._described.pop((schema.lower(), wanted), None)
        return None

    def tables(self, schema: str) -> list[str]:
        try:
            listed = self.engine.client.list_tables(self.engine.dataset(schema), retry=self.engine.retry)
            return sorted(t.table_id for t in listed if t.table_type == "TABLE")
        except google_errors.NotFound:
            return []

    def insert(
        self, schema: str, table: str, columns: list[str], rows: list[dict[str, str]], *, precise: bool
    ) -> list[dict[str, Any]]:
        key = (schema.lower(), table.lower())
        described = self._described.get(key) or self.columns(schema, table)  # no calls per append
        if described is None:
            raise AppendError(f"{schema}.{table} no longer exists", "error", retry=True)
        self.engine.forget_description(f"{schema}.{described[0]}")
        given = {name.lower(): (j, name) for j, name in enumerate(columns)}
        parameters: list[bigquery.ScalarQueryParameter] = []
        selects = []
        for i, row in enumerate(rows):  # every column of the table, as DuckDB's RETURNING * gives
            values = []
            for column in described[1]:
                kind = _cast_type(column.type)
                if column.name.lower() not in given:
                    values.append(f"CAST(NULL AS {kind}) AS `{column.name}`")
                    continue
                j, name = given[column.name.lower()]
                parameters.append(bigquery.ScalarQueryParameter(f"v{i}_{j}", "STRING", row.get(name)))
                # bytes come as base64 (checked by the API), as the API answers them
                typed_value = f"FROM_BASE64(@v{i}_{j})" if kind == "BYTES" else f"CAST(@v{i}_{j} AS {kind})"
                values.append(f"{typed_value} AS `{column.name}`")
            selects.append("SELECT " + ", ".join(values))
        typed = " UNION ALL ".join(selects)
        sent = Sent.generated(f"{schema}.{table}")
        config = bigquery.QueryJobConfig(query_parameters=parameters, labels={"daglake": "append"})
        try:  # the cast first: a bad value is refused before anything is written
            _, stored = self.engine.query(typed, sent, config)
            names = [f.name for f in stored.schema]
            result = [dict(zip(names, r.values(), strict=True)) for r in stored]
            target = f"{self.engine.quoted(f'{schema}.{described[0]}')} ({', '.join(f'`{c.name}`' for c in described[1])})"
            insert = bigquery.QueryJobConfig(query_parameters=parameters, labels={"daglake": "append"})
            self.engine.query(f"INSERT INTO {target} {typed}", sent, insert)
        except Exception as exc:  # a TaskError from the engine: BigQuery's message
            message = getattr(exc, "message", str(exc))
            kind = "invalid_value" if _bad_value(message) else "error"
            self._described.pop(key, None)  # a run may have replaced the table: look again
            raise AppendError(message.split(" (job ")[0], kind, retry=kind == "error") from exc
        return result


def _cast_type(kind: str) -> str:
    return {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRING"}.get(kind, kind)


def _bad_value(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in ("invalid", "bad ", "could not cast", "conversion", "out of range", "cannot parse", "no matching signature"))
