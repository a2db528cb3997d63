"""The `databases` SQLite backend, tuned for a multi-user web app on one process.

The library's own backend opens a new aiosqlite connection — a new thread, `sqlite3.connect` and the
PRAGMAs — for every acquire, compiles every statement with SQLAlchemy, and hands every statement to that
thread and back. A primary-key read costs microseconds in SQLite and a millisecond in that machinery. This
backend keeps two long-lived connections for the whole process and uses them on the event loop thread:

- a **reader** for statements outside a transaction. In WAL mode a reader never waits for a writer. It is
  `query_only`, so a write that strays outside a transaction fails loudly instead of taking the write lock.
- a **writer** for transactions, which `Database` queues on an asyncio lock, so it serves one transaction at
  a time. Root transactions begin IMMEDIATE (the library's deferred BEGIN fails at once with "database is
  locked" when a transaction that read first tries to write). The write lock is taken without waiting when
  it is free — it always is, unless another process (a CLI import, a second worker) holds it; then the
  wait happens in a worker thread, never on the event loop. Once held, nothing in the transaction waits.
- **checkpoints** run in a worker thread on a connection of their own, every few seconds after commits,
  instead of inside a commit on the event loop (`wal_autocheckpoint` is off on the writer).

Named queries arrive already in SQLite's `:name` form (db/catalog.py) and run without SQLAlchemy.
Every connection enables foreign keys; WAL mode is set once (it persists in the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import typing
import uuid
from urllib.parse import urlencode

from databases.core import DatabaseURL
from databases.interfaces import ConnectionBackend, DatabaseBackend, TransactionBackend
from sqlalchemy.sql.elements import TextClause

from .. import background

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 15_000  # how long a transaction waits for another process's write lock (in a thread)
WRITER_BUSY_TIMEOUT_MS = 50  # on the event loop: only ever spent when another process holds a lock
CHECKPOINT_EVERY = 2.0  # seconds between background checkpoints, when something was committed

Rows = list[dict[str, typing.Any]]


class TunedConnection(sqlite3.Connection):
    """sqlite3 connection factory: the per-connection PRAGMAs the app relies on."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA foreign_keys = ON")
        self.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.execute("PRAGMA synchronous = NORMAL")


def run(connection: sqlite3.Connection, sql: str, params: typing.Any = ()) -> Rows:
    cursor = connection.execute(sql, params)
    try:
        rows = cursor.fetchall()
        if not cursor.description:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in rows]
    finally:
        cursor.close()


def _begin_waiting(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to BUSY_TIMEOUT_MS for another process's write lock (in a thread)."""
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        connection.execute("BEGIN IMMEDIATE")
    finally:
        connection.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")


class SQLitePool:
    """The process's long-lived connections, opened on first use."""

    def __init__(self, url: DatabaseURL, **options: typing.Any) -> None:
        self._database = url.database
        if url.options:
            self._database += "?" + urlencode(url.options)
        self._path = None if url.database in ("", ":memory:") or url.options else url.database
        self._options = {"factory": TunedConnection, "timeout": BUSY_TIMEOUT_MS / 1000, **options}
        self._inode: int | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: asyncio.Task | None = None
        self.committed = asyncio.Event()
        self.opened = 0  # connections opened so far (tests check they are reused)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False,
                                     **self._options)
        self.opened += 1
        if self._path is not None and self._inode is None:
            self._inode = os.stat(self._path).st_ino
        return connection

    async def read(self, sql: str, params: typing.Any) -> Rows:
        """A statement outside any transaction, on the read-only connection."""
        await self.check_file()
        return run(self.reader(), sql, params)

    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            reader = self._connect()
            reader.execute("PRAGMA query_only = ON")
            self._reader = reader
        return self._reader

    def writer(self) -> sqlite3.Connection:
        if self._writer is None:
            writer = self._connect()
            writer.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")
            writer.execute("PRAGMA wal_autocheckpoint = 0")
            self._writer = writer
            if self._path is not None and self._checkpointer is None:
                self._checkpointer = asyncio.create_task(self._checkpoint_forever(), name="clawtrol-sqlite-checkpoint")
        return self._writer

    async def _checkpoint_forever(self) -> None:
        """Copy committed pages from the WAL into the database file, in a worker thread."""
        connection = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False,
                                     **self._options)
        try:
            while True:
                await self.committed.wait()
                self.committed.clear()
                checkpoint = asyncio.ensure_future(asyncio.to_thread(run, connection, "PRAGMA wal_checkpoint(PASSIVE)"))
                try:
                    await asyncio.shield(checkpoint)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await checkpoint  # the connection is closed below: never under a running statement
                    raise
                except sqlite3.Error as exc:
                    log.warning("SQLite checkpoint failed: %s", exc)
                await asyncio.sleep(CHECKPOINT_EVERY)
        finally:
            connection.close()

    async def begin(self) -> None:
        """BEGIN IMMEDIATE on the writer: at once when the write lock is free, else wait for it in a thread."""
        writer = self.writer()
        if writer.in_transaction:  # left open by a transaction that never ended (it was cancelled mid-way)
            writer.execute("ROLLBACK")
        try:
            writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            waiting = asyncio.ensure_future(asyncio.to_thread(_begin_waiting, writer))
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:
                # the caller gave up (its request was cancelled): let the BEGIN finish in its thread, then undo
                # it, before the write lock passes on: nobody may use the writer while that thread does
                with contextlib.suppress(Exception):
                    await waiting
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                raise

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

    async def close(self) -> None:
        self._inode = None
        await background.stop(self._checkpointer)
        self._checkpointer = None
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = None


