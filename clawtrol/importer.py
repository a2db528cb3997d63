"""`clawtrol import-sqlite PATH`: copy a SQLite database into the configured database.

Two kinds of source are recognised by their tables and columns:

- **ours**: a database written by this app (it has `schema_migrations` and a snake_case `tasks` table). It
  must be at the same schema version as the target. Everything is copied except `auth_sessions` (sessions
  belong to the old deployment) and `schema_migrations`.
- **original**: the original Mission Clawtrol's `mission-clawtrol.db` (camelCase columns). P0 files have
  only `tasks` and `settings`; Phase 1 files add `users`, `audit_log`, `comments` and the task columns
  `userId`, `createdBy`, `assignedTo`, `dueDate` (one commit after another, so a file may have any of them;
  a missing one reads as empty). Each distinct `tasks.projectId` becomes a project.

The source is opened read-only with Python's sqlite3 and read with the named queries in `sql/import/`; the
target is written with `sql/queries/importer.sql`. The source is checked before the target is touched;
then the target is migrated and every row is written in ONE transaction, keeping the source's ids with
`ON CONFLICT DO NOTHING`, so a second run inserts nothing and a failure (a bad row, a failed verification)
leaves the target as it was. A verification pass inside that transaction checks that every source row is
in the target and compares a SHA-256 checksum of key fields.

User references that do not name a user of the target (the original's `dev-user` when it ran without
auth) become NULL, because `created_by`, `assigned_to` and `comments.user_id` are foreign keys; for tasks
the original's unknown `createdBy` is kept in `tasks.user_id`, which has no foreign key. A source user whose
GitHub id already belongs to a target user under another id is merged into that user (counted as skipped).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from . import audit
from .clock import now_iso
from .db import Database, UniqueViolation
from .db import migrations
from .db.catalog import NamedQuery, parse_file
from .paths import ROOT, SQL_MIGRATIONS
from .tasks.model import PRIORITIES, STATUSES

SQL_IMPORT = ROOT / "sql" / "import"
PROGRESS_EVERY = 500
CHUNK = 500  # ids per `WHERE id IN :ids` read-back
ROLES = ("admin", "member", "viewer")
ACTOR = audit.Actor(kind="system", label="cli:import")


class ImportFailed(Exception):
    """The import cannot proceed; the message is one line for the user, and the target is unchanged."""


# --- the source -----------------------------------------------------------------------------------------

class Source:
    """A SQLite file opened read-only, queried by name (`original.tasks`, `ours.users`, ...)."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self.name = path.name
        self.connection = connection
        self.queries: dict[str, NamedQuery] = {}
        for file in sorted(SQL_IMPORT.glob("*.sql")):
            for query in parse_file(file.stem, file.read_text()):
                self.queries[query.name] = query

    def _execute(self, name: str, params: dict[str, Any]) -> sqlite3.Cursor:
        try:
            return self.connection.execute(self.queries[name].sql, params)
        except sqlite3.DatabaseError as error:
            raise ImportFailed(f"{self.name}: cannot read the source ({name}): {error}") from error

    def value(self, name: str, **params: Any) -> Any:
        row = self._execute(name, params).fetchone()
        return row[0] if row is not None else None

    def rows(self, name: str, **params: Any) -> Iterator[dict[str, Any]]:
        cursor = self._execute(name, params)
        while True:
            try:
                batch = cursor.fetchmany(PROGRESS_EVERY)
            except sqlite3.DatabaseError as error:
                raise ImportFailed(f"{self.name}: cannot read the source ({name}): {error}") from error
            if not batch:
                return
            for row in batch:
                yield dict(row)

    def tables(self) -> set[str]:
        return {row["name"] for row in self.rows("original.tables")}

    def columns(self, table: str) -> set[str]:
        return {row["name"] for row in self.rows("original.columns", table=table)}

    def reading_null(self, name: str, columns: set[str] | frozenset[str]) -> str:
        """Query NAME with `NULL AS column` in place of each of COLUMNS (ones this file lacks), registered
        under a derived name, which is returned; NAME itself when there are none."""
        if not columns:
            return name
        sql = self.queries[name].sql
        for column in sorted(columns):
            sql, found = re.subn(rf"\b{column}\b", f"NULL AS {column}", sql)
            if found != 1:
                raise ValueError(f"{name}: column {column} is named {found} times, not once")
        variant = f"{name} without {', '.join(sorted(columns))}"
        self.queries[variant] = NamedQuery(variant, sql, self.queries[name].params)
        return variant

    def close(self) -> None:
        self.connection.close()


