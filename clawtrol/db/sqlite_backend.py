"""The `databases` SQLite backend, tuned for a multi-user web app.

- Root transactions begin IMMEDIATE. With the library's plain BEGIN (deferred), a transaction that reads
  and then writes fails at once with "database is locked" when another writer holds the lock, ignoring the
  busy timeout; IMMEDIATE takes the write lock up front and waits for it instead.
- Every connection enables foreign keys and a busy timeout (WAL mode is set once, it persists in the file).
"""

from __future__ import annotations

import sqlite3
import typing

from databases.backends import sqlite as library

BUSY_TIMEOUT_MS = 15_000


class TunedConnection(sqlite3.Connection):
    """sqlite3 connection factory: the per-connection PRAGMAs the app relies on."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA foreign_keys = ON")
        self.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.execute("PRAGMA synchronous = NORMAL")


class ImmediateTransaction(library.SQLiteTransaction):
    async def start(self, is_root: bool, extra_options: dict[typing.Any, typing.Any]) -> None:
        if not is_root:
            await super().start(is_root, extra_options)
            return
        self._is_root = True
        assert self._connection._connection is not None, "Connection is not acquired"
        async with self._connection._connection.execute("BEGIN IMMEDIATE") as cursor:
            await cursor.close()


class TunedSQLiteConnection(library.SQLiteConnection):
    def transaction(self) -> ImmediateTransaction:
        return ImmediateTransaction(self)


class SQLiteBackend(library.SQLiteBackend):
    def __init__(self, database_url: typing.Any, **options: typing.Any) -> None:
        options.setdefault("factory", TunedConnection)
        options.setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
        super().__init__(database_url, **options)

    def connection(self) -> TunedSQLiteConnection:
        return TunedSQLiteConnection(self._pool, self._dialect)
