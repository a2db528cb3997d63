"""The app's database handle: named queries over `databases`, the same calls on SQLite and PostgreSQL.

Rules the helpers enforce, because the two backends differ underneath (see README, "Writing SQL"):
- each named query is prepared once for the dialect (db/catalog.py) and runs on the driver without
  SQLAlchemy compiling it per call;
- results come back as plain dicts;
- "rows changed" is counted from a RETURNING clause, never from execute()'s backend-specific result;
- list parameters are expanded (`WHERE id IN :ids`);
- unique-constraint errors surface as `UniqueViolation`, lost connections as `DatabaseUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import time
import typing
from collections.abc import AsyncIterator

import asyncpg
import databases

from ..paths import SQL_QUERIES
from .catalog import QueryCatalog


class UniqueViolation(Exception):
    """A row with the same unique key already exists (both backends)."""


class DatabaseUnavailable(Exception):
    """The database could not be reached; callers answer 503 and retry later."""


_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InternalClientError,  # a pooled connection the server closed mid-protocol (e.g. at shutdown)
)


class _Databases(databases.Database):
    """`databases.Database` with our backends: SQLite with long-lived connections (db/sqlite_backend.py),
    PostgreSQL with a fast path for named queries."""

    SUPPORTED_BACKENDS = {
        **databases.Database.SUPPORTED_BACKENDS,
        "sqlite": "clawtrol.db.sqlite_backend:SQLiteBackend",
        "postgresql": "clawtrol.db.postgres_backend:PostgresBackend",
        "postgres": "clawtrol.db.postgres_backend:PostgresBackend",
    }


class translate_errors:  # noqa: N801 - used as `with translate_errors():`, like a function
    """Driver errors as the app's: unique-constraint errors become `UniqueViolation`, lost or unreachable
    databases `DatabaseUnavailable`. A class, not a generator: it wraps every query."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None:
            return False
        if isinstance(exc, sqlite3.IntegrityError):
            if "UNIQUE constraint failed" in str(exc):
                raise UniqueViolation(str(exc)) from exc
        elif isinstance(exc, asyncpg.UniqueViolationError):
            raise UniqueViolation(str(exc)) from exc
        elif isinstance(exc, sqlite3.OperationalError):
            if "unable to open database" in str(exc):
                raise DatabaseUnavailable(str(exc)) from exc
        elif isinstance(exc, _UNAVAILABLE):
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return False


def dialect_of(url: str) -> str:
    """The SQL dialect a database URL speaks: "sqlite" or "postgres"."""
    return "sqlite" if url.startswith("sqlite") else "postgres"


_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("clawtrol_in_transaction", default=False)
# PostgreSQL: the asyncpg connection a task holds (a request pins one for all its queries), with that task.
# Tasks it starts inherit the variable but not the connection: they see another owner and take their own.
_held: contextvars.ContextVar[tuple[asyncio.Task | None, asyncpg.Connection] | None] = contextvars.ContextVar(
    "clawtrol_postgres_connection", default=None)


class Pinned(typing.NamedTuple):
    """A task's pinned PostgreSQL connection (`Database.pin`), and how to restore what the task held before."""

    marker: contextvars.Token
    connection: asyncpg.Connection


class HeldConnection(typing.NamedTuple):
    """What `Database.connection()` yields on PostgreSQL: the driver's connection, as `databases` names it."""

    raw_connection: asyncpg.Connection


async def _fetch(connection: asyncpg.Connection, sql: str, args: list[typing.Any]) -> list[dict[str, typing.Any]]:
    return [dict(record.items()) for record in await connection.fetch(sql, *args)]