def open_source(path: str) -> Source:
    """Open PATH read-only and make sure it is a SQLite database at all."""
    file = Path(path)
    if not file.exists():
        raise ImportFailed(f"{path}: no such file")
    if not file.is_file():
        raise ImportFailed(f"{path}: not a file")
    uri = file.resolve().as_uri()
    last_error: Exception | None = None
    # A WAL-mode file needs its -shm beside it; in a read-only directory fall back to immutable=1.
    for options in ("?mode=ro", "?mode=ro&immutable=1"):
        try:
            connection = sqlite3.connect(uri + options, uri=True)
        except sqlite3.Error as error:
            last_error = error
            continue
        connection.row_factory = sqlite3.Row
        source = Source(file, connection)
        try:
            source.tables()
            return source
        except ImportFailed as error:
            connection.close()
            last_error = error.__cause__ or error
            if not isinstance(last_error, sqlite3.OperationalError):
                break
    raise ImportFailed(f"{path}: not a readable SQLite database ({last_error})")


# --- what each kind of source looks like ------------------------------------------------------------------

ORIGINAL_COLUMNS = {
    "tasks": {"id", "title", "description", "status", "priority", "projectId", "agentId", "sessionKey",
              "handoffNotes", "commitHash", "linesAdded", "linesRemoved", "linesTotal", "estimatedHumanMinutes",
              "humanCost", "cost", "runtime", "model", "createdAt", "updatedAt", "completedAt"},
    "users": {"id", "githubId", "githubLogin", "name", "email", "avatarUrl", "role", "createdAt", "lastLoginAt"},
    "comments": {"id", "taskId", "userId", "userName", "userAvatar", "content", "createdAt", "updatedAt"},
    "audit_log": {"id", "userId", "action", "entityType", "entityId", "details", "createdAt"},
    "settings": {"key", "value"},
}
# Phase 1 task columns, added to older files by the original's "add column if missing" helper, commit by
# commit: userId (users), createdBy and assignedTo (ownership, 1cfb8b1), dueDate (84f9b8e). A file may have
# any of them; original.tasks reads NULL for the ones it lacks.
ORIGINAL_OPTIONAL_TASK_COLUMNS = frozenset({"userId", "createdBy", "assignedTo", "dueDate"})
ORIGINAL_ORDER = ("users", "projects", "tasks", "comments", "settings", "audit_log")

OURS_COLUMNS = {
    "users": {"id", "github_id", "login", "name", "email", "avatar_url", "role", "active", "github_token",
              "created_at", "updated_at", "last_login_at", "reviewed_at", "reviewed_by"},
    "app_state": {"key", "value", "created_at"},
    "api_tokens": {"id", "name", "prefix", "token_hash", "role", "created_by", "created_at", "expires_at",
                   "last_used_at", "revoked_at"},
    "projects": {"id", "name", "description", "owner_id", "archived", "created_at", "updated_at"},
    "tasks": {"id", "title", "description", "status", "priority", "project_id", "agent_id", "user_id",
              "created_by", "created_by_token", "assigned_to", "session_key", "handoff_notes", "commit_hash",
              "lines_added", "lines_removed", "lines_total", "estimated_human_minutes", "human_cost", "cost",
              "runtime", "model", "tokens_input", "tokens_output", "tokens_total", "due_date", "version",
              "created_at", "updated_at", "completed_at"},
    "comments": {"id", "task_id", "user_id", "token_id", "user_name", "user_avatar", "content", "created_at",
                 "updated_at"},
    "settings": {"key", "value", "updated_at", "updated_by"},
    "approvals": {"id", "command", "cwd", "host", "agent_id", "session_key", "task_id", "allowed_decisions",
                  "status", "decision", "decided_by", "decided_by_token", "decided_by_label", "decided_at",
                  "gateway_ack_at", "requested_at", "expires_at", "payload", "updated_at"},
    "started_sessions": {"session_key", "task_id", "project_id", "agent_id", "started_by", "started_by_token",
                         "started_by_label", "run_id", "started_at"},
    "audit_log": {"id", "user_id", "token_id", "actor_kind", "actor_label", "action", "entity_type", "entity_id",
                  "details", "ip", "user_agent", "created_at"},
}
OURS_ORDER = ("users", "app_state", "api_tokens", "projects", "tasks", "comments", "settings", "approvals",
              "started_sessions", "audit_log")
