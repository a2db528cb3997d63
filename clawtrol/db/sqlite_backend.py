"""The `databases` SQLite backend, tuned for a multi-user web app.

The library's own backend opens a new aiosqlite connection — a new thread, `sqlite3.connect` and the
PRAGMAs — for every acquire, and compiles every statement with SQLAlchemy. This one keeps two long-lived
connections for the whole process:

- a **reader**, used directly on the event loop thread for statements outside a transaction. In WAL mode a
  reader never waits for a writer, and a primary-key read takes microseconds, far less than a hand-off to a
  worker thread. It is `query_only`, so a write that strays outside a transaction fails loudly instead of
  waiting for the write lock on the event loop;
- a **writer** (one aiosqlite worker thread) for transactions. Root transactions begin IMMEDIATE: with the
  library's plain BEGIN (deferred), a transaction that reads and then writes fails at once with "database is
  locked" when another writer holds the lock, ignoring the busy timeout; IMMEDIATE takes the write lock up
  front and waits for it (in the worker thread, not on the event loop). `Database` queues its transactions
  on an asyncio lock, so the writer serves one transaction at a time.

Named queries arrive already in SQLite's `:name` form (db/catalog.py) and run without SQLAlchemy.
Every connection enables foreign keys and a busy timeout (WAL mode is set once; it persists in the file).
"""

from __future__ import annotations

import os
import sqlite3
import typing
import uuid
from urllib.parse import urlencode

import aiosqlite
from databases.backends import sqlite as library
from databases.core import DatabaseURL
from databases.interfaces import TransactionBackend

BUSY_TIMEOUT_MS = 15_000


class TunedConnection(sqlite3.Connection):
    """sqlite3 connection factory: the per-connection PRAGMAs the app relies on."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA foreign_keys = ON")
        self.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.execute("PRAGMA synchronous = NORMAL")


Rows = list[dict[str, typing.Any]]


def run(connection: sqlite3.Connection, sql: str, params: dict[str, typing.Any]) -> Rows:
    cursor = connection.execute(sql, params)
    try:
        rows = cursor.fetchall()
        if not cursor.description:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in rows]
    finally:
        cursor.close()


def begin(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE on the writer. A request cancelled mid-transaction (its client went away) can leave
    the writer inside its transaction: its statements still ran in the writer thread, but its ROLLBACK never
    came. Runs in that thread after everything queued before it, so what is open here is such a leftover,
    never committed: roll it back first."""
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.execute("BEGIN IMMEDIATE")


class SQLitePool:
    """The process's two long-lived connections, opened on first use."""

    def __init__(self, url: DatabaseURL, **options: typing.Any) -> None:
        self._database = url.database
        if url.options:
            self._database += "?" + urlencode(url.options)
        self._options = {"factory": TunedConnection, "timeout": BUSY_TIMEOUT_MS / 1000, **options}
        self._path = None if url.database in ("", ":memory:") or url.options else url.database
        self._inode: int | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: aiosqlite.Connection | None = None
        self.opened = 0  # connections opened so far (tests check they are reused)

    async def check_file(self) -> None:
        """Long-lived connections keep a removed or replaced database file open: notice that, and start over
        on whatever is at the path now (a restored backup, or nothing: then opening reports it)."""
        if self._path is None or (self._reader is None and self._writer is None):
            return
        try:
            inode = os.stat(self._path).st_ino
        except OSError:
            inode = None
        if inode != self._inode:
            await self.close()

    def _note_file(self) -> None:
        if self._path is not None and self._inode is None:
            self._inode = os.stat(self._path).st_ino

    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            reader = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False,
                                     **self._options)
            reader.execute("PRAGMA query_only = ON")
            self._reader = reader
            self.opened += 1
            self._note_file()
        return self._reader

    async def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            writer = aiosqlite.connect(database=self._database, isolation_level=None, **self._options)
            writer._thread.daemon = True  # a writer left open never holds up interpreter exit
            await writer.__aenter__()
            self._writer = writer
            self.opened += 1
            self._note_file()
        return self._writer

    async def close(self) -> None:
        self._inode = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writer is not None:
            await self._writer.close()
            self._writer = None


class TunedSQLiteConnection(library.SQLiteConnection):
    """A task's handle on the pool. Outside a transaction statements go to the reader; inside, to the writer."""

    def __init__(self, pool: SQLitePool, dialect: typing.Any):
        super().__init__(pool, dialect)  # type: ignore[arg-type]
        self.transaction_depth = 0

    async def acquire(self) -> None:
        assert self._connection is None, "Connection is already acquired"
        await self._pool.check_file()  # type: ignore[attr-defined]
        self._connection = await self._pool.writer()  # type: ignore[attr-defined]

    async def release(self) -> None:
        assert self._connection is not None, "Connection is not acquired"
        self._connection = None

    async def run_named(self, sql: str, params: dict[str, typing.Any]) -> Rows:
        if self.transaction_depth:
            writer = self._connection
            assert writer is not None, "Connection is not acquired"
            return await writer._execute(run, writer._conn, sql, params)
        return run(self._pool.reader(), sql, params)  # type: ignore[attr-defined]

    async def write(self, sql: str) -> None:
        """A transaction-control statement on the writer."""
        writer = self._connection
        assert writer is not None, "Connection is not acquired"
        if sql == "BEGIN IMMEDIATE":
            await writer._execute(begin, writer._conn)
        else:
            await writer._execute(run, writer._conn, sql, {})

    def transaction(self) -> "ImmediateTransaction":
        return ImmediateTransaction(self)


class ImmediateTransaction(TransactionBackend):
    def __init__(self, connection: TunedSQLiteConnection):
        self._connection = connection
        self._savepoint: str | None = None

    async def start(self, is_root: bool, extra_options: dict[typing.Any, typing.Any]) -> None:
        if is_root:
            await self._connection.write("BEGIN IMMEDIATE")
        else:
            self._savepoint = f"sp_{uuid.uuid4().hex}"
            await self._connection.write(f"SAVEPOINT {self._savepoint}")
        self._connection.transaction_depth += 1

    async def commit(self) -> None:
        self._connection.transaction_depth -= 1
        if self._savepoint is None:
            await self._connection.write("COMMIT")
        else:
            await self._connection.write(f"RELEASE SAVEPOINT {self._savepoint}")

    async def rollback(self) -> None:
        self._connection.transaction_depth -= 1
        if self._savepoint is None:
            await self._connection.write("ROLLBACK")
        else:
            await self._connection.write(f"ROLLBACK TO SAVEPOINT {self._savepoint}")
            await self._connection.write(f"RELEASE SAVEPOINT {self._savepoint}")


class SQLiteBackend(library.SQLiteBackend):
    def __init__(self, database_url: typing.Any, **options: typing.Any) -> None:
        super().__init__(database_url, **options)
        self._pool = SQLitePool(self._database_url, **self._options)  # type: ignore[assignment]

    async def disconnect(self) -> None:
        await self._pool.close()  # type: ignore[attr-defined]

    def connection(self) -> TunedSQLiteConnection:
        return TunedSQLiteConnection(self._pool, self._dialect)  # type: ignore[arg-type]