class Database:
    # Names of the queries run in this process; the test suite checks every query is exercised.
    executed: typing.ClassVar[set[str]] = set()

    def __init__(self, url: str, catalog: QueryCatalog, *, pool_size: int = 20):
        self.url = url
        self.catalog = catalog
        self.dialect = dialect_of(url)
        options: dict[str, typing.Any] = {}
        if self.dialect == "postgres":
            options = {"min_size": 1, "max_size": pool_size, "timeout": 5, "command_timeout": 60}
        self._db = _Databases(url, **options)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # SQLite reads outside a transaction go straight to the read-only connection (sqlite_backend.py).
        self._sqlite_pool = self._db._backend._pool if self.dialect == "sqlite" else None
        self._postgres_pool: asyncpg.Pool | None = None  # asyncpg's pool, once connected

    @classmethod
    def open(cls, url: str, *, pool_size: int = 20) -> Database:
        """The app's database at URL, with the named queries of sql/queries/ for its dialect. Not connected yet:
        call connect() (and disconnect() when done)."""
        return cls(url, QueryCatalog.load(SQL_QUERIES, dialect_of(url)), pool_size=pool_size)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def connect(self) -> None:
        with translate_errors():
            await self._db.connect()
            if self.is_sqlite:
                async with self._db.connection() as conn:
                    await conn.raw_connection.execute("PRAGMA journal_mode = WAL")
            else:
                self._postgres_pool = self._db._backend._pool

    async def disconnect(self) -> None:
        await self._db.disconnect()

    async def _run(self, name: str, params: dict[str, typing.Any]) -> list[dict[str, typing.Any]]:
        """Run a named query on the calling task's connection (the request's pinned one, or a transaction's).
        On SQLite a write outside a transaction gets one (writes queue for the single writer connection), and
        a read outside a transaction runs on the read-only connection."""
        statement = self.catalog[name]
        if params.keys() != statement.params:
            missing = sorted(statement.params - params.keys())
            unknown = sorted(params.keys() - statement.params)
            raise TypeError(f"query {name}: missing parameters {missing}, unknown parameters {unknown}")
        self.executed.add(name)
        if self._write_lock is not None and statement.writes and not _in_transaction.get():
            async with self.transaction():
                return await self._run(name, params)
        sql, args = statement.bind(params)
        if self._sqlite_pool is not None:
            with translate_errors():
                if not _in_transaction.get():
                    return await self._sqlite_pool.read(sql, args)
                async with self._db.connection() as connection:  # the transaction's: the writer
                    return await connection._connection.run_named(sql, args)
        held = _held.get()
        with translate_errors():
            if held is not None and held[0] is asyncio.current_task():
                return await _fetch(held[1], sql, args)
            async with self._postgres_connection() as connection:
                return await _fetch(connection, sql, args)

    async def all(self, name: str, /, **params: typing.Any) -> list[dict[str, typing.Any]]:
        return await self._run(name, params)

    async def one(self, name: str, /, **params: typing.Any) -> dict[str, typing.Any] | None:
        rows = await self._run(name, params)
        return rows[0] if rows else None

    async def value(self, name: str, /, **params: typing.Any) -> typing.Any:
        rows = await self._run(name, params)
        return next(iter(rows[0].values()), None) if rows else None

    async def changed(self, name: str, /, **params: typing.Any) -> int:
        """Run an INSERT/UPDATE/DELETE written with `RETURNING ...` and return how many rows it touched."""
        return len(await self._run(name, params))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """All statements in the block commit together. Keep the work in the calling asyncio task:
        work spawned into other tasks runs on other connections, outside the transaction.

        On SQLite every transaction takes the database's single write lock (BEGIN IMMEDIATE); queueing
        them on an asyncio lock first means waiting writers sleep in the event loop instead of polling
        SQLite's busy handler, which made tail latency under concurrent writes seconds long."""
        if self._write_lock is None:
            # asyncpg's own transaction on the task's pooled connection: `databases`' Transaction leaks the
            # connection (never released to the pool) when BEGIN, COMMIT or ROLLBACK fails on a dead connection.
            with translate_errors():
                async with self._postgres_connection() as connection:
                    async with connection.transaction():
                        yield
            return
        if _in_transaction.get():
            with translate_errors():
                async with self._db.transaction():
                    yield
            return
        async with self._write_lock:
            marker = _in_transaction.set(True)
            try:
                with translate_errors():
                    async with self._db.transaction():
                        yield
            finally:
                _in_transaction.reset(marker)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[typing.Any]:
        """Pin one connection for the current task (a request), so its queries share it. Yields an object
        whose `raw_connection` is the driver's connection."""
        if self.is_sqlite:
            with translate_errors():
                async with self._db.connection() as conn:
                    yield conn
            return
        with translate_errors():
            async with self._postgres_connection() as connection:
                yield HeldConnection(connection)

    async def pin(self) -> Pinned | None:
        """PostgreSQL: take a connection from the pool for the calling task until `unpin`; the task's queries
        and transactions all run on it (a request pins one in its first hook: app.py). Tasks it starts take
        their own. Straight from asyncpg's pool: `databases`' per-task wrapper (three locks, a map weakly
        keyed by task, a counter) cost as much as the pool itself. SQLite: nothing to pin (None)."""
        if self._postgres_pool is None:
            if self.is_sqlite:
                return None
            raise DatabaseUnavailable("not connected")
        with translate_errors():
            connection = await self._postgres_pool.acquire()
        return Pinned(_held.set((asyncio.current_task(), connection)), connection)

    async def unpin(self, pinned: Pinned | None) -> None:
        if pinned is None:
            return
        try:
            _held.reset(pinned.marker)  # raises if unpinned in another context than it was pinned in
        finally:
            with translate_errors():
                await self._postgres_pool.release(pinned.connection)

    @contextlib.asynccontextmanager
    async def _postgres_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The calling task's connection: the one it pinned, else one pinned for the block."""
        held = _held.get()
        if held is not None and held[0] is asyncio.current_task():
            yield held[1]
            return
        pinned = await self.pin()
        try:
            yield pinned.connection
        finally:
            await self.unpin(pinned)

    async def ping(self) -> float:
        """Round-trip a trivial query; return milliseconds."""
        started = time.perf_counter()
        await self.value("health.ping")
        return (time.perf_counter() - started) * 1000
