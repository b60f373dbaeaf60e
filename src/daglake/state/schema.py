"""The metadata database's tables and the migrations that bring an older database up to date.

Each migration is a function of a database, applied once, in order, inside one transaction;
``daglake_schema.version`` records how far a database has come. Never edit a released
migration: add the next one. The DDL is what SQLAlchemy generated for these tables when it
created them, the same text in SQLite and PostgreSQL, so a database made by either opens with
the other's code unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from daglake.state.database import Database

SCHEMA_VERSION = """CREATE TABLE IF NOT EXISTS daglake_schema (
	version INTEGER NOT NULL
)"""

RUNS = """CREATE TABLE runs (
	id VARCHAR(64) NOT NULL,
	project VARCHAR(255) NOT NULL,
	logical_date VARCHAR(10) NOT NULL,
	selection TEXT NOT NULL,
	state VARCHAR(32) NOT NULL,
	"trigger" VARCHAR(32) NOT NULL,
	started_at FLOAT NOT NULL,
	ended_at FLOAT,
	pid INTEGER,
	host VARCHAR(255),
	error TEXT,
	PRIMARY KEY (id)
)"""  # selection: JSON of select, exclude, full_refresh, ...

TASK_RUNS = """CREATE TABLE task_runs (
	run_id VARCHAR(64) NOT NULL,
	task VARCHAR(512) NOT NULL,
	path VARCHAR(1024) NOT NULL,
	state VARCHAR(32) NOT NULL,
	attempts INTEGER NOT NULL,
	started_at FLOAT,
	ended_at FLOAT,
	duration FLOAT,
	rows BIGINT,
	error TEXT,
	location VARCHAR(1100),
	reason TEXT,
	metrics TEXT,
	PRIMARY KEY (run_id, task),
	FOREIGN KEY(run_id) REFERENCES runs (id)
)"""  # metrics: added in v3

ATTEMPTS = """CREATE TABLE attempts (
	run_id VARCHAR(64) NOT NULL,
	task VARCHAR(512) NOT NULL,
	number INTEGER NOT NULL,
	state VARCHAR(32) NOT NULL,
	started_at FLOAT NOT NULL,
	ended_at FLOAT,
	duration FLOAT,
	rows BIGINT,
	error TEXT,
	location VARCHAR(1100),
	log_path VARCHAR(1024),
	job_ids TEXT,
	PRIMARY KEY (run_id, task, number)
)"""  # job_ids: added in v4, JSON list of the engine's job ids (BigQuery)

TASK_STATS = """CREATE TABLE task_stats (
	project VARCHAR(255) NOT NULL,
	task VARCHAR(512) NOT NULL,
	last_duration FLOAT NOT NULL,
	last_success_at FLOAT NOT NULL,
	PRIMARY KEY (project, task)
)"""

CHECK_RESULTS = """CREATE TABLE check_results (
	run_id VARCHAR(64) NOT NULL,
	name VARCHAR(1024) NOT NULL,
	table_name VARCHAR(512) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	severity VARCHAR(8) NOT NULL,
	passed BOOLEAN NOT NULL,
	failing BIGINT NOT NULL,
	sample TEXT NOT NULL,
	error TEXT,
	checked_at FLOAT NOT NULL,
	PRIMARY KEY (run_id, name)
)"""  # sample: JSON, up to 5 failing rows

BUILDS = """CREATE TABLE IF NOT EXISTS builds (
	project VARCHAR(255) NOT NULL,
	target VARCHAR(255) NOT NULL,
	task VARCHAR(512) NOT NULL,
	fingerprint VARCHAR(64) NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	finished_at FLOAT NOT NULL,
	parts TEXT NOT NULL,
	PRIMARY KEY (project, target, task)
)"""  # target: engine and target ("duckdb", "bigquery:prod"); parts: JSON of what was hashed

TABLE_VERSIONS = """CREATE TABLE IF NOT EXISTS table_versions (
	project VARCHAR(255) NOT NULL,
	table_name VARCHAR(512) NOT NULL,
	version BIGINT NOT NULL,
	changed_at FLOAT NOT NULL,
	PRIMARY KEY (project, table_name)
)"""  # version: bumped by every append through the API


def _v1(database: Database) -> None:
    """Runs, task runs and attempts."""
    for ddl in (RUNS, "CREATE INDEX ix_runs_project ON runs (project)", TASK_RUNS, ATTEMPTS):
        database.execute(ddl)


def _v2(database: Database) -> None:
    """Last successful duration per task, the weights of critical-path scheduling."""
    database.execute(TASK_STATS)
    database.execute("CREATE INDEX IF NOT EXISTS ix_task_runs_state ON task_runs (run_id, state)")


def _v3(database: Database) -> None:
    """Check results per run, and what Python tasks count (``ctx.metric``) per task run."""
    database.execute(CHECK_RESULTS)
    if "metrics" not in database.columns("task_runs"):  # a database made before v3 (v1 now creates the column)
        database.execute("ALTER TABLE task_runs ADD COLUMN metrics TEXT")


def _v4(database: Database) -> None:
    """The engine's job ids per attempt (BigQuery), to find a job in the console."""
    if "job_ids" not in database.columns("attempts"):  # a database made before v4 (v1 now creates the column)
        database.execute("ALTER TABLE attempts ADD COLUMN job_ids TEXT")


def _v5(database: Database) -> None:
    """The last successful build of each task (its fingerprint: only what changed runs), and
    a change counter per table that rows are appended to through the API."""
    database.execute(BUILDS)
    database.execute(TABLE_VERSIONS)


MIGRATIONS: list[Callable[[Database], None]] = [_v1, _v2, _v3, _v4, _v5]
LATEST = len(MIGRATIONS)


def current_version(database: Database) -> int:
    if not database.has_table("daglake_schema"):
        return 0
    found = database.query("SELECT version FROM daglake_schema")
    return int(found[0]["version"] or 0) if found else 0


def migrate(database: Database, target: int = LATEST) -> int:
    """Apply pending migrations up to ``target``; return the version reached."""
    version = current_version(database)
    if version > LATEST:
        from daglake.errors import UsageError

        raise UsageError(
            f"the state database is at schema version {version}, newer than this daglake "
            f"({LATEST}); upgrade daglake"
        )
    if version == 0:
        database.execute(SCHEMA_VERSION)
        database.execute("INSERT INTO daglake_schema (version) VALUES (0)")
    for number in range(version + 1, target + 1):
        MIGRATIONS[number - 1](database)
        database.execute("UPDATE daglake_schema SET version = :version", {"version": number})
    return max(version, target)
