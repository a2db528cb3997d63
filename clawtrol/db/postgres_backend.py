"""The `databases` PostgreSQL backend: it opens and closes asyncpg's pool. Named queries do not go through
the library's per-query path: `Database` (db/database.py) sends their `$n` text (db/catalog.py) straight to
the asyncpg connection the task holds, which prepares each statement once per connection and caches it,
instead of SQLAlchemy compiling it on every call.

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


class PostgresBackend(library.PostgresBackend):
    def __init__(self, database_url, **options: typing.Any) -> None:
        options.setdefault("reset", _keep_session)
        super().__init__(database_url, **options)
