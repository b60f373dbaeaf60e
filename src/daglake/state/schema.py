"""The metadata database's tables and the migrations that bring an older database up to date.

Each migration is a function of a connection, applied once, in order, inside one transaction;
``daglake_schema.version`` records how far a database has come. Never edit a released
migration: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "daglake_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(255), nullable=False, index=True),
    sa.Column("logical_date", sa.String(10), nullable=False),
    sa.Column("selection", sa.Text, nullable=False),  # JSON: select, exclude, full_refresh, ...
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
    sa.Column("error", sa.Text),
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("task", sa.String(512), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("duration", sa.Float),
    sa.Column("rows", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("location", sa.String(1100)),
    sa.Column("reason", sa.Text),
    sa.Column("metrics", sa.Text),  # added in v3
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("task", sa.String(512), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("duration", sa.Float),
    sa.Column("rows", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("location", sa.String(1100)),
    sa.Column("log_path", sa.String(1024)),
    sa.Column("job_ids", sa.Text),  # added in v4: JSON list of the engine's job ids (BigQuery)
)

task_stats = sa.Table(
    "task_stats",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("task", sa.String(512), primary_key=True),
    sa.Column("last_duration", sa.Float, nullable=False),
    sa.Column("last_success_at", sa.Float, nullable=False),
)


check_results = sa.Table(
    "check_results",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(1024), primary_key=True),
    sa.Column("table_name", sa.String(512), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("failing", sa.BigInteger, nullable=False),
    sa.Column("sample", sa.Text, nullable=False),  # JSON: up to 5 failing rows
    sa.Column("error", sa.Text),
    sa.Column("checked_at", sa.Float, nullable=False),
)

builds = sa.Table(
    "builds",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("target", sa.String(255), primary_key=True),  # engine and target: "duckdb", "bigquery:prod"
    sa.Column("task", sa.String(512), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("parts", sa.Text, nullable=False),  # JSON: what the fingerprint hashes, to say what changed
)

table_versions = sa.Table(
    "table_versions",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("table_name", sa.String(512), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),  # bumped by every append through the API
    sa.Column("changed_at", sa.Float, nullable=False),
)


def _v1(connection: sa.Connection) -> None:
    """Runs, task runs and attempts."""
    for table in (runs, task_runs, attempts):
        table.create(connection)


def _v2(connection: sa.Connection) -> None:
    """Last successful duration per task, the weights of critical-path scheduling."""
    task_stats.create(connection)
    connection.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_task_runs_state ON task_runs (run_id, state)"
        )
    )


def _v3(connection: sa.Connection) -> None:
    """Check results per run, and what Python tasks count (``ctx.metric``) per task run."""
    check_results.create(connection)
    columns = {c["name"] for c in sa.inspect(connection).get_columns("task_runs")}
    if "metrics" not in columns:  # a database made before v3 (v1 now creates the column)
        connection.execute(sa.text("ALTER TABLE task_runs ADD COLUMN metrics TEXT"))


def _v4(connection: sa.Connection) -> None:
    """The engine's job ids per attempt (BigQuery), to find a job in the console."""
    columns = {c["name"] for c in sa.inspect(connection).get_columns("attempts")}
    if "job_ids" not in columns:  # a database made before v4 (v1 now creates the column)
        connection.execute(sa.text("ALTER TABLE attempts ADD COLUMN job_ids TEXT"))


def _v5(connection: sa.Connection) -> None:
    """The last successful build of each task (its fingerprint: only what changed runs), and
    a change counter per table that rows are appended to through the API."""
    builds.create(connection, checkfirst=True)
    table_versions.create(connection, checkfirst=True)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1, _v2, _v3, _v4, _v5]
LATEST = len(MIGRATIONS)


def current_version(connection: sa.Connection) -> int:
    if not sa.inspect(connection).has_table(schema_version.name):
        return 0
    found = connection.execute(sa.select(schema_version.c.version)).scalar()
    return int(found or 0)


def migrate(connection: sa.Connection, target: int = LATEST) -> int:
    """Apply pending migrations up to ``target``; return the version reached."""
    version = current_version(connection)
    if version > LATEST:
        from daglake.errors import UsageError

        raise UsageError(
            f"the state database is at schema version {version}, newer than this daglake "
            f"({LATEST}); upgrade daglake"
        )
    if version == 0:
        schema_version.create(connection, checkfirst=True)
        connection.execute(schema_version.insert().values(version=0))
    for number in range(version + 1, target + 1):
        MIGRATIONS[number - 1](connection)
        connection.execute(schema_version.update().values(version=number))
    return max(version, target)
