"""Google BigQuery through the official client: each statement a query job, jobs in parallel.

A bare query replaces its table with ``CREATE OR REPLACE TABLE … AS`` (atomic per table:
readers see the old table or the new one). A file's statements run one job after another —
BigQuery has no transaction for DDL, so a multi-statement file is atomic per table, not as a
whole. Datasets are the project's (``tmp``, ``final``) with the target's ``dataset_prefix``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry
from google.cloud import bigquery
from google.cloud.bigquery.table import RowIterator

from daglake.engine_settings import BigQuerySettings
from daglake.engines.base import (
    MATERIALIZE,
    Audit,
    Engine,
    Output,
    PythonSession,
    RowWriter,
    Statement,
)
from daglake.engines.bigquery_sql import TRANSIENT_REASONS, Sent, prepare, task_error
from daglake.errors import TaskError, UsageError
from daglake.lake.tables import LakeTable

CANDIDATE_SUFFIX = "__daglake_candidate"  # a table's new version while (or after failing) its audit

_LABEL = re.compile(r"[^a-z0-9_-]+")
_TRANSIENT = (
    google_errors.TooManyRequests,
    google_errors.InternalServerError,
    google_errors.BadGateway,
    google_errors.ServiceUnavailable,
    google_errors.GatewayTimeout,
)


def label(value: str) -> str:
    """A job label's value: lower case letters, digits, ``_`` and ``-``, at most 63."""
    return _LABEL.sub("_", value.lower())[:63]


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (*_TRANSIENT, google_errors.RetryError, ConnectionError)):
        return True
    errors = getattr(exc, "errors", None) or []
    return any(isinstance(e, dict) and e.get("reason") in TRANSIENT_REASONS for e in errors)


def _message(exc: BaseException) -> str:
    """BigQuery's own message, without the client's status code, job footer and the list of
    every error's fields it appends after ``; reason:`` (the first of which repeats it)."""
    message = getattr(exc, "message", None) or str(exc)
    return str(message).split("\n\nLocation:")[0].split("; reason: ")[0].strip()


FIRST_CONTACT_DEADLINE = 30.0  # seconds


