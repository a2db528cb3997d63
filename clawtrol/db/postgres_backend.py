"""The `databases` PostgreSQL backend with a fast path for named queries: the statement arrives as `$n` text
(db/catalog.py) and goes straight to asyncpg, which prepares it once per connection and caches it, instead
of SQLAlchemy compiling it on every call.

A connection going back to the pool is not reset with asyncpg's default query (`SELECT
pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), a round trip after every request: the app
keeps no session state on pooled connections (no SET, no cursors, LISTEN on its own connection, the
migration lock released in a `finally`). asyncpg still rolls back a transaction left open and drops
listeners before our no-op runs."""

from __future__ import annotations

import typing

import asyncpg
from databases.backends import postgres as library


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Reset nothing beyond asyncpg's own rollback of an open transaction."""


class PostgresConnection(library.PostgresConnection):
    async def run_named(self, sql: str, args: list[typing.Any]) -> list[dict[str, typing.Any]]:
        assert self._connection is not None, "Connection is not acquired"
        return [dict(record.items()) for record in await self._connection.fetch(sql, *args)]


class PostgresBackend(library.PostgresBackend):
    def __init__(self, database_url, **options: typing.Any) -> None:
        options.setdefault("reset", _keep_session)
        super().__init__(database_url, **options)

    def connection(self) -> PostgresConnection:
        return PostgresConnection(self, self._dialect)
