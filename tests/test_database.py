"""The data layer: named queries, helpers, transactions and concurrency, on the configured backend."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading

import pytest

from clawtrol import audit
from clawtrol.audit import Actor
from clawtrol.db import Database, QueryCatalog, UniqueViolation
from clawtrol.db import database as database_module
from clawtrol.db.catalog import parse_file
from clawtrol.paths import SQL_QUERIES
from clawtrol.services import services_of


@pytest.fixture
async def plain_db(database_url):
    database = Database.open(database_url)
    await database.connect()
    yield database
    await database.disconnect()


def test_parse_named_queries():
    queries = parse_file("things", """
-- name: get_one
-- Fetch one thing.
SELECT * FROM things WHERE id = :id AND kind = :kind;

-- name: count_all
SELECT count(*) FROM things WHERE created_at::text = :ts
""")
    assert [q.name for q in queries] == ["things.get_one", "things.count_all"]
    assert queries[0].params == {"id", "kind"}
    assert "Fetch one thing" not in queries[0].sql
    assert queries[1].params == {"ts"}  # ::text is a cast, not a parameter


def test_a_fragment_is_written_once_and_included_where_a_query_says():
    queries = parse_file("things", """
-- fragment: visible
-- Shared by the list and its count.
  AND (CAST(:owner AS TEXT) IS NULL OR owner = :owner)

-- name: list
SELECT * FROM things WHERE kind = :kind
-- include: visible
ORDER BY id