class BigQueryEngine(Engine):
    name = "bigquery"
    dialect = "bigquery"

    settings: BigQuerySettings

    def __init__(self, settings: BigQuerySettings, root: Path, *, read_only: bool = False, lazy: bool = False) -> None:
        super().__init__(settings, root, read_only=read_only, lazy=lazy)
        from daglake.engines.bigquery_client import connect

        self.client = connect(settings, root)
        self.project = str(self.client.project)
        self.prefix = settings.dataset_prefix
        deadline = settings.retry_deadline
        self._first_wait = 0.2 if deadline < 60 else 1.0  # a short deadline (tests) backs off sooner
        self.retry = Retry(initial=self._first_wait, maximum=min(8.0, deadline), multiplier=2.0, timeout=deadline)
        # the first call of a command: an endpoint that is not there at all is said in seconds,
        # not after the whole retry deadline of silence
        self._first_contact = self.retry.with_timeout(min(deadline, FIRST_CONTACT_DEADLINE))
        self._parameters: dict[str, bigquery.ScalarQueryParameter] = {}
        self._labels: dict[str, str] = {"daglake": "run"}
        self._lock = threading.Lock()
        self.local: frozenset[str] = frozenset()  # the project's datasets (without the prefix)
        self._written: dict[str, bigquery.Table] = {}  # tables as read right after a task wrote them

    def forget_description(self, table: str) -> None:
        """``table`` is being written outside a SQL task: describe it afresh when asked."""
        with self._lock:
            self._written.pop(table.lower(), None)

    # -- names -------------------------------------------------------------------------
    def dataset(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _table_ref(self, table: str) -> str:
        dataset, _, name = table.rpartition(".")
        return f"{self.project}.{self.dataset(dataset)}.{name}"

    def quoted(self, table: str) -> str:
        """``tmp.x`` as SQL names it in this target: ```dev_tmp.x```."""
        dataset, _, name = table.rpartition(".")
        return f"`{self.dataset(dataset)}.{name}`"

    def prepared(self, sql: str) -> str:
        """SQL in BigQuery's dialect as this target sends it (see :func:`prepare`)."""
        return prepare(sql, self.prefix, self.local)

    def _datasets(self) -> list[str]:
        """The project's datasets daglake names (those with the prefix), without it."""
        found = self._call(lambda: list(self.client.list_datasets(retry=self._first_contact)), "listing datasets")
        names = [d.dataset_id for d in found]
        return [n[len(self.prefix):] for n in names if n.startswith(self.prefix)]

    def _call(self, call: Callable[[], Any], what: str) -> Any:
        """A client call whose failure to reach BigQuery at all is one line, not a traceback."""
        try:
            return call()
        except (google_errors.RetryError, ConnectionError, google_errors.Unauthorized, google_errors.Forbidden) as exc:
            where = self.settings.api_endpoint or "BigQuery"
            raise UsageError(f"{what} on {where} (project {self.project}) failed: {_message(exc)}") from exc

    # -- Engine --------------------------------------------------------------------------
    def existing_tables(self) -> set[str]:
        """One listing per dataset, listed in parallel; candidates left by failed audits are
        not tables of the project."""
        return {name for name in self._listed() if not name.endswith(CANDIDATE_SUFFIX)}

    def _listed(self) -> set[str]:
        datasets = self._datasets()
        self.local = self.local | {d.lower() for d in datasets}

        def tables(dataset: str) -> list[str]:
            listed = self.client.list_tables(self.dataset(dataset), retry=self.retry)
            return [f"{dataset}.{t.table_id}".lower() for t in listed]

        with ThreadPoolExecutor(max_workers=8) as pool:
            found = self._call(lambda: list(pool.map(tables, datasets)), "listing tables")
        return {name for names in found for name in names}

    def create_schemas(self, schemas: set[str]) -> None:
        """Each dataset created in ``location`` when missing; the project's datasets noted."""
        self.local = self.local | {s.lower() for s in schemas} | {d.lower() for d in self._datasets()}
        for schema in sorted(schemas):
            dataset = bigquery.Dataset(f"{self.project}.{self.dataset(schema)}")
            dataset.location = self.settings.location
            self._call(functools.partial(self.client.create_dataset, dataset, exists_ok=True, retry=self.retry), f"creating dataset {dataset.dataset_id}")

    def set_variables(self, variables: dict[str, Any]) -> None:
        with self._lock:
            for name, value in variables.items():
                kind = "DATE" if isinstance(value, dt.date) else "INT64" if isinstance(value, int) else "STRING"
                self._parameters[name] = bigquery.ScalarQueryParameter(name, kind, value)
                if name == "run_id":
                    self._labels["daglake_run"] = label(str(value))

    def job_config(self, parameters: tuple[str, ...] = (), *, task: str | None = None, dry_run: bool = False) -> bigquery.QueryJobConfig:
        with self._lock:
            labels = dict(self._labels)
            params = [self._parameters[p] for p in parameters if p in self._parameters]
        if task:
            labels["daglake_task"] = label(task)
        return bigquery.QueryJobConfig(
            query_parameters=params,
            labels=labels,
            maximum_bytes_billed=self.settings.maximum_bytes_billed,
            dry_run=dry_run,
            use_query_cache=not dry_run,
        )

    def statement_sql(self, statement: Statement, location: str) -> tuple[str, Sent]:
        """The SQL a statement is sent as, and where its text came from (to map BigQuery's
        positions back: how many characters daglake put before it on its first line)."""
        sql = self.prepared(statement.query)
        head = f"CREATE OR REPLACE TABLE {self.quoted(statement.target or '')} AS " if statement.kind == MATERIALIZE else ""
        return head + sql, Sent(location, statement.line, statement.column, len(head), statement.verbatim)

    def query(
        self,
        sql: str,
        sent: Sent,
        config: bigquery.QueryJobConfig,
        jobs: list[str] | None = None,
        max_results: int | None = None,
    ) -> tuple[bigquery.QueryJob, RowIterator]:
        """Run one query job to its end and return it with its rows (up to ``max_results``):
        transient failures (rate limits, 5xx, backend errors) resubmitted with backoff until
        the retry deadline, SQL errors never."""
        started = time.monotonic()
        wait = self._first_wait
        while True:
            job: bigquery.QueryJob | None = None
            try:
                job = self.client.query(sql, job_config=config, retry=self.retry, job_retry=None)
                if jobs is not None:
                    jobs.append(job.job_id)
                return job, job.result(retry=self.retry, job_retry=None, max_results=max_results)
            except google_errors.GoogleAPIError as exc:
                job_id = job.job_id if job is not None else None
                if _transient(exc) and time.monotonic() - started + wait < self.settings.retry_deadline:
                    time.sleep(wait)  # backoff before resubmitting: BigQuery asks for it
                    wait = min(wait * 2, 8.0)
                    continue
                if isinstance(exc, google_errors.RetryError | google_errors.Unauthorized | google_errors.Forbidden):
                    raise TaskError(f"BigQuery could not be reached: {_message(exc)}", sent.path or None, sent.line, job_id=job_id) from exc
                raise task_error(_message(exc), sent, job_id) from exc
            except ConnectionError as exc:
                raise TaskError(f"BigQuery could not be reached: {exc}", sent.path or None, sent.line) from exc

    def run_statements(
        self,
        statements: list[Statement],
        outputs: dict[str, Output],
        location: str,
        log: Callable[[str], None] | None = None,
        jobs: list[str] | None = None,
        audit: Audit | None = None,
    ) -> int | None:
        """Each statement a query job. With ``audit``, a query's table is built as its
        candidate (``tmp.x__daglake_candidate``), checked, then copied over the table in one
        copy job; tables a script writes with its own DDL/DML are checked after it ran."""
        rows: int | None = None
        staged: dict[str, str] = {}
        for statement in statements:
            if audit is not None and statement.kind == MATERIALIZE and statement.target:
                staged[statement.target] = statement.target + CANDIDATE_SUFFIX
                statement = dataclasses.replace(statement, target=staged[statement.target])
            sql, sent = self.statement_sql(statement, location)
            if log is not None:
                log(f"-- {location}:{statement.line}\n{sql};")
            started = time.perf_counter()
            config = self.job_config(statement.parameters, task=statement.target or location)
            job, _ = self.query(sql, sent, config, jobs)
            count = job.num_dml_affected_rows
            created = statement.kind == MATERIALIZE or job.statement_type == "CREATE_TABLE_AS_SELECT"
            if created and statement.target:  # BigQuery counts a new table's rows on the table
                table = self._call(functools.partial(self.client.get_table, self._table_ref(statement.target), retry=self.retry), "reading a table")
                count = table.num_rows
                with self._lock:
                    self._written[statement.target.lower()] = table
            if count is not None:
                rows = (rows or 0) + int(count)
            if log is not None:
                written = "" if count is None else f", {count} rows"
                log(f"-- job {job.job_id} done in {time.perf_counter() - started:.3f} s{written}")
        if audit is not None:
            audit(lambda sql: self.fetch(sql), staged)
            for table, candidate in staged.items():
                self._publish(candidate, table, jobs)
        return rows

    def _publish(self, candidate: str, table: str, jobs: list[str] | None) -> None:
        """The audited candidate replaces the table in one copy job (atomic, not billed)."""
        config = bigquery.CopyJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
        source, target = self._table_ref(candidate), self._table_ref(table)

        def copy() -> None:
            job = self.client.copy_table(source, target, job_config=config, retry=self.retry)
            if jobs is not None:
                jobs.append(job.job_id)
            job.result(retry=self.retry)

        self._call(copy, f"publishing {table}")
        self._call(functools.partial(self.client.delete_table, source, not_found_ok=True, retry=self.retry), f"dropping {candidate}")
        with self._lock:
            written = self._written.pop(candidate.lower(), None)
            if written is not None:
                self._written[table.lower()] = self._call(
                    functools.partial(self.client.get_table, target, retry=self.retry), "reading a table"
                )

    def candidate_sql(self, table: str) -> str | None:
        candidate = table + CANDIDATE_SUFFIX
        if candidate.lower() not in self._candidates():
            return None
        return f"SELECT * FROM `{candidate}`"  # as the project names it: fetch adds the prefix

    def _candidates(self) -> set[str]:
        return {name for name in self._listed() if name.endswith(CANDIDATE_SUFFIX)}

    def source_versions(self, tables: list[str]) -> dict[str, str | None]:
        """Last-modified time and row count from the tables' metadata (see :mod:`.bigquery_versions`)."""
        from daglake.engines.bigquery_versions import source_versions

        return source_versions(self, tables)

    def estimate(self, statements: list[Statement], location: str) -> int:
        """Bytes the statements would scan, from BigQuery's dry run (nothing is billed)."""
        total = 0
        for statement in statements:
            sql, sent = self.statement_sql(statement, location)
            config = self.job_config(statement.parameters, dry_run=True)
            try:
                job = self.client.query(sql, job_config=config, retry=self.retry, job_retry=None)
            except google_errors.GoogleAPIError as exc:
                raise task_error(_message(exc), sent, None) from exc
            total += int(job.total_bytes_processed or 0)
        return total

    def price_per_tib(self) -> float | None:
        return float(self.settings.price_per_tib)

    @contextlib.contextmanager
    def python_session(
        self, outputs: list[Output], location: str, jobs: list[str] | None = None, audit: Audit | None = None
    ) -> Iterator[PythonSession]:
        """Data a Python task returns is loaded into its table by a load job; its checks run
        after the load (a load job cannot be held back)."""
        from daglake.engines.bigquery_session import BigQuerySession

        session = BigQuerySession(self, location, jobs if jobs is not None else [])
        try:
            yield session
            if audit is not None:
                audit(lambda sql: self.fetch(sql), {})
        except google_errors.GoogleAPIError as exc:
            raise TaskError(_message(exc), location, job_id=getattr(exc, "job_id", None)) from exc

    def attach_lake(self, tables: list[LakeTable]) -> None:
        """Lake tables are refused at validation on BigQuery (no GCS lake yet): nothing to do."""

    def row_writer(self) -> RowWriter:
        from daglake.engines.bigquery_session import BigQueryRowWriter

        return BigQueryRowWriter(self)

    def table_info(self, names: Collection[str] | None = None) -> dict[str, dict[str, Any] | None]:
        """One listing per dataset, then one call per table described (``names``, else all)."""
        existing = self.existing_tables()
        wanted = existing if names is None else existing & {n.lower() for n in names}

        def describe(name: str) -> tuple[str, dict[str, Any]]:
            with self._lock:  # read when its task wrote it (this run's catalog): no second call
                table = self._written.pop(name, None)
            if table is None:
                table = self.client.get_table(self._table_ref(name), retry=self.retry)
            view = table.table_type == "VIEW"
            columns = [{"name": f.name, "type": f.field_type if f.mode != "REPEATED" else f"ARRAY<{f.field_type}>"} for f in table.schema]
            return name, {"kind": "view" if view else "table", "columns": columns, "rows": None if view else table.num_rows}

        with ThreadPoolExecutor(max_workers=8) as pool:
            described = dict(self._call(lambda: list(pool.map(describe, sorted(wanted))), "describing tables"))
        return {name: described.get(name) for name in sorted(existing)}

    def fetch(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        _, result = self.query(self.prepared(sql), Sent.generated(None), self.job_config(tuple(self._parameters)), max_results=limit)
        columns = [field.name for field in result.schema]
        return columns, [tuple(row.values()) for row in result]

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
