"""The few things the state store asks of a database, and the default one: SQLite through the
standard library's ``sqlite3``, which starts in milliseconds where SQLAlchemy's import takes a
quarter of a second. Other URLs (PostgreSQL) go through SQLAlchemy
(``state.sqlalchemy_database``); both run the same SQL, written once in ``state.schema`` and
``state.store``."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

Row = dict[str, Any]
Params = Mapping[str, Any]

# ``sqlite:///path`` and ``sqlite://`` (in memory); a query string or a driver name
# (``sqlite+pysqlite://``) is SQLAlchemy's to interpret.
_PLAIN_SQLITE = re.compile(r"sqlite://(?:/(?P<path>[^?]*))?")


class Database:
    """A connection that runs SQL with ``:name`` parameters; writes go inside
    ``transaction()``. Once open, the machine refusing a write raises ``EnvironmentProblem``."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self, migrate: Callable[[Database], int]) -> None:
        """Connect and bring the schema up to date, under the opening lock."""
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Params | None = None) -> list[Row]:
        raise NotImplementedError

    def has_table(self, table: str) -> bool:
        raise NotImplementedError

    def columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return self.url


def open_database(url: str, migrate: Callable[[Database], int]) -> Database:
    """The database at ``url``, open and migrated; ``EnvironmentProblem`` (exit 2) when the
    machine refuses it, ``UsageError`` when the URL or its schema is not usable."""
    if _PLAIN_SQLITE.fullmatch(url):
        database: Database = SQLiteDatabase(url)
    else:
        from daglake.state.sqlalchemy_database import SQLAlchemyDatabase

        database = SQLAlchemyDatabase(url)
    database.open(migrate)
    return database


@contextmanager
def opening_lock(database: str | None) -> Iterator[None]:
    """Serialize opening the state database: two runs, or a run and the API, starting on a
    new project must not both create its tables ("table runs already exists"), nor switch a
    new SQLite file to WAL while another connection migrates it ("database is locked": SQLite
    refuses that lock upgrade at once, without waiting). So the lock is taken before the first
    connection touches the file: a SQLite file is locked beside the database; PostgreSQL
    takes an advisory lock in the migrating transaction."""
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    from daglake.errors import EnvironmentProblem

    try:
        handle = open(f"{database}.lock", "a")  # noqa: SIM115 - closed below, after the yield
    except OSError as exc:
        raise EnvironmentProblem(f"cannot open the state database {database}: {exc.strerror}", exit_code=2) from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield


SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=10000",  # first: switching to WAL takes a lock too
    "PRAGMA journal_mode=WAL",  # readers never block the writing run
    "PRAGMA synchronous=NORMAL",  # durable across a process kill
)


def refused(url: str, cause: BaseException) -> Exception:
    """The machine refusing a write once the database is open (a full disk, a file made
    read-only, the server gone): one line naming the database; a run fails with it."""
    from daglake.errors import EnvironmentProblem

    return EnvironmentProblem(f"state database {url}: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}")


class SQLiteDatabase(Database):
    """SQLite through ``sqlite3``, in autocommit mode: each ``transaction()`` is one explicit
    ``BEGIN`` … ``COMMIT``, so a task's start or end is on disk when the call returns."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        match = _PLAIN_SQLITE.fullmatch(url)
        assert match is not None
        self.path = match["path"] or ":memory:"
        self._connection: sqlite3.Connection | None = None
        self._depth = 0
        self._opened = False

    def open(self, migrate: Callable[[Database], int]) -> None:
        from daglake.errors import EnvironmentProblem

        try:
            with opening_lock(self.path):
                connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._connection = connection
                for pragma in SQLITE_PRAGMAS:
                    connection.execute(pragma)
                with self.transaction():
                    migrate(self)
        except sqlite3.OperationalError as exc:
            if self._connection is not None:
                self._connection.close()
            # the machine refused (a full disk, a read-only folder): exit 2, nothing could start
            raise EnvironmentProblem(f"cannot open the state database {self.url}: {exc}", exit_code=2) from None
        self._opened = True

    @property
    def _con(self) -> sqlite3.Connection:
        assert self._connection is not None, "the state database is closed"
        return self._connection

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not self._opened:
                raise  # while opening: "cannot open the state database …"
            raise refused(self.url, exc) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:  # already inside one: part of it
            yield
            return
        with self._refusals():
            self._con.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if self._con.in_transaction:
                self._con.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            with self._refusals():
                self._con.execute("COMMIT")
        finally:
            if self._con.in_transaction:
                self._con.execute("ROLLBACK")

    def execute(self, sql: str, params: Params | None = None) -> int:
        with self._refusals():
            return self._con.execute(sql, params or {}).rowcount

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            with self._refusals():
                self._con.executemany(sql, rows)

    def query(self, sql: str, params: Params | None = None) -> list[Row]:
        with self._refusals():
            cursor = self._con.execute(sql, params or {})
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def has_table(self, table: str) -> bool:
        found = self.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = :name", {"name": table})
        return bool(found)

    def columns(self, table: str) -> set[str]:
        return {row["name"] for row in self.query(f'PRAGMA table_info("{table}")')}

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