-- name: count
SELECT count(*) FROM things WHERE 1 = 1
-- include: visible
""")
    assert [q.name for q in queries] == ["things.list", "things.count"]  # a fragment is not a query
    assert queries[0].sql == ("SELECT * FROM things WHERE kind = :kind\n"
                              "  AND (CAST(:owner AS TEXT) IS NULL OR owner = :owner)\nORDER BY id")
    assert queries[0].params == {"kind", "owner"} and queries[1].params == {"owner"}
    with pytest.raises(ValueError, match="not a fragment defined above it"):
        parse_file("bad", "-- name: q\nSELECT 1 WHERE 1 = 1\n-- include: later\n-- fragment: later\nAND 1 = 1\n")


def test_literal_percent_is_refused():
    with pytest.raises(ValueError, match="pass LIKE patterns as parameters"):
        parse_file("bad", "-- name: q\nSELECT * FROM t WHERE name LIKE 'a%'")


def test_duplicate_names_are_refused(tmp_path):
    (tmp_path / "a.sql").write_text("-- name: q\nSELECT 1\n-- name: q\nSELECT 2\n")
    with pytest.raises(ValueError, match="defined twice"):
        QueryCatalog.load(tmp_path, "sqlite")


def test_every_query_file_parses_for_both_dialects():
    for dialect in ("sqlite", "postgres"):
        names = QueryCatalog.load(SQL_QUERIES, dialect).names()
        assert "health.ping" in names
    assert "migrations.lock" in QueryCatalog.load(SQL_QUERIES, "postgres").names()
    assert "migrations.lock" not in QueryCatalog.load(SQL_QUERIES, "sqlite").names()


async def test_wrong_parameters_name_the_problem(plain_db):
    with pytest.raises(TypeError, match=r"missing parameters \['key'\]"):
        await plain_db.one("settings.get")
    with pytest.raises(TypeError, match=r"unknown parameters \['nope'\]"):
        await plain_db.one("settings.get", key="x", nope=1)
    with pytest.raises(KeyError, match="no query named"):
        await plain_db.one("settings.does_not_exist")


async def test_helpers_return_plain_values(plain_db):
    assert await plain_db.value("health.ping") == 1
    assert await plain_db.one("settings.get", key="humanHourlyRate") == {"value": "100"}
    assert await plain_db.one("settings.get", key="missing") is None
    changed = await plain_db.changed("settings.upsert", key="k", value="v", updated_at="2026-01-01T00:00:00.000Z",
                                     updated_by=None)
    assert changed == 1
    rows = await plain_db.all("settings.list")
    assert [row["key"] for row in rows] == ["humanHourlyRate", "k"]
    assert all(isinstance(row, dict) for row in rows)
    # A conditional update that matches nothing reports 0 rows, on both backends.
    assert await plain_db.changed("settings.lock", key="missing") == 0


async def test_list_parameters_expand(plain_db):
    for key in ("a", "b", "c"):
        await plain_db.changed("settings.upsert", key=key, value=key.upper(), updated_at="t", updated_by=None)
    rows = await plain_db.all("settings.get_many", keys=["c", "a", "zz"])
    assert rows == [{"key": "a", "value": "A"}, {"key": "c", "value": "C"}]
    assert await plain_db.all("settings.get_many", keys=("b",)) == [{"key": "b", "value": "B"}]
    assert await plain_db.all("settings.get_many", keys=[]) == []


async def test_unique_violation_is_one_exception_type(plain_db):
    await audit.record(plain_db, audit.SYSTEM, "x")
    with pytest.raises(UniqueViolation):
        await plain_db.changed("migrations.record", version=1, name="again", applied_at="t")


async def test_transaction_rolls_back_everything(plain_db):
    with pytest.raises(RuntimeError):
        async with plain_db.transaction():
            await plain_db.changed("settings.upsert", key="half", value="1", updated_at="t", updated_by=None)
            await audit.record(plain_db, audit.SYSTEM, "settings.changed", "setting", "half")
            raise RuntimeError("boom")
    assert await plain_db.one("settings.get", key="half") is None
    assert await plain_db.all("audit.for_entity", entity_type="setting", entity_id="half", limit=5) == []


async def test_audit_details_round_trip_as_json(plain_db):
    actor = Actor(kind="user", label="ana", user_id=None, ip="10.0.0.1", user_agent="pytest")
    await audit.record(plain_db, actor, "task.updated", "task", "t1", {"fields": ["title"], "n": 1})
    [row] = await plain_db.all("audit.for_entity", entity_type="task", entity_id="t1", limit=5)
    assert json.loads(row["details"]) == {"fields": ["title"], "n": 1}
    assert row["ip"] == "10.0.0.1" and row["actor_label"] == "ana"


async def test_fifty_concurrent_read_then_write_transactions_lose_nothing(plain_db):
    """Each writer reads the counter, then writes counter+1 and an audit row, in one transaction."""
    await plain_db.changed("settings.upsert", key="counter", value="0", updated_at="t", updated_by=None)

    async def writer(n: int) -> None:
        async with plain_db.transaction():
            [row] = await plain_db.all("settings.lock", key="counter")
            await asyncio.sleep(0)  # let the others run between the read and the write
            await plain_db.changed("settings.upsert", key="counter", value=str(int(row["value"]) + 1),
                                   updated_at="t", updated_by=None)
            await audit.record(plain_db, audit.SYSTEM, "counter.incremented", "setting", "counter", {"n": n})

    results = await asyncio.gather(*(writer(n) for n in range(50)), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (await plain_db.one("settings.get", key="counter"))["value"] == "50"
    rows = await plain_db.all("audit.for_entity", entity_type="setting", entity_id="counter", limit=100)
    assert sorted(json.loads(r["details"])["n"] for r in rows) == list(range(50))


async def test_statements_are_prepared_once_and_never_compiled_per_call(plain_db, monkeypatch):
    """The catalog prepares each named query for the dialect when it loads; running one compiles nothing."""
    from sqlalchemy.sql.elements import ClauseElement

    statement = plain_db.catalog["settings.get_many"]
    assert statement is plain_db.catalog["settings.get_many"]
    if plain_db.is_sqlite:
        assert ":keys" in statement.text
    else:
        assert "= ANY($1)" in statement.text and statement.order == ("keys",)

    def compile_refused(*args, **kwargs):
        raise AssertionError("a named query was compiled by SQLAlchemy")
    monkeypatch.setattr(ClauseElement, "compile", compile_refused)
    await plain_db.changed("settings.upsert", key="k", value="v", updated_at="t", updated_by=None)
    assert await plain_db.all("settings.get_many", keys=["k"]) == [{"key": "k", "value": "v"}]
    async with plain_db.transaction():
        assert await plain_db.value("health.ping") == 1


async def test_sqlite_connections_are_opened_once_and_reused(app, admin):
    """Requests reuse the process's two SQLite connections: no connection (nor thread) per request."""
    db = services_of(app).db
    if not db.is_sqlite:
        pytest.skip("PostgreSQL connections come from asyncpg's pool")
    pool = db._db._backend._pool
    task = await (await admin.post("/api/tasks", json={"title": "reuse"})).get_json()
    await asyncio.sleep(0.1)  # the background checkpoint after that commit has run (in its worker thread)
    opened = pool.opened
    threads = {thread.ident for thread in threading.enumerate()}
    for _ in range(20):
        assert (await admin.get(f"/api/tasks/{task['id']}")).status_code == 200
        assert (await admin.patch(f"/api/tasks/{task['id']}", json={"priority": "P1"})).status_code == 200
    assert pool.opened == opened == 2
    assert {thread.ident for thread in threading.enumerate()} == threads