OURS_IGNORED = {"auth_sessions", "oauth_states", "schema_migrations"}

# Fields compared by the verification checksum (the row key first); read back with importer.<table>_keys.
KEY_FIELDS = {
    "users": ("id", "login", "role"),
    "app_state": ("id", "value"),
    "api_tokens": ("id", "name", "role"),
    "projects": ("id", "name"),
    "tasks": ("id", "title", "status", "priority", "cost", "completed_at"),
    "comments": ("id", "task_id", "content"),
    "settings": ("id", "value"),
    "approvals": ("id", "command", "status"),
    "started_sessions": ("id", "started_by_label"),
    "audit_log": ("id", "action"),
}

INTEGER_COLUMNS = {"github_id", "lines_added", "lines_removed", "lines_total", "runtime", "tokens_input",
                   "tokens_output", "tokens_total", "version"}
REAL_COLUMNS = {"estimated_human_minutes", "human_cost", "cost"}
BOOLEAN_COLUMNS = {"active", "archived"}


@dataclass
class Plan:
    kind: str  # "ours" | "original"
    tables: tuple[str, ...]
    task_query: str = ""
    ignored: list[str] = field(default_factory=list)


def detect(source: Source) -> Plan:
    """Decide what the source is, and check every table we read has the columns we read."""
    tables = source.tables()
    if "tasks" not in tables:
        found = ", ".join(sorted(tables)) or "none"
        raise ImportFailed(f"{source.name}: not a Mission Clawtrol database (no tasks table; tables: {found})")
    task_columns = source.columns("tasks")
    if "schema_migrations" in tables and {"project_id", "created_at"} <= task_columns:
        return _ours_plan(source, tables)
    if {"projectId", "createdAt"} <= task_columns:
        return _original_plan(source, tables, task_columns)
    raise ImportFailed(f"{source.name}: the tasks table has neither the original's columns (projectId, createdAt) "
                       "nor ours (project_id, created_at) and a schema_migrations table")


def _ours_plan(source: Source, tables: set[str]) -> Plan:
    for table, expected in OURS_COLUMNS.items():
        if table not in tables:
            raise ImportFailed(f"{source.name}: table {table} is missing; is it a Mission Clawtrol database?")
        missing = expected - source.columns(table)
        if missing:
            raise ImportFailed(f"{source.name}: table {table} lacks columns {', '.join(sorted(missing))}")
    return Plan("ours", OURS_ORDER, ignored=sorted(tables - set(OURS_COLUMNS) - OURS_IGNORED))


def _original_plan(source: Source, tables: set[str], task_columns: set[str]) -> Plan:
    missing = ORIGINAL_COLUMNS["tasks"] - task_columns
    if missing:
        raise ImportFailed(f"{source.name}: tasks table lacks columns {', '.join(sorted(missing))}")
    unknown = task_columns - ORIGINAL_COLUMNS["tasks"] - ORIGINAL_OPTIONAL_TASK_COLUMNS
    if unknown:
        raise ImportFailed(f"{source.name}: tasks table has unknown columns {', '.join(sorted(unknown))}")
    present = [table for table in ORIGINAL_ORDER if table in ("projects", "tasks") or table in tables]
    for table in present:
        if table not in ("projects", "tasks"):
            _check_original_table(source, table)
    task_query = source.reading_null("original.tasks", ORIGINAL_OPTIONAL_TASK_COLUMNS - task_columns)
    return Plan("original", tuple(present), task_query, sorted(tables - set(ORIGINAL_COLUMNS)))


