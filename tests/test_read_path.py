"""Reads stay reads: a GET through the API or the pages runs no write statement and opens no transaction,
on either database (token and session use is recorded in the background: auth/activity.py)."""

from __future__ import annotations

import pytest

from clawtrol.db import Database
from clawtrol.services import services_of

from .conftest import Agent

READS = ["/api/tasks/{task}", "/api/tasks", "/api/costs/summary", "/api/approvals", "/api/auth/me",
         "/board", "/costs", "/approvals", "/"]


@pytest.fixture
def writes(monkeypatch) -> list[str]:
    """The named write statements run, and the transactions opened, while the test runs."""
    seen: list[str] = []
    run, transaction = Database._run, Database.transaction

    async def spy_run(self, name, params):
        if self.catalog[name].writes:
            seen.append(name)
        return await run(self, name, params)

    def spy_transaction(self):
        seen.append("transaction")
        return transaction(self)
    monkeypatch.setattr(Database, "_run", spy_run)
    monkeypatch.setattr(Database, "transaction", spy_transaction)
    return seen


async def test_reads_write_nothing_for_tokens_and_browsers(app, admin, api_token, writes):
    task = await (await admin.post("/api/tasks", json={"title": "read me"})).get_json()
    agent = Agent(app, await api_token("viewer"))
    await services_of(app).activity.flush()
    writes.clear()
    for path in READS:
        path = path.format(task=task["id"])
        for caller in (agent, admin):
            if caller is agent and not path.startswith("/api/"):
                continue
            response = await caller.get(path)
            assert response.status_code == 200, path
    assert writes == []
    assert services_of(app).activity.pending == 2  # both uses noted, for the next flush


async def test_cookie_serializers_are_built_once(app, admin, monkeypatch):
    """Quart and quart-auth would build (and self-test) an itsdangerous serializer on every request
    (signed_session.py)."""
    import itsdangerous

    built = []
    real_init = itsdangerous.URLSafeTimedSerializer.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self).__name__)
        real_init(self, *args, **kwargs)
    monkeypatch.setattr(itsdangerous.URLSafeTimedSerializer, "__init__", counting_init)
    for _ in range(5):
        assert (await admin.get("/api/auth/me")).status_code == 200  # a signed-in browser: both cookies
    assert len(built) <= 2


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """Every named statement run while the test runs."""
    seen: list[str] = []
    run = Database._run

    async def spy_run(self, name, params):
        seen.append(name)
        return await run(self, name, params)
    monkeypatch.setattr(Database, "_run", spy_run)
    return seen


async def test_a_change_reads_the_webhooks_only_when_one_is_enabled(admin, statements):
    """The audit INSERT counts the enabled webhooks in the same statement; with none, the outbox reads
    nothing (a round trip less per change), and once one exists its events are queued as before."""
    task = await (await admin.post("/api/tasks", json={"title": "watched"})).get_json()
    statements.clear()
    assert (await admin.patch(f"/api/tasks/{task['id']}", json={"status": "todo"})).status_code == 200
    ran = [name for name in statements if name != "events.notify_many"]  # PostgreSQL's live-event sender
    assert ran == ["sessions.resolve", "tasks.get", "tasks.update", "audit.insert"]  # no webhooks read

    hook = await admin.post("/api/webhooks", json={"url": "https://example.com/hook",
                                                   "events": ["task.status_changed"]})
    assert hook.status_code == 201, await hook.get_json()
    statements.clear()
    assert (await admin.patch(f"/api/tasks/{task['id']}", json={"status": "in-progress"})).status_code == 200
    assert "webhooks.subscribers" in statements and "webhooks.insert_delivery" in statements