async def test_sqlite_reads_outside_a_transaction_cannot_write(plain_db):
    """The reader connection is query_only: a write can only happen on the writer, in a transaction."""
    if not plain_db.is_sqlite:
        pytest.skip("SQLite only")
    reader = plain_db._db._backend._pool.reader()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM settings")
    # a named write outside a transaction still works: it takes the writer, in a transaction of its own
    assert await plain_db.changed("settings.upsert", key="w", value="1", updated_at="t", updated_by=None) == 1


async def test_sqlite_a_transaction_left_open_by_a_cancelled_request_is_rolled_back(plain_db):
    """A request cancelled during BEGIN leaves the writer inside a transaction nobody will end; the next
    transaction rolls that leftover back instead of failing with "cannot start a transaction within a
    transaction"."""
    if not plain_db.is_sqlite:
        pytest.skip("SQLite only")
    writer = plain_db._db._backend._pool.writer()
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO settings (key, value) VALUES ('leftover', 'x')")
    assert await plain_db.changed("settings.upsert", key="k", value="v", updated_at="t", updated_by=None) == 1
    assert await plain_db.one("settings.get", key="leftover") is None
    assert await plain_db.one("settings.get", key="k") == {"value": "v"}


async def test_postgres_a_pinned_task_runs_every_query_on_its_connection_and_gives_it_back(plain_db, monkeypatch):
    """A request pins one pooled connection (app.py): its reads and its transactions run there, a task it
    starts takes a connection of its own (two tasks never share one), and unpin returns it to the pool."""
    if plain_db.is_sqlite:
        pytest.skip("SQLite keeps its two connections for the process; nothing is pinned")
    used = []
    fetch = database_module._fetch

    async def spy(connection, sql, args):
        used.append(connection)
        return await fetch(connection, sql, args)
    monkeypatch.setattr(database_module, "_fetch", spy)
    pool = plain_db._postgres_pool
    pinned = await plain_db.pin()
    try:
        assert pool.get_idle_size() < pool.get_size()
        await plain_db.value("health.ping")
        own = used[-1]
        async with plain_db.transaction():
            await plain_db.changed("settings.upsert", key="pinned", value="1", updated_at="t", updated_by=None)
            async with plain_db.connection() as held:
                assert held.raw_connection is own
        await asyncio.create_task(plain_db.value("health.ping"))
        assert used[1] is own and used[2] is not own
    finally:
        await plain_db.unpin(pinned)
    assert pool.get_idle_size() == pool.get_size()
    assert (await plain_db.one("settings.get", key="pinned")) == {"value": "1"}


async def test_postgres_requests_give_their_connection_back(app, admin):
    """After any number of requests, every connection the requests took is back in the pool."""
    db = services_of(app).db
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    task = await (await admin.post("/api/tasks", json={"title": "pool"})).get_json()
    for _ in range(30):
        assert (await admin.get(f"/api/tasks/{task['id']}")).status_code == 200
    assert (await admin.get("/api/tasks/missing")).status_code == 404
    await asyncio.sleep(0.1)  # the live sender's NOTIFY after the POST has finished
    pool = db._postgres_pool
    assert pool.get_idle_size() == pool.get_size()
