"""Schema migrations: empty → latest, idempotent, and exactly once under concurrent processes."""

from __future__ import annotations

import concurrent.futures
import json
import shutil

from clawtrol.db import Database, QueryCatalog
from clawtrol.db.migrations import discover, split_sqlite_script, upgrade
from clawtrol.paths import SQL_MIGRATIONS, SQL_QUERIES
from clawtrol.services import services_of

from .conftest import make_environ
from .helpers import run_cli


def open_db(url: str) -> Database:
    return Database.open(url)


def test_both_dialects_have_the_same_migrations():
    sqlite = [(m.version, m.name) for m in discover(SQL_MIGRATIONS / "sqlite")]
    postgres = [(m.version, m.name) for m in discover(SQL_MIGRATIONS / "postgres")]
    assert sqlite == postgres and sqlite[0] == (1, "initial")


def test_sqlite_script_splitting_keeps_statements_whole():
    script = "-- comment\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\n\nINSERT INTO a VALUES ('1');\n-- trailing\n"
    assert split_sqlite_script(script) == ["-- comment\nCREATE TABLE a (x TEXT DEFAULT 'a;b');",
                                           "INSERT INTO a VALUES ('1');"]


async def test_empty_database_upgrades_to_latest_and_second_run_is_a_no_op(empty_database_url):
    db = open_db(empty_database_url)
    await db.connect()
    try:
        applied = await upgrade(db, SQL_MIGRATIONS)
        expected = discover(SQL_MIGRATIONS / db.dialect)
        assert [m.version for m in applied] == [m.version for m in expected]
        assert await upgrade(db, SQL_MIGRATIONS) == []
        recorded = await db.all("migrations.applied")
        assert [row["version"] for row in recorded] == [m.version for m in expected]
        # The schema is usable: the default hourly rate was seeded.
        assert await db.one("settings.get", key="humanHourlyRate") == {"value": "100"}
    finally:
        await db.disconnect()


async def test_concurrent_upgrade_processes_apply_each_migration_once(empty_database_url, tmp_path):
    environ = make_environ(empty_database_url, tmp_path)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: run_cli("db", "upgrade", environ=environ), range(3)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    # each migration is applied by exactly one process (which one differs from run to run)
    for migration in discover(SQL_MIGRATIONS / ("sqlite" if empty_database_url.startswith("sqlite") else "postgres")):
        name = f"applied {migration.version:04d}_{migration.name}"
        assert sum(out.stdout.count(name) for out in results) == 1, name
    db = open_db(empty_database_url)
    await db.connect()
    try:
        rows = await db.all("migrations.applied")
        assert [row["version"] for row in rows] == [m.version for m in discover(SQL_MIGRATIONS / db.dialect)]
    finally:
        await db.disconnect()


async def test_started_sessions_are_rebuilt_from_the_audit_trail(empty_database_url, tmp_path):
    """0003 creates the start work records of sessions started before it, from agent.work_started entries."""
    old_root = tmp_path / "migrations"
    for dialect in ("sqlite", "postgres"):
        (old_root / dialect).mkdir(parents=True)
        for migration in discover(SQL_MIGRATIONS / dialect)[:2]:
            (old_root / dialect / migration.path.name).write_text(migration.path.read_text())
    db = open_db(empty_database_url)
    await db.connect()
    try:
        await upgrade(db, old_root)
        stamp = "2026-01-01T00:00:00.000Z"
        columns = ("description", "project_id", "agent_id", "user_id", "created_by", "created_by_token",
                   "assigned_to", "handoff_notes", "commit_hash", "lines_added", "lines_removed", "lines_total",
                   "estimated_human_minutes", "human_cost", "cost", "runtime", "model", "tokens_input",
                   "tokens_output", "tokens_total", "due_date", "completed_at")
        await db.changed("importer.insert_task", id="t1", title="Old work", status="in-progress", priority="P2",
                         session_key="agent:main:old", version=1, created_at=stamp, updated_at=stamp,
                         **dict.fromkeys(columns))
        # the entry as audit.record wrote it then (today's INSERT also reads a table 0007 creates)
        await db._db.execute(
            "INSERT INTO audit_log (id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id,"
            " details, ip, user_agent, created_at) VALUES ('a1', 'user-that-was-deleted', NULL, 'user', 'octocat',"
            " 'agent.work_started', 'task', 't1', :details, NULL, NULL, :now)",
            {"details": json.dumps({"agentId": "main", "runId": "run-1", "sessionKey": "agent:main:old"}),
             "now": stamp})
        await upgrade(db, SQL_MIGRATIONS)
        record = await db.one("agents.session_start", gateway_id="default", session_key="agent:main:old")
        assert record["started_by_label"] == "octocat" and record["started_by"] is None  # the user is gone
        assert record["started_task_id"] == "t1" and record["agent_id"] == "main"
    finally:
        await db.disconnect()


