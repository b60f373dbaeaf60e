"""The state database at any SQLAlchemy URL (PostgreSQL, or SQLite with a driver or options in
its URL): SQLAlchemy's connection pool, dialects and drivers, the same SQL as ``sqlite3``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from daglake.state.database import SQLITE_PRAGMAS, Database, Params, Row, opening_lock, refused

MIGRATION_LOCK_KEY = 0x6461676C616B65  # "daglake": PostgreSQL's advisory lock for migrations


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


class SQLAlchemyDatabase(Database):
    def __init__(self, url: str) -> None:
        from daglake.errors import UsageError

        super().__init__(url)
        try:
            self._engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise UsageError(f"state database URL {self.safe_url()!r} is not usable: {exc}") from None
        self.dialect = self._engine.dialect.name
        if self.dialect == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)

    def open(self, migrate: Callable[[Database], int]) -> None:
        from daglake.errors import EnvironmentProblem

        try:
            with opening_lock(self._engine.url.database if self.dialect == "sqlite" else None):
                self._connection = self._engine.connect()  # the connect hook switches to WAL
                with self._connection.begin():
                    if self.dialect == "postgresql":
                        self._connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    migrate(self)
        except sa.exc.OperationalError as exc:
            # the server is down or refuses us: the machine's answer, exit 2
            raise EnvironmentProblem(f"cannot open the state database {self.safe_url()}: {exc.orig}", exit_code=2) from None
        sa.event.listen(self._engine, "handle_error", self._refused)

    def _refused(self, context: sa.engine.ExceptionContext) -> None:
        if isinstance(context.sqlalchemy_exception, sa.exc.OperationalError):
            raise refused(self.safe_url(), context.original_exception)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._connection.in_transaction():
            yield
            return
        with self._connection.begin():
            yield

    def execute(self, sql: str, params: Params | None = None) -> int:
        return int(self._connection.execute(sa.text(sql), dict(params or {})).rowcount)

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._connection.execute(sa.text(sql), [dict(r) for r in rows])

    def query(self, sql: str, params: Params | None = None) -> list[Row]:
        """Outside a transaction a read ends the one it began, so the next write can begin its own."""
        inside = self._connection.in_transaction()
        try:
            return [dict(r) for r in self._connection.execute(sa.text(sql), dict(params or {})).mappings()]
        finally:
            if not inside and self._connection.in_transaction():
                self._connection.rollback()

    def has_table(self, table: str) -> bool:
        return bool(sa.inspect(self._connection).has_table(table))

    def columns(self, table: str) -> set[str]:
        return {c["name"] for c in sa.inspect(self._connection).get_columns(table)}

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()

    def safe_url(self) -> str:
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # not even a URL: show nothing of it that could be a secret
            return "<invalid URL>"