def _check_original_table(source: Source, table: str) -> None:
    columns, expected = source.columns(table), ORIGINAL_COLUMNS[table]
    problems = []
    if expected - columns:
        problems.append("lacks columns " + ", ".join(sorted(expected - columns)))
    if columns - expected:
        problems.append("has unknown columns " + ", ".join(sorted(columns - expected)))
    if problems:
        raise ImportFailed(f"{source.name}: table {table} {' and '.join(problems)}")


# --- value checks -------------------------------------------------------------------------------------------

def _coerce(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """Give every column the Python type the target expects; refuse values that cannot be converted."""
    rid = row.get("id", row.get("key"))
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            out[name] = None
        elif name in BOOLEAN_COLUMNS:
            out[name] = bool(value)
        elif name in INTEGER_COLUMNS:
            try:
                number = float(value) if isinstance(value, str) else value
                if isinstance(number, float) and not number.is_integer():
                    raise ValueError
                out[name] = int(number)
            except (TypeError, ValueError, OverflowError):
                raise ImportFailed(f"{table} {rid}: {name} is not a whole number ({value!r})") from None
        elif name in REAL_COLUMNS:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ImportFailed(f"{table} {rid}: {name} is not a number ({value!r})") from None
            if not math.isfinite(number):
                raise ImportFailed(f"{table} {rid}: {name} is not a finite number ({value!r})")
            out[name] = number
        elif isinstance(value, bytes):
            out[name] = value.decode("utf-8", errors="replace")
        else:
            out[name] = value if isinstance(value, str) else str(value)
    return out


def _require(table: str, row: dict[str, Any], *names: str) -> None:
    for name in names:
        if row.get(name) in (None, ""):
            raise ImportFailed(f"{table} {row.get('id', row.get('key'))}: {name} is missing")


def _json_details(text: Any) -> str | None:
    """audit details as a JSON object's text; anything else is kept as {"raw": text}."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)

    def refuse(constant: str) -> Any:  # NaN/Infinity parse in Python but not in PostgreSQL's JSONB
        raise ValueError(constant)
    try:
        parsed = json.loads(text, parse_constant=refuse)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "\\u0000" not in text:
        return text
    return json.dumps({"raw": text})


def _project_name(project_id: str) -> str:
    return project_id.replace("-", " ").title()


def _normal(value: Any) -> Any:
    """A checksum-stable form: numbers as float text (REAL vs DOUBLE PRECISION), booleans as ints."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return repr(float(value))
    return value


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(json.dumps(sorted(rows, key=lambda r: r[0]), ensure_ascii=False).encode()).hexdigest()


# --- the import -------------------------------------------------------------------------------------------

@dataclass
class Stats:
    read: int = 0
    inserted: int = 0
    skipped: int = 0


class Importer:
    def __init__(self, db: Database, source: Source, plan: Plan, out: Callable[[str], None]):
        self.db = db
        self.source = source
        self.plan = plan
        self.out = out
        self.stats: dict[str, Stats] = {table: Stats() for table in plan.tables}
        # Verification: per table, row key -> key fields as written.
        self.expected: dict[str, dict[str, tuple]] = {table: {} for table in plan.tables}
        self.users: dict[str, str | None] = {}  # target user id -> login
        self.github_ids: dict[int, str] = {}  # GitHub id -> target user id
        self.user_map: dict[str, str] = {}  # source user id -> target user id
        self.task_ids: set[str] = set()
        self.merged_users = 0
        self.now = now_iso()

    # -- helpers

    def user(self, user_id: str | None) -> str | None:
        """The target user a source user id stands for, or None when the target has no such user."""
        if user_id is None:
            return None
        if user_id in self.user_map:
            return self.user_map[user_id]
        return user_id if user_id in self.users else None

    def expect(self, table: str, row: dict[str, Any]) -> None:
        fields = KEY_FIELDS[table]
        key = row.get("id", row.get("key"))
        values = {**row, "id": key}
        self.expected[table][key] = tuple(_normal(values[name]) for name in fields)

    async def insert(self, table: str, query: str, row: dict[str, Any]) -> None:
        stats = self.stats[table]
        key = row.get("id", row.get("key"))
        try:
            touched = await self.db.changed(query, **row)
        except UniqueViolation as error:
            raise ImportFailed(f"{table} {key}: conflicts with a different row in the target ({error})") from None
        except (sqlite3.DatabaseError, asyncpg.PostgresError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ImportFailed(f"{table} {key}: the target refused the row ({message})") from None
        if touched:
            stats.inserted += 1
        else:
            stats.skipped += 1

    def progress(self, table: str, done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            self.out(f"{table}: {done}/{total}")

    async def copy(self, table: str, count_query: str, rows_query: str,
                   handle: Callable[[dict[str, Any]], Any]) -> None:
        total = self.source.value(count_query) or 0
        done = 0
        if total == 0:
            self.out(f"{table}: 0/0")
        for row in self.source.rows(rows_query):
            self.stats[table].read += 1
            await handle(row)
            done += 1
            self.progress(table, done, max(total, done))

    async def load_target_users(self) -> None:
        for row in await self.db.all("importer.user_ids"):
            self.users[row["id"]] = row["login"]
            if row["github_id"] is not None:
                self.github_ids[int(row["github_id"])] = row["id"]

    async def put_user(self, row: dict[str, Any]) -> None:
        source_id, github_id = row["id"], row["github_id"]
        if source_id not in self.users and github_id is not None and github_id in self.github_ids:
            # The same GitHub account already signed in to the target under a new id: use that user.
            self.user_map[source_id] = self.github_ids[github_id]
            self.stats["users"].skipped += 1
            self.merged_users += 1
            return
        await self.insert("users", "importer.insert_user", row)
        self.user_map[source_id] = source_id
        self.users.setdefault(source_id, row["login"])
        if github_id is not None:
            self.github_ids.setdefault(github_id, source_id)
        self.expect("users", row)

    async def put_setting(self, row: dict[str, Any]) -> None:
        stats = self.stats["settings"]
        current = await self.db.one("importer.get_setting", key=row["key"])
        if current is not None and current["value"] == row["value"]:
            stats.skipped += 1
        else:
            await self.db.changed("importer.put_setting", **row)
            stats.inserted += 1
        self.expect("settings", row)

    async def check_task(self, table: str, row_id: str, task_id: str) -> None:
        if task_id in self.task_ids:
            return
        if not await self.db.all("importer.tasks_keys", ids=[task_id]):
            raise ImportFailed(f"{table} {row_id}: refers to task {task_id}, which is in neither database")
        self.task_ids.add(task_id)

    # -- the original's tables

    async def original_user(self, raw: dict[str, Any]) -> None:
        row = _coerce("users", {
            "id": raw["id"], "github_id": raw["githubId"], "login": raw["githubLogin"], "name": raw["name"],
            "email": raw["email"], "avatar_url": raw["avatarUrl"], "role": raw["role"], "active": True,
            "github_token": None, "created_at": raw["createdAt"], "updated_at": raw["createdAt"],
            "last_login_at": raw["lastLoginAt"], "reviewed_at": None, "reviewed_by": None})
        _require("users", row, "id", "login", "created_at")
        if row["role"] not in ROLES:
            row["role"] = "member"
        await self.put_user(row)

    async def original_project(self, raw: dict[str, Any]) -> None:
        row = _coerce("projects", {
            "id": raw["id"], "name": _project_name(str(raw["id"])), "description": None, "owner_id": None,
            "archived": False, "created_at": raw["createdAt"], "updated_at": raw["updatedAt"] or raw["createdAt"]})
        await self.insert("projects", "importer.insert_project", row)
        self.expect("projects", row)

    async def original_task(self, raw: dict[str, Any]) -> None:
        created_by = self.user(raw["createdBy"])
        unknown_creator = raw["createdBy"] if raw["createdBy"] is not None and created_by is None else None
        row = _coerce("tasks", {
            "id": raw["id"], "title": raw["title"], "description": raw["description"], "status": raw["status"],
            "priority": raw["priority"], "project_id": raw["projectId"] or None, "agent_id": raw["agentId"],
            "user_id": raw["userId"] if raw["userId"] is not None else unknown_creator,
            "created_by": created_by, "created_by_token": None, "assigned_to": self.user(raw["assignedTo"]),
            "session_key": raw["sessionKey"], "handoff_notes": raw["handoffNotes"], "commit_hash": raw["commitHash"],
            "lines_added": raw["linesAdded"], "lines_removed": raw["linesRemoved"],
            "lines_total": raw["linesTotal"], "estimated_human_minutes": raw["estimatedHumanMinutes"],
            "human_cost": raw["humanCost"], "cost": raw["cost"], "runtime": raw["runtime"], "model": raw["model"],
            "tokens_input": None, "tokens_output": None, "tokens_total": None, "due_date": raw["dueDate"],
            "version": 1, "created_at": raw["createdAt"], "updated_at": raw["updatedAt"],
            "completed_at": raw["completedAt"]})
        _require("tasks", row, "id", "title", "created_at", "updated_at")
        if row["status"] not in STATUSES:
            raise ImportFailed(f"task {row['id']}: status {row['status']!r} is not one of {', '.join(STATUSES)}")
        if row["priority"] not in PRIORITIES:
            raise ImportFailed(f"task {row['id']}: priority {row['priority']!r} is not one of "
                               f"{', '.join(PRIORITIES)}")
        await self.insert("tasks", "importer.insert_task", row)
        self.task_ids.add(row["id"])
        self.expect("tasks", row)

    async def original_comment(self, raw: dict[str, Any]) -> None:
        row = _coerce("comments", {
            "id": raw["id"], "task_id": raw["taskId"], "user_id": self.user(raw["userId"]), "token_id": None,
            "user_name": raw["userName"], "user_avatar": raw["userAvatar"], "content": raw["content"],
            "created_at": raw["createdAt"], "updated_at": raw["updatedAt"]})
        _require("comments", row, "id", "task_id", "created_at")
        if row["content"] is None:
            raise ImportFailed(f"comments {row['id']}: content is missing")
        await self.check_task("comments", row["id"], row["task_id"])
        await self.insert("comments", "importer.insert_comment", row)
        self.expect("comments", row)

    async def original_setting(self, raw: dict[str, Any]) -> None:
        row = _coerce("settings", {"key": raw["key"], "value": raw["value"], "updated_at": self.now,
                                   "updated_by": ACTOR.label})
        _require("settings", row, "key")
        if row["value"] is None:
            raise ImportFailed(f"settings {row['key']}: value is missing")
        await self.put_setting(row)

    async def original_audit(self, raw: dict[str, Any]) -> None:
        user_id = self.user(raw["userId"])
        label = self.users.get(user_id) if user_id else None
        row = _coerce("audit_log", {
            "id": raw["id"], "user_id": user_id, "token_id": None, "actor_kind": "user" if user_id else "system",
            "actor_label": label or raw["userId"] or "original", "action": raw["action"],
            "entity_type": raw["entityType"], "entity_id": raw["entityId"], "details": _json_details(raw["details"]),
            "ip": None, "user_agent": None, "created_at": raw["createdAt"]})
        _require("audit_log", row, "id", "action", "created_at")
        await self.insert("audit_log", "importer.insert_audit", row)
        self.expect("audit_log", row)

    # -- our own tables

    async def ours_user(self, raw: dict[str, Any]) -> None:
        row = _coerce("users", raw)
        row["reviewed_by"] = self.user(row["reviewed_by"])
        await self.put_user(row)

    async def ours_app_state(self, raw: dict[str, Any]) -> None:
        row = _coerce("app_state", raw)
        await self.insert("app_state", "importer.insert_app_state", row)
        self.expect("app_state", row)

    async def ours_token(self, raw: dict[str, Any]) -> None:
        row = _coerce("api_tokens", raw)
        row["created_by"] = self.user(row["created_by"])
        await self.insert("api_tokens", "importer.insert_api_token", row)
        self.expect("api_tokens", row)

    async def ours_project(self, raw: dict[str, Any]) -> None:
        row = _coerce("projects", raw)
        row["owner_id"] = self.user(row["owner_id"])
        await self.insert("projects", "importer.insert_project", row)
        self.expect("projects", row)

    async def ours_task(self, raw: dict[str, Any]) -> None:
        row = _coerce("tasks", raw)
        row["created_by"] = self.user(row["created_by"])
        row["assigned_to"] = self.user(row["assigned_to"])
        await self.insert("tasks", "importer.insert_task", row)
        self.task_ids.add(row["id"])
        self.expect("tasks", row)

    async def ours_comment(self, raw: dict[str, Any]) -> None:
        row = _coerce("comments", raw)
        row["user_id"] = self.user(row["user_id"])
        await self.check_task("comments", row["id"], row["task_id"])
        await self.insert("comments", "importer.insert_comment", row)
        self.expect("comments", row)

    async def ours_setting(self, raw: dict[str, Any]) -> None:
        await self.put_setting(_coerce("settings", raw))

    async def ours_approval(self, raw: dict[str, Any]) -> None:
        row = _coerce("approvals", raw)
        row["decided_by"] = self.user(row["decided_by"])
        await self.insert("approvals", "importer.insert_approval", row)
        self.expect("approvals", row)

    async def ours_started_session(self, raw: dict[str, Any]) -> None:
        row = _coerce("started_sessions", raw)  # read with session_key AS id
        row["started_by"] = self.user(row["started_by"])
        await self.insert("started_sessions", "importer.insert_started_session", row)
        self.expect("started_sessions", row)

    async def ours_audit(self, raw: dict[str, Any]) -> None:
        row = _coerce("audit_log", raw)
        if row["user_id"] is not None:  # no foreign key: keep ids of users the target never had
            row["user_id"] = self.user_map.get(row["user_id"], row["user_id"])
        row["details"] = _json_details(row["details"])
        await self.insert("audit_log", "importer.insert_audit", row)
        self.expect("audit_log", row)

    # -- the run

    async def copy_all(self) -> None:
        await self.load_target_users()
        if self.plan.kind == "original":
            handlers = {"users": self.original_user, "projects": self.original_project,
                        "tasks": self.original_task, "comments": self.original_comment,
                        "settings": self.original_setting, "audit_log": self.original_audit}
            queries = {table: f"original.{table}" for table in self.plan.tables}
            queries["tasks"] = self.plan.task_query
            counts = {table: f"original.count_{table}" for table in self.plan.tables}
        else:
            handlers = {"users": self.ours_user, "app_state": self.ours_app_state, "api_tokens": self.ours_token,
                        "projects": self.ours_project, "tasks": self.ours_task, "comments": self.ours_comment,
                        "settings": self.ours_setting, "approvals": self.ours_approval,
                        "started_sessions": self.ours_started_session, "audit_log": self.ours_audit}
            queries = {table: f"ours.{table}" for table in self.plan.tables}
            counts = {table: f"ours.count_{table}" for table in self.plan.tables}
        for table in self.plan.tables:
            await self.copy(table, counts[table], queries[table], handlers[table])

    async def verify(self) -> list[str]:
        """Every source row is in the target with the same key fields; returns the problems found."""
        problems = []
        for table in self.plan.tables:
            expected = self.expected[table]
            ids = sorted(expected)
            found: dict[str, tuple] = {}
            for start in range(0, len(ids), CHUNK):
                for row in await self.db.all(f"importer.{table}_keys", ids=ids[start:start + CHUNK]):
                    found[row["id"]] = tuple(_normal(row[name]) for name in KEY_FIELDS[table])
            missing = [key for key in ids if key not in found]
            source_sum = _digest(list(expected.values()))
            target_sum = _digest([found[key] for key in ids if key in found])
            status = "ok" if not missing and source_sum == target_sum else "MISMATCH"
            self.out(f"verify {table}: {len(ids) - len(missing)}/{len(ids)} present, "
                     f"checksum {source_sum[:12]} / {target_sum[:12]} {status}")
            if missing:
                problems.append(f"{table}: {len(missing)} row(s) missing from the target (e.g. {missing[0]})")
            elif source_sum != target_sum:
                differ = [key for key in ids if found[key] != expected[key]]
                problems.append(f"{table}: {len(differ)} row(s) differ in the target (e.g. {differ[0]})")
        return problems

    async def summary(self) -> None:
        totals = {row["name"]: row["n"] for row in await self.db.all("importer.table_counts")}
        width = max(len(table) for table in self.plan.tables)
        self.out(f"{'table':<{width}}  {'read':>7}  {'inserted':>8}  {'skipped':>7}  {'in target':>9}")
        for table in self.plan.tables:
            s = self.stats[table]
            self.out(f"{table:<{width}}  {s.read:>7}  {s.inserted:>8}  {s.skipped:>7}  {totals.get(table, 0):>9}")
        if self.merged_users:
            self.out(f"({self.merged_users} user(s) already in the target under another id, matched by GitHub id)")


def _version_problem(name: str, source_version: int | None, target_version: int) -> str | None:
    if source_version == target_version:
        return None
    if (source_version or 0) < target_version:
        advice = "run `clawtrol db upgrade` with DATABASE_URL pointing at (a copy of) the source first"
    else:
        advice = "upgrade clawtrol to the release that wrote the source first"
    return f"{name} is at schema version {source_version} but the target is at {target_version}: {advice}"


def prepare(path: str) -> tuple[Source, Plan]:
    """Open and check the source without touching any target. The caller closes the source."""
    source = open_source(path)
    try:
        plan = detect(source)
        if plan.kind == "ours":
            latest = max((m.version for m in migrations.discover(SQL_MIGRATIONS / "sqlite")), default=0)
            problem = _version_problem(source.name, source.value("ours.schema_version"), latest)
            if problem:
                raise ImportFailed(problem)
    except BaseException:
        source.close()
        raise
    return source, plan


async def import_source(db: Database, source: Source, plan: Plan,
                        out: Callable[[str], None] = print) -> dict[str, Stats]:
    """Migrate the target, then copy every row in one transaction and verify. Raises ImportFailed,
    leaving the target's data unchanged."""
    described = "an original Mission Clawtrol" if plan.kind == "original" else "a Mission Clawtrol"
    out(f"importing {source.name}: {described} database ({', '.join(plan.tables)})")
    if plan.ignored:
        out(f"ignoring tables: {', '.join(plan.ignored)}")
    for migration in await migrations.upgrade(db, SQL_MIGRATIONS):
        out(f"applied {migration.version:04d}_{migration.name} to the target")
    if plan.kind == "ours":
        target_version = max((row["version"] for row in await migrations.applied(db)), default=0)
        problem = _version_problem(source.name, source.value("ours.schema_version"), target_version)
        if problem:
            raise ImportFailed(problem)
    importer = Importer(db, source, plan, out)
    async with db.transaction():
        await importer.copy_all()
        await db.changed("importer.link_sessions_to_default")
        await importer.summary()
        problems = await importer.verify()
        if problems:
            raise ImportFailed("verification failed, nothing was imported: " + "; ".join(problems))
        inserted = {table: s.inserted for table, s in importer.stats.items() if s.inserted}
        if inserted:
            await audit.record(db, ACTOR, "data.imported", "database", None,
                               {"source": source.name, "kind": plan.kind, "inserted": inserted})
    out("verified: checksums match")
    total = sum(s.inserted for s in importer.stats.values())
    out(f"imported {total} row(s)" if total else "nothing to import: the target already has every row")
    return importer.stats


async def import_sqlite(db: Database, path: str, out: Callable[[str], None] = print) -> dict[str, Stats]:
    """Import PATH into `db` (connected)."""
    source, plan = prepare(path)
    try:
        return await import_source(db, source, plan, out)
    finally:
        source.close()

