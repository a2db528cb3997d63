"""The `databases` PostgreSQL backend with a fast path for named queries: the statement arrives as `$n` text
(db/catalog.py) and goes straight to asyncpg, which prepares it once per connection and caches it, instead
of SQLAlchemy compiling it on every call."""

from __future__ import annotations

import typing

from databases.backends import postgres as library


class PostgresConnection(library.PostgresConnection):
    async def run_named(self, sql: str, args: list[typing.Any]) -> list[dict[str, typing.Any]]:
        assert self._connection is not None, "Connection is not acquired"
        return [dict(record.items()) for record in await self._connection.fetch(sql, *args)]


class PostgresBackend(library.PostgresBackend):
    def connection(self) -> PostgresConnection:
        return PostgresConnection(self, self._dialect)