class AsyncRaw:
    """What `raw_connection` gives: the writer, with the awaitable `execute` that migrations call."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    async def execute(self, sql: str, params: typing.Any = ()) -> Rows:
        return run(self._connection, sql, params)


class TunedSQLiteConnection(ConnectionBackend):
    """A task's handle on the pool. Outside a transaction statements go to the reader; inside, to the writer."""

    def __init__(self, pool: SQLitePool):
        self._pool = pool
        self.acquired = False
        self.transaction_depth = 0

    async def acquire(self) -> None:
        assert not self.acquired, "Connection is already acquired"
        await self._pool.check_file()
        self.acquired = True

    async def release(self) -> None:
        assert self.acquired, "Connection is not acquired"
        self.acquired = False

    async def run_named(self, sql: str, params: dict[str, typing.Any]) -> Rows:
        connection = self._pool.writer() if self.transaction_depth else self._pool.reader()
        return run(connection, sql, params)

    def control(self, sql: str) -> None:
        run(self._pool.writer(), sql)

    def transaction(self) -> "ImmediateTransaction":
        return ImmediateTransaction(self)

    @property
    def raw_connection(self) -> AsyncRaw:
        return AsyncRaw(self._pool.writer())

    # The app runs named queries (run_named). `databases`' own API is kept for plain SQL text with :name
    # parameters, as scripts and tests write it (`db._db.fetch_all(text, values)`); writes go to the
    # writer, and must not overlap a transaction of the app's.
    def _plain(self, query: typing.Any, writes: bool) -> Rows:
        if not isinstance(query, TextClause):
            raise NotImplementedError("SQLAlchemy statements: run named queries through clawtrol.db.Database")
        params = {name: bind.value for name, bind in query._bindparams.items()}
        connection = self._pool.writer() if writes or self.transaction_depth else self._pool.reader()
        return run(connection, query.text, params)

    async def fetch_all(self, query: typing.Any) -> Rows:
        return self._plain(query, writes=False)

    async def fetch_one(self, query: typing.Any) -> dict[str, typing.Any] | None:
        rows = self._plain(query, writes=False)
        return rows[0] if rows else None

    async def fetch_val(self, query: typing.Any, column: typing.Any = 0) -> typing.Any:
        row = await self.fetch_one(query)
        return None if row is None else list(row.values())[column]

    async def execute(self, query: typing.Any) -> None:
        self._plain(query, writes=True)

    async def execute_many(self, queries: list[typing.Any]) -> None:
        for query in queries:
            await self.execute(query)

    async def iterate(self, query: typing.Any) -> typing.Any:
        for row in self._plain(query, writes=False):
            yield row


class ImmediateTransaction(TransactionBackend):
    def __init__(self, connection: TunedSQLiteConnection):
        self._connection = connection
        self._savepoint: str | None = None

    async def start(self, is_root: bool, extra_options: dict[typing.Any, typing.Any]) -> None:
        if is_root:
            await self._connection._pool.begin()
        else:
            self._savepoint = f"sp_{uuid.uuid4().hex}"
            self._connection.control(f"SAVEPOINT {self._savepoint}")
        self._connection.transaction_depth += 1

    async def commit(self) -> None:
        self._connection.transaction_depth -= 1
        if self._savepoint is None:
            self._connection.control("COMMIT")
            self._connection._pool.committed.set()
        else:
            self._connection.control(f"RELEASE SAVEPOINT {self._savepoint}")

    async def rollback(self) -> None:
        self._connection.transaction_depth -= 1
        if self._savepoint is None:
            self._connection.control("ROLLBACK")
        else:
            self._connection.control(f"ROLLBACK TO SAVEPOINT {self._savepoint}")
            self._connection.control(f"RELEASE SAVEPOINT {self._savepoint}")


class SQLiteBackend(DatabaseBackend):
    def __init__(self, database_url: typing.Any, **options: typing.Any) -> None:
        self._pool = SQLitePool(DatabaseURL(database_url), **options)

    async def connect(self) -> None:
        pass  # connections open on first use

    async def disconnect(self) -> None:
        await self._pool.close()

    def connection(self) -> TunedSQLiteConnection:
        return TunedSQLiteConnection(self._pool)