OLD_ROWS = """
-- name: approval
INSERT INTO approvals (id, command, session_key, allowed_decisions, status, requested_at, updated_at)
VALUES (:id, 'make deploy', 'agent:main:old', '["allow-once","deny"]', 'pending', :now, :now)
RETURNING id

-- name: started
INSERT INTO started_sessions (session_key, agent_id, started_by_label, started_at)
VALUES ('agent:main:old', 'main', 'octocat', :now)
RETURNING session_key
"""


async def test_an_install_from_before_several_gateways_keeps_its_gateway_and_approvals(empty_database_url, tmp_path):
    """0009 + the first start: GATEWAY_URL becomes the gateway 'default', and the approvals, start work records and
    session links stored before belong to it."""
    from clawtrol.app import create_app
    from clawtrol.config import load_config

    from .fake_gateway import FakeGateway

    old_root, old_queries = tmp_path / "migrations", tmp_path / "queries"
    shutil.copytree(SQL_QUERIES, old_queries)
    (old_queries / "old.sql").write_text(OLD_ROWS)
    for dialect in ("sqlite", "postgres"):
        (old_root / dialect).mkdir(parents=True)
        for migration in discover(SQL_MIGRATIONS / dialect):
            if migration.version < 9:
                (old_root / dialect / migration.path.name).write_text(migration.path.read_text())
    dialect = "sqlite" if empty_database_url.startswith("sqlite") else "postgres"
    old = Database(empty_database_url, QueryCatalog.load(old_queries, dialect))
    await old.connect()
    try:
        await upgrade(old, old_root)
        stamp = "2026-01-01T00:00:00.000Z"
        await old.changed("old.approval", id="old-approval", now=stamp)
        await old.changed("old.started", now=stamp)
        await upgrade(old, SQL_MIGRATIONS)
    finally:
        await old.disconnect()

    async with FakeGateway(token="gw-token") as fake:
        environ = make_environ(empty_database_url, tmp_path / "data", GATEWAY_URL=fake.url, GATEWAY_TOKEN="gw-token")
        app = create_app(load_config(environ, env_file=None))
        async with app.test_app():
            registry = services_of(app).gateways
            [connection] = registry.connections()
            assert (connection.id, connection.name, connection.url) == ("default", "default", fake.url)
            await registry.client("default").wait_connected(5)
            db = services_of(app).db
            row = await db.one("approvals.get", gateway_id="default", id="old-approval")
            assert row["gateway_name"] == "default" and row["started_by_label"] == "octocat"  # joined per gateway
            stored = await db.one("gateways.get", id="default")
            assert stored["token_encrypted"] and "gw-token" not in stored["token_encrypted"]
        # a second start neither duplicates the record nor applies a GATEWAY_URL that changed meanwhile
        environ["GATEWAY_URL"] = "ws://127.0.0.1:9"
        again = create_app(load_config(environ, env_file=None))
        async with again.test_app():
            assert [(c.id, c.url) for c in services_of(again).gateways.connections()] == [("default", fake.url)]
