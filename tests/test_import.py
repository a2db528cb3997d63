"""`clawtrol import-sqlite PATH`: the original Mission Clawtrol's database (P0 and Phase 1) and our own,
idempotent re-runs, all-or-nothing, verification, and clear refusals that leave the target untouched."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from clawtrol import audit, importer
from clawtrol.app import create_app
from clawtrol.auth import tokens, users
from clawtrol.config import load_config
from clawtrol.importer import ImportFailed, import_sqlite
from clawtrol.services import services_of

from .conftest import Browser, make_environ, migrate, sign_in_as
from .helpers import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "original-p1-200.db"


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


async def counts(db) -> dict[str, int]:
    return {row["name"]: row["n"] for row in await db.all("importer.table_counts")}


async def run_import(db, path: Path) -> tuple[dict, list[str]]:
    lines: list[str] = []
    stats = await import_sqlite(db, str(path), out=lines.append)
    return {table: (s.read, s.inserted, s.skipped) for table, s in stats.items()}, lines


def cli_import(path: Path | str, database_url: str, tmp_path: Path):
    workdir = tmp_path / "cli"
    workdir.mkdir(exist_ok=True)
    return run_cli("import-sqlite", str(path), environ=make_environ(database_url, workdir))


# --- original-style databases built from the documented schema ---------------------------------------

P0_TASKS = """CREATE TABLE tasks (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT, status TEXT NOT NULL DEFAULT 'backlog',
    priority TEXT NOT NULL DEFAULT 'P2', projectId TEXT, agentId TEXT, sessionKey TEXT UNIQUE, handoffNotes TEXT,
    commitHash TEXT, linesAdded INTEGER, linesRemoved INTEGER, linesTotal INTEGER, estimatedHumanMinutes REAL,
    humanCost REAL, cost REAL, runtime INTEGER, model TEXT, createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL,
    completedAt TEXT)"""
P1_TABLES = [
    """CREATE TABLE users (id TEXT PRIMARY KEY, githubId INTEGER UNIQUE NOT NULL, githubLogin TEXT NOT NULL,
       name TEXT, email TEXT, avatarUrl TEXT, role TEXT NOT NULL DEFAULT 'member', createdAt TEXT NOT NULL,
       lastLoginAt TEXT)""",
    """CREATE TABLE audit_log (id TEXT PRIMARY KEY, userId TEXT, action TEXT NOT NULL, entityType TEXT,
       entityId TEXT, details TEXT, createdAt TEXT NOT NULL)""",
    """CREATE TABLE comments (id TEXT PRIMARY KEY, taskId TEXT NOT NULL, userId TEXT, userName TEXT,
       userAvatar TEXT, content TEXT NOT NULL, createdAt TEXT NOT NULL, updatedAt TEXT,
       FOREIGN KEY (taskId) REFERENCES tasks(id) ON DELETE CASCADE)""",
]


def task(id: str, minute: int, **fields) -> dict:
    at = f"2026-02-14T10:{minute:02d}:00.000Z"
    return {"id": id, "title": f"Task {id}", "status": "backlog", "priority": "P2", "createdAt": at,
            "updatedAt": at, **fields}


def insert(conn: sqlite3.Connection, table: str, row: dict) -> None:
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                 list(row.values()))


def original_db(path: Path, tasks: list[dict], *, settings: dict | None = None, phase1_columns: tuple = (),
                phase1_tables: bool = False, rows: dict[str, list[dict]] | None = None) -> Path:
    """A database as the original wrote it: P0 (tasks + settings), optionally with the Phase 1 task
    columns added by its 'add column if missing' helper and the Phase 1 tables."""
    conn = sqlite3.connect(path)
    conn.execute(P0_TASKS)
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for column in phase1_columns:
        conn.execute(f"ALTER TABLE tasks ADD COLUMN {column} TEXT")
    if phase1_tables:
        for statement in P1_TABLES:
            conn.execute(statement)
    for row in tasks:
        insert(conn, "tasks", row)
    for key, value in (settings or {}).items():
        insert(conn, "settings", {"key": key, "value": value})
    for table, table_rows in (rows or {}).items():
        for row in table_rows:
            insert(conn, table, row)
    conn.commit()
    conn.close()
    return path


# --- the shipped fixture through the real command -------------------------------------------------------

async def test_cli_imports_the_original_fixture_and_a_second_run_changes_nothing(
        database_url, tmp_path, app, client, db, api_token):
    source = tmp_path / "mission-clawtrol.db"
    shutil.copyfile(FIXTURE, source)
    raw = await api_token("admin", "importer-check")
    before = await counts(db)

    result = cli_import(source, database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    for line in ("projects: 8/8", "tasks: 200/200", "comments: 202/202", "audit_log: 478/478",
                 "verified: checksums match"):
        assert line in out.splitlines(), out
    assert re.search(r"^tasks\s+200\s+200\s+0\s+200$", out, re.M), out
    assert re.search(r"^comments\s+202\s+202\s+0\s+202$", out, re.M), out
    assert re.search(r"^verify tasks: 200/200 present, checksum (\w+) / \1 ok$", out, re.M), out

    after = await counts(db)
    assert after["tasks"] - before["tasks"] == 200
    assert after["comments"] - before["comments"] == 202
    assert after["projects"] - before["projects"] == 8
    assert after["audit_log"] - before["audit_log"] == 478 + 1  # the original's rows, plus "data.imported"
    assert await db.one("settings.get", key="humanHourlyRate") == {"value": "120"}

    by_status = {}
    for status in ("backlog", "todo", "in-progress", "review", "done"):
        response = await client.get(f"/api/tasks?status={status}&limit=1", headers=bearer(raw))
        by_status[status] = (await response.get_json())["total"]
    assert by_status == {"backlog": 37, "todo": 37, "in-progress": 32, "review": 18, "done": 76}
    done = (await (await client.get("/api/tasks?status=done&limit=1000", headers=bearer(raw))).get_json())["tasks"]
    assert len(done) == 76
    assert abs(sum(t["cost"] or 0 for t in done) - 57.766664) < 1e-6
    assert {t["projectId"] for t in done} <= {"billing-api", "data-pipeline", "docs-site", "infra",
                                               "marketing-site", "mission-clawtrol", "mobile-app", "openclaw-gateway"}
    assert all(t["createdBy"] is None and t["version"] == 1 for t in done)
    assert (await db.one("projects.get", id="mission-clawtrol"))["name"] == "Mission Clawtrol"

    entries = await audit.search(db, action="data.imported")
    assert len(entries) == 1
    assert entries[0]["actor_kind"] == "system" and entries[0]["actor_label"] == "cli:import"
    assert entries[0]["details"] == {"source": "mission-clawtrol.db", "kind": "original", "inserted": {
        "projects": 8, "tasks": 200, "comments": 202, "settings": 1, "audit_log": 478}}
    [original] = [e for e in await audit.search(db, action="task.status_changed", limit=1)]
    assert original["actor_kind"] == "system" and original["actor_label"] == "original"

    again = cli_import(source, database_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert re.search(r"^tasks\s+200\s+0\s+200\s+200$", again.stdout, re.M), again.stdout
    assert re.search(r"^settings\s+1\s+0\s+1\s+", again.stdout, re.M), again.stdout
    assert "verified: checksums match" in again.stdout
    assert "nothing to import" in again.stdout
    assert await counts(db) == after
    assert len(await audit.search(db, action="data.imported")) == 1


async def test_cli_imports_the_fixture_as_it_was_between_the_users_and_the_ownership_commits(
        database_url, tmp_path, db):
    """The original added tasks.userId (users commit) before createdBy/assignedTo (ownership commit) and dueDate:
    a file from between has userId alone, and the columns it lacks import as empty."""
    source = tmp_path / "mission-clawtrol.db"
    shutil.copyfile(FIXTURE, source)
    with sqlite3.connect(source) as conn:
        for column in ("createdBy", "assignedTo", "dueDate"):
            conn.execute(f"ALTER TABLE tasks DROP COLUMN {column}")
        first = conn.execute("SELECT id FROM tasks ORDER BY createdAt, id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE tasks SET userId = 'legacy-user' WHERE id = ?", (first,))
    conn.close()

    result = cli_import(source, database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tasks: 200/200" in result.stdout.splitlines() and "verified: checksums match" in result.stdout
    assert (await counts(db))["tasks"] == 200
    kept = await db.one("tasks.get", id=first)
    assert (kept["user_id"], kept["created_by"], kept["assigned_to"], kept["due_date"]) == ("legacy-user", None,
                                                                                          None, None)


# --- original P0 and Phase 1 files built here ------------------------------------------------------------

@pytest.mark.parametrize("phase1_columns", [(), ("userId",), ("userId", "createdBy", "assignedTo"), ("dueDate",)],
                         ids=["p0", "p1-users-only", "p1-no-due", "due-date-only"])
async def test_original_p0_database(db, tmp_path, phase1_columns):
    source = original_db(tmp_path / "p0.db", [
        task("t1", 1, projectId="web-app", sessionKey="agent:dev:1"),
        task("t2", 2, status="done", priority="P0", projectId="web-app", cost=1.25, runtime=90000, model="opus",
             linesAdded=10, linesRemoved=2, linesTotal=12, estimatedHumanMinutes=36.0, humanCost=60.0,
             completedAt="2026-02-14T11:00:00.000Z", commitHash="abc1234"),
        task("t3", 3, status="todo", projectId=None),
    ], settings={"humanHourlyRate": "90", "theme": '{"dark":true}'}, phase1_columns=phase1_columns)

    stats, lines = await run_import(db, source)
    assert stats == {"projects": (1, 1, 0), "tasks": (3, 3, 0), "settings": (2, 2, 0)}
    assert "tasks: 3/3" in lines and "verified: checksums match" in lines

    done = await db.one("tasks.get", id="t2")
    assert done["status"] == "done" and done["priority"] == "P0" and done["project_id"] == "web-app"
    assert done["project_name"] == "Web App"
    assert (done["cost"], done["runtime"], done["lines_total"], done["human_cost"]) == (1.25, 90000, 12, 60.0)
    assert done["completed_at"] == "2026-02-14T11:00:00.000Z" and done["created_at"] == "2026-02-14T10:02:00.000Z"
    assert (done["created_by"], done["assigned_to"], done["user_id"], done["due_date"]) == (None, None, None, None)
    assert done["version"] == 1 and done["tokens_total"] is None
    assert (await db.one("tasks.get", id="t1"))["session_key"] == "agent:dev:1"
    assert (await db.one("tasks.get", id="t3"))["project_id"] is None
    assert await db.one("settings.get", key="humanHourlyRate") == {"value": "90"}
    assert await db.one("settings.get", key="theme") == {"value": '{"dark":true}'}

    stats, lines = await run_import(db, source)
    assert stats == {"projects": (1, 0, 1), "tasks": (3, 0, 3), "settings": (2, 0, 2)}
    assert "nothing to import: the target already has every row" in lines


async def test_original_phase1_database_with_users_comments_and_audit(app, db, tmp_path):
    # Someone already signed in to the new deployment with GitHub id 102: the original's user 'u2'.
    existing, _ = await users.sign_in(db, users.Identity(login="bo-new", github_id=102, name="Bo"), "127.0.0.1",
                                      "pytest")
    source = original_db(tmp_path / "p1.db", [
        task("t1", 1, createdBy="u1", assignedTo="u2", dueDate="2026-03-01T23:59:59.000Z", projectId="api"),
        task("t2", 2, createdBy="dev-user", assignedTo="dev-user"),
    ], settings={"humanHourlyRate": "100"}, phase1_columns=("userId", "createdBy", "assignedTo", "dueDate"),
        phase1_tables=True, rows={
        "users": [
            {"id": "u1", "githubId": 101, "githubLogin": "ana", "name": "Ana", "email": "ana@example.com",
             "avatarUrl": "https://avatars.example/ana", "role": "admin", "createdAt": "2026-02-17T09:00:00.000Z",
             "lastLoginAt": "2026-02-17T10:00:00.000Z"},
            {"id": "u2", "githubId": 102, "githubLogin": "bo", "name": "Bo", "email": None, "avatarUrl": None,
             "role": "owner", "createdAt": "2026-02-17T09:30:00.000Z", "lastLoginAt": None},
            {"id": "u3", "githubId": 103, "githubLogin": "cy", "name": None, "email": None, "avatarUrl": None,
             "role": "superuser", "createdAt": "2026-02-17T09:40:00.000Z", "lastLoginAt": None},
        ],
        "comments": [
            {"id": "c1", "taskId": "t1", "userId": "u1", "userName": "Ana", "userAvatar": None,
             "content": "Looks good", "createdAt": "2026-02-17T11:00:00.000Z", "updatedAt": None},
            {"id": "c2", "taskId": "t2", "userId": "dev-user", "userName": "Local Developer", "userAvatar": None,
             "content": "Done locally", "createdAt": "2026-02-17T11:05:00.000Z",
             "updatedAt": "2026-02-17T11:06:00.000Z"},
        ],
        "audit_log": [
            {"id": "a1", "userId": "u1", "action": "task.created", "entityType": "task", "entityId": "t1",
             "details": '{"title":"Task t1"}', "createdAt": "2026-02-17T11:00:00.000Z"},
            {"id": "a2", "userId": "dev-user", "action": "task.updated", "entityType": "task", "entityId": "t2",
             "details": "not json at all", "createdAt": "2026-02-17T11:01:00.000Z"},
            {"id": "a3", "userId": None, "action": "task.deleted", "entityType": "task", "entityId": "gone",
             "details": "[1, 2]", "createdAt": "2026-02-17T11:02:00.000Z"},
        ],
    })

    stats, lines = await run_import(db, source)
    assert stats["users"] == (3, 2, 1)  # u2 is the target's bo-new (same GitHub id)
    assert stats["tasks"] == (2, 2, 0) and stats["comments"] == (2, 2, 0) and stats["audit_log"] == (3, 3, 0)
    assert stats["settings"] == (1, 0, 1)  # same value as the target's default: not rewritten
    assert any("matched by GitHub id" in line for line in lines)

    ana = await db.one("users.get", id="u1")
    assert (ana["login"], ana["role"], bool(ana["active"]), ana["github_id"]) == ("ana", "admin", True, 101)
    assert (ana["email"], ana["avatar_url"], ana["updated_at"]) == ("ana@example.com", "https://avatars.example/ana",
                                                                    "2026-02-17T09:00:00.000Z")
    assert await db.one("users.get", id="u2") is None
    assert (await db.one("users.get", id="u3"))["role"] == "member"  # unknown role

    t1 = await db.one("tasks.get", id="t1")
    assert (t1["created_by"], t1["assigned_to"], t1["user_id"]) == ("u1", existing["id"], None)
    assert t1["due_date"] == "2026-03-01T23:59:59.000Z" and t1["created_by_login"] == "ana"
    t2 = await db.one("tasks.get", id="t2")
    assert (t2["created_by"], t2["assigned_to"], t2["user_id"]) == (None, None, "dev-user")

    c1, = await db.all("comments.list_for_task", task_id="t1")
    assert (c1["user_id"], c1["user_name"], c1["content"]) == ("u1", "Ana", "Looks good")
    c2, = await db.all("comments.list_for_task", task_id="t2")
    assert (c2["user_id"], c2["user_name"], c2["updated_at"]) == (None, "Local Developer", "2026-02-17T11:06:00.000Z")

    entries = {e["id"]: e for e in await audit.search(db, limit=100)}
    assert (entries["a1"]["user_id"], entries["a1"]["actor_kind"], entries["a1"]["actor_label"]) == (
        "u1", "user", "ana")
    assert entries["a1"]["details"] == {"title": "Task t1"}
    assert (entries["a2"]["user_id"], entries["a2"]["actor_kind"], entries["a2"]["actor_label"]) == (
        None, "system", "dev-user")
    assert entries["a2"]["details"] == {"raw": "not json at all"}
    assert entries["a3"]["actor_label"] == "original" and entries["a3"]["details"] == {"raw": "[1, 2]"}

    stats, _ = await run_import(db, source)
    assert all(inserted == 0 for _, inserted, _ in stats.values())


# --- our own format ---------------------------------------------------------------------------------------

async def test_our_own_database_round_trip(app, db, tmp_path):
    source_path = tmp_path / "source.db"
    await migrate(f"sqlite:///{source_path}")
    source_app = create_app(load_config(make_environ(f"sqlite:///{source_path}", tmp_path / "source-data"),
                                        env_file=None))
    async with source_app.test_app():
        src = services_of(source_app).db
        ada = await sign_in_as(source_app, "ada", "admin")
        mel = await sign_in_as(source_app, "mel", "member")
        _, raw_token = await tokens.create(src, audit.Actor(kind="user", label="ada", user_id=ada.user["id"]),
                                           "agent", "member", None)
        await src.changed("importer.insert_project", id="site", name="Web site", description="the site",
                          owner_id=mel.user["id"], archived=False, created_at="2026-01-01T00:00:00.000Z",
                          updated_at="2026-01-01T00:00:00.000Z")
        created = []
        for n in range(3):
            response = await ada.post("/api/tasks", json={"title": f"Round trip {n}", "projectId": "site",
                                                          "assignedTo": mel.user["id"], "sessionKey": f"s-{n}"})
            assert response.status_code == 201, await response.get_data(as_text=True)
            created.append((await response.get_json())["id"])
        agent = source_app.test_client()
        response = await agent.post("/api/tasks", json={"title": "By an agent", "tokens": {"input": 5, "output": 7}},
                                    headers=bearer(raw_token))
        assert response.status_code == 201
        created.append((await response.get_json())["id"])
        response = await ada.patch(f"/api/tasks/{created[0]}",
                                   json={"status": "done", "cost": 0.5, "runtime": 1200, "linesChanged": {
                                       "added": 3, "removed": 1}})
        assert response.status_code == 200, await response.get_data(as_text=True)
        for n, author in enumerate((ada, mel)):
            response = await author.post(f"/api/tasks/{created[1]}/comments", json={"content": f"note {n}"})
            assert response.status_code == 201
        await src.changed("importer.insert_approval", id="ap1", command="rm -rf build", cwd="/w", host="box",
                          agent_id="dev", session_key="s-0", task_id=created[0], allowed_decisions='["allow-once"]',
                          status="resolved", decision="allow-once", decided_by=ada.user["id"], decided_by_token=None,
                          decided_by_label="ada", decided_at="2026-01-02T00:00:00.000Z", gateway_ack_at=None,
                          requested_at="2026-01-01T23:59:00.000Z", expires_at=None, payload="{}",
                          updated_at="2026-01-02T00:00:00.000Z")
        await src.changed("agents.record_start", gateway_id="default", session_key="s-1", task_id=created[1],
                          project_id="site", agent_id="dev", started_by=mel.user["id"], started_by_token=None,
                          started_by_label="mel", run_id="run-1", started_at="2026-01-02T00:00:00.000Z")
        await services_of(source_app).activity.flush()  # token use, as the source will hold it after shutdown
        snapshot = {
            "tasks": [await src.one("tasks.get", id=task_id) for task_id in created],
            "comments": await src.all("comments.list_for_task", task_id=created[1]),
            "users": await src.all("users.list"),
            "tokens": await src.all("tokens.list"),
            "settings": await src.all("settings.list"),
            "audit": await audit.search(src, limit=1000),
            "approvals": await src.all("importer.approvals_keys", ids=["ap1"]),
            "app_state": await src.all("importer.app_state_keys", ids=["first_admin"]),
            "started": await src.one("agents.session_start", gateway_id="default", session_key="s-1"),
        }
        session_of_ada = ada.raw_session

    stats, lines = await run_import(db, source_path)
    assert set(stats) == {"users", "app_state", "api_tokens", "projects", "tasks", "comments", "settings",
                          "approvals", "started_sessions", "audit_log"}
    assert stats["started_sessions"] == (1, 1, 0)
    assert await db.one("agents.session_start", gateway_id="default", session_key="s-1") == snapshot["started"]
    assert stats["tasks"] == (4, 4, 0) and stats["users"] == (2, 2, 0) and stats["approvals"] == (1, 1, 0)
    assert stats["settings"] == (1, 0, 1)
    assert "verified: checksums match" in lines

    def normal(rows):
        return [{k: (bool(v) if k == "active" else v) for k, v in row.items()} for row in rows]
    assert [await db.one("tasks.get", id=t["id"]) for t in snapshot["tasks"]] == snapshot["tasks"]
    assert await db.all("comments.list_for_task", task_id=created[1]) == snapshot["comments"]
    assert normal(await db.all("users.list")) == normal(snapshot["users"])
    assert await db.all("tokens.list") == snapshot["tokens"]
    assert await db.all("settings.list") == snapshot["settings"]
    source_ids = {e["id"] for e in snapshot["audit"]}
    target_audit = await audit.search(db, limit=1000)
    assert [e for e in target_audit if e["id"] in source_ids] == snapshot["audit"]
    # besides: the import itself, and the target's own start (GATEWAY_URL became its gateway 'default')
    assert {e["action"] for e in target_audit if e["id"] not in source_ids} <= {"data.imported", "gateway.created"}
    assert await db.all("importer.approvals_keys", ids=["ap1"]) == snapshot["approvals"]
    assert await db.all("importer.app_state_keys", ids=["first_admin"]) == snapshot["app_state"]
    project = await db.one("projects.get", id="site")
    assert (project["owner_id"], bool(project["archived"])) == (snapshot["users"][1]["id"], False)

    client = app.test_client()
    me = await client.get("/api/auth/me", headers=bearer(raw_token))  # API tokens carry over...
    assert me.status_code == 200 and (await me.get_json())["name"] == "agent"
    old_session = Browser(app, snapshot["users"][0], session_of_ada, "unused")  # ...sign-in sessions do not
    assert (await old_session.get("/api/auth/me")).status_code == 401

    stats, lines = await run_import(db, source_path)
    assert all(inserted == 0 for _, inserted, _ in stats.values()), stats
    assert "nothing to import: the target already has every row" in lines


async def test_our_own_database_at_another_schema_version_is_refused(db, tmp_path):
    source_path = tmp_path / "source.db"
    await migrate(f"sqlite:///{source_path}")
    with sqlite3.connect(source_path) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 'x')")
    before = await counts(db)
    with pytest.raises(ImportFailed, match="schema version 999 but the target is at"):
        await run_import(db, source_path)
    assert await counts(db) == before


# --- refusals and all-or-nothing ------------------------------------------------------------------------------

def _not_sqlite(path: Path) -> Path:
    path.write_text("id,title\n1,not a database\n")
    return path


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _no_tasks_table(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT)")
    return path


def _tasks_lacking_columns(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT, projectId TEXT, createdAt TEXT)")
        conn.execute("INSERT INTO tasks VALUES ('t1', 'x', 'p', '2026-01-01T00:00:00.000Z')")
    return path


def _unknown_task_columns(path: Path) -> Path:
    original_db(path, [task("t1", 1)], phase1_columns=("userId", "createdBy", "assignedTo", "dueDate",
                                                        "tokensInput"))
    return path


@pytest.mark.parametrize(("make", "message"), [
    (_not_sqlite, "not a readable SQLite database"),
    (_empty_file, "no tasks table"),
    (_no_tasks_table, "no tasks table; tables: notes"),
    (_tasks_lacking_columns, "tasks table lacks columns"),
    (_unknown_task_columns, "unknown columns tokensInput"),
    (None, "no such file"),
], ids=["not-sqlite", "empty-file", "no-tasks-table", "missing-columns", "unknown-columns", "missing-path"])
async def test_cli_refuses_a_bad_source_and_leaves_the_target_untouched(db, database_url, tmp_path, make, message):
    path = make(tmp_path / "source.db") if make else tmp_path / "does-not-exist.db"
    before = await counts(db)
    result = cli_import(path, database_url, tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("clawtrol: import failed: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert await counts(db) == before and before["tasks"] == 0


async def test_a_bad_row_rolls_back_every_row_before_it(db, database_url, tmp_path):
    source = original_db(tmp_path / "bad.db", [
        task("good-1", 1, projectId="alpha"), task("good-2", 2, projectId="beta"),
        task("bad-3", 3, status="archived"),
    ], settings={"humanHourlyRate": "150"}, phase1_columns=("userId", "createdBy", "assignedTo", "dueDate"),
        phase1_tables=True)
    before = await counts(db)
    result = cli_import(source, database_url, tmp_path)
    assert result.returncode == 2
    assert "clawtrol: import failed: task bad-3: status 'archived' is not one of" in result.stderr
    assert "Traceback" not in result.stderr
    assert "projects: 2/2" in result.stdout  # read and inserted before the bad row, then rolled back
    assert await counts(db) == before and before["tasks"] == 0
    assert await db.one("settings.get", key="humanHourlyRate") == {"value": "100"}


async def test_a_conflicting_unique_value_fails_the_whole_run(db, tmp_path):
    await run_import(db, original_db(tmp_path / "a.db", [task("a1", 1, sessionKey="agent:dev:main")]))
    second = original_db(tmp_path / "b.db", [task("b0", 0, projectId="new"),
                                            task("b1", 1, sessionKey="agent:dev:main")])
    before = await counts(db)
    with pytest.raises(ImportFailed, match="tasks b1: conflicts with a different row in the target"):
        await run_import(db, second)
    assert await counts(db) == before and await db.one("tasks.get", id="b0") is None


async def test_verification_fails_when_the_target_holds_different_data(db, tmp_path):
    path = original_db(tmp_path / "v.db", [task("v1", 1)])
    await run_import(db, path)
    with sqlite3.connect(path) as conn:  # the source changed since: same id, another title; plus a new task
        conn.execute("UPDATE tasks SET title = 'Renamed' WHERE id = 'v1'")
        insert(conn, "tasks", task("v2", 2))
    before = await counts(db)
    with pytest.raises(ImportFailed, match=r"verification failed, nothing was imported: tasks: 1 row\(s\) differ "
                                           r"in the target \(e.g. v1\)"):
        await run_import(db, path)
    assert await counts(db) == before and await db.one("tasks.get", id="v2") is None


def test_detection_reads_the_source_read_only(tmp_path):
    path = original_db(tmp_path / "ro.db", [task("r1", 1)])
    path.chmod(0o444)
    source, plan = importer.prepare(str(path))
    try:
        assert plan.kind == "original"
        assert plan.task_query == "original.tasks without assignedTo, createdBy, dueDate, userId"
        assert plan.tables == ("projects", "tasks", "settings")
    finally:
        source.close()
