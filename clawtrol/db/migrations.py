"""Numbered schema migrations per dialect (`sql/migrations/<dialect>/NNNN_name.sql`).

Applied in order, each in its own transaction together with its row in `schema_migrations`, and exactly
once even when several processes start at the same moment: on PostgreSQL they queue on an advisory lock;
on SQLite each migration runs inside a BEGIN IMMEDIATE transaction that re-checks whether another process
applied it first.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..clock import now_iso
from .database import Database

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 3_389_419_265  # an arbitrary constant naming "clawtrol migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{directory}: two migrations share a version number")
    return found


def _has_code(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def split_sqlite_script(script: str) -> list[str]:
    """Split a script into statements (sqlite3's executescript would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        raise ValueError("migration ends with an incomplete statement")
    return statements


async def _run_script(db: Database, raw_connection, script: str) -> None:
    if db.is_sqlite:
        for statement in split_sqlite_script(script):
            await raw_connection.execute(statement)
    else:
        await raw_connection.execute(script)


async def applied(db: Database) -> list[dict]:
    """The migrations this database has: {version, name, applied_at}, oldest first."""
    return await db.all("migrations.applied")


async def upgrade(db: Database, migrations_root: Path) -> list[Migration]:
    """Apply pending migrations; return the ones this call applied."""
    migrations = discover(migrations_root / db.dialect)
    applied_now: list[Migration] = []
    async with db.connection() as conn:
        if not db.is_sqlite:
            await db.value("migrations.lock", key=ADVISORY_LOCK_KEY)
        try:
            async with db.transaction():
                await db.value("migrations.create_table")
            done = {row["version"] for row in await applied(db)}
            for migration in migrations:
                if migration.version in done:
                    continue
                async with db.transaction():
                    if await db.value("migrations.is_applied", version=migration.version):
                        continue  # another process got there first (SQLite path)
                    log.info("applying migration %04d_%s", migration.version, migration.name)
                    await _run_script(db, conn.raw_connection, migration.path.read_text())
                    await db.changed("migrations.record", version=migration.version,
                                     name=migration.name, applied_at=now_iso())
                applied_now.append(migration)
        finally:
            if not db.is_sqlite:
                await db.value("migrations.unlock", key=ADVISORY_LOCK_KEY)
    return applied_now
