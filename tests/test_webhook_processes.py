"""Webhooks with several app processes on PostgreSQL: two `clawtrol serve` processes share one outbox, and
every event reaches the receiver exactly once (each delivery is leased by one process, webhooks.sql)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .conftest import BACKEND, make_environ
from .helpers import run_cli, serving
from .webhook_receiver import receiving

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="several app processes need PostgreSQL")

EVENTS = 40


def test_two_processes_deliver_each_event_exactly_once(database_url, tmp_path):
    environ = make_environ(database_url, tmp_path)
    token = run_cli("token", "create", "--name", "webhooks", "--role", "admin", environ=environ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    with receiving() as receiver, serving(2, environ, tmp_path) as ports:
        async def scenario() -> list[dict]:
            async with httpx.AsyncClient(headers=headers, timeout=30) as http:
                created = await http.post(f"http://127.0.0.1:{ports[0]}/api/webhooks",
                                          json={"url": receiver.url, "events": ["task.created"]})
                assert created.status_code == 201, created.text
                hook = created.json()
                # tasks created through both processes at once: both senders are woken and claim together
                answers = await asyncio.gather(*(
                    http.post(f"http://127.0.0.1:{ports[n % 2]}/api/tasks", json={"title": f"event {n}"})
                    for n in range(EVENTS)))
                assert [answer.status_code for answer in answers] == [201] * EVENTS
                await receiver.wait_for(EVENTS, timeout=30)
                async with asyncio.timeout(30):
                    while True:
                        listed = (await http.get(f"http://127.0.0.1:{ports[1]}/api/webhooks/{hook['id']}"
                                                 f"/deliveries?limit=100")).json()["deliveries"]
                        if len(listed) == EVENTS and all(d["status"] != "pending" for d in listed):
                            return listed
                        await asyncio.sleep(0.1)

        deliveries = asyncio.run(scenario())
        received = receiver.received()
    ids = [request.headers["X-Clawtrol-Delivery"] for request in received]
    assert len(ids) == EVENTS and len(set(ids)) == EVENTS, "an event was delivered twice"
    assert sorted(request.json["data"]["task"]["title"] for request in received) == sorted(
        f"event {n}" for n in range(EVENTS))
    assert {(d["status"], d["attempts"]) for d in deliveries} == {("delivered", 1)}
