"""The app's database handle: named queries over `databases`, the same calls on SQLite and PostgreSQL.

Rules the helpers enforce, because the two backends differ underneath (see README, "Writing SQL"):
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
from sqlalchemy import Boolean, Integer, String, bindparam

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
    """`databases.Database` with our tuned SQLite backend (BEGIN IMMEDIATE, PRAGMAs)."""

    SUPPORTED_BACKENDS = {
        **databases.Database.SUPPORTED_BACKENDS,
        "sqlite": "clawtrol.db.sqlite_backend:SQLiteBackend",
    }


@contextlib.contextmanager
def translate_errors() -> typing.Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE constraint failed" in str(exc):
            raise UniqueViolation(str(exc)) from exc
        raise
    except asyncpg.UniqueViolationError as exc:
        raise UniqueViolation(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        if "unable to open database" in str(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _as_dict(record: typing.Any) -> dict[str, typing.Any]:
    """A result row as a plain dict, without the per-column lookups of databases' Record.__getitem__
    (they dominate the cost of wide rows). SQLite rows wrap an SQLAlchemy Row (names in `_fields`);
    PostgreSQL rows wrap an asyncpg Record (with items())."""
    raw = record._mapping
    fields = getattr(raw, "_fields", None)
    return dict(zip(fields, raw)) if fields is not None else dict(raw.items())


def _element_type(values: list) -> typing.Any:
    """SQL type of a list parameter's elements. An empty list renders as an empty IN subquery whose
    type PostgreSQL checks against the column, so it defaults to text (all our ids are text)."""
    if values and isinstance(values[0], bool):
        return Boolean()
    if values and isinstance(values[0], int):
        return Integer()
    return String()


_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("clawtrol_in_transaction", default=False)


class Database:
    # Names of the queries run in this process; the test suite checks every query is exercised.
    executed: typing.ClassVar[set[str]] = set()

    def __init__(self, url: str, catalog: QueryCatalog, *, pool_size: int = 20):
        self.url = url
        self.catalog = catalog
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgres"
        options: dict[str, typing.Any] = {}
        if self.dialect == "postgres":
            options = {"min_size": 1, "max_size": pool_size, "timeout": 5, "command_timeout": 60}
        self._db = _Databases(url, **options)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def connect(self) -> None:
        with translate_errors():
            await self._db.connect()
            if self.is_sqlite:
                async with self._db.connection() as conn:
                    await conn.raw_connection.execute("PRAGMA journal_mode = WAL")

    async def disconnect(self) -> None:
        await self._db.disconnect()

    def _statement(self, name: str, params: dict[str, typing.Any]) -> typing.Any:
        query = self.catalog[name]
        supplied = params.keys()
        if supplied != query.params:
            missing = sorted(query.params - supplied)
            unknown = sorted(supplied - query.params)
            raise TypeError(f"query {name}: missing parameters {missing}, unknown parameters {unknown}")
        clause = query.clause
        expanding = [key for key, value in params.items() if isinstance(value, (list, tuple, set, frozenset))]
        if expanding:
            params = {k: list(v) if k in expanding else v for k, v in params.items()}
            clause = clause.bindparams(*(
                bindparam(key, expanding=True, type_=_element_type(params[key])) for key in expanding))
        self.executed.add(name)
        return clause.bindparams(**params) if params else clause

    async def all(self, name: str, /, **params: typing.Any) -> list[dict[str, typing.Any]]:
        statement = self._statement(name, params)
        with translate_errors():
            return [_as_dict(row) for row in await self._db.fetch_all(statement)]

    async def one(self, name: str, /, **params: typing.Any) -> dict[str, typing.Any] | None:
        statement = self._statement(name, params)
        with translate_errors():
            row = await self._db.fetch_one(statement)
        return _as_dict(row) if row is not None else None

    async def value(self, name: str, /, **params: typing.Any) -> typing.Any:
        statement = self._statement(name, params)
        with translate_errors():
            return await self._db.fetch_val(statement)

    async def changed(self, name: str, /, **params: typing.Any) -> int:
        """Run an INSERT/UPDATE/DELETE written with `RETURNING ...` and return how many rows it touched."""
        statement = self._statement(name, params)
        if self._write_lock is not None and not _in_transaction.get():
            async with self.transaction():  # a lone write queues with the other writers (see transaction)
                with translate_errors():
                    return len(await self._db.fetch_all(statement))
        with translate_errors():
            return len(await self._db.fetch_all(statement))

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
                async with self._db.connection() as conn:
                    async with conn.raw_connection.transaction():
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
        """Pin one connection for the current task (a request), so its queries share it."""
        with translate_errors():
            async with self._db.connection() as conn:
                yield conn

    async def ping(self) -> float:
        """Round-trip a trivial query; return milliseconds."""
        started = time.perf_counter()
        await self.value("health.ping")
        return (time.perf_counter() - started) * 1000
