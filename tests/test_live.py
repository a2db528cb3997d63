"""/ws: authenticated like every route, the original's envelope, and fan-out across processes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from quart.testing import WebsocketResponseError

from .conftest import BACKEND, make_environ
from .helpers import run_cli, serving


async def test_anonymous_websocket_is_refused(client):
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket("/ws") as ws:
            await ws.receive()
    assert refused.value.response.status_code == 401


async def test_cross_site_websocket_with_the_cookie_is_refused(admin):
    with pytest.raises(WebsocketResponseError) as refused:
        async with admin.client.websocket("/ws", headers={"Origin": "https://evil.example"}) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 403


async def test_bad_bearer_token_is_refused(client):
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket("/ws", headers={"Authorization": "Bearer mct_nope"}) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 401


async def receive_json(ws, timeout: float = 2.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.receive(), timeout))


async def test_greeting_subscribe_and_task_events(admin, member):
    async with admin.client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
        greeting = await receive_json(ws)
        assert greeting["type"] == "connected" and greeting["gatewayConnected"] is False and greeting["timestamp"]
        await ws.send(json.dumps({"type": "subscribe", "channels": ["tasks"]}))
        assert await receive_json(ws) == {"type": "subscribed", "channels": ["tasks"], "gatewayConnected": False}

        created = await (await member.post("/api/tasks", json={"title": "Ship it"})).get_json()
        event = await receive_json(ws)
        assert event["type"] == "task.created" and event["timestamp"]
        assert event["payload"]["task"]["id"] == created["id"]
        assert event["payload"]["actor"] == "mel" and event["payload"]["actorId"] == member.user["id"]

        await member.patch(f"/api/tasks/{created['id']}", json={"status": "todo"})
        event = await receive_json(ws)
        assert event["type"] == "task.updated"
        assert event["payload"]["oldTask"]["status"] == "backlog" and event["payload"]["task"]["status"] == "todo"
        assert event["payload"]["updates"] == ["status"]

        await member.post(f"/api/tasks/{created['id']}/comments", json={"content": "on it"})
        assert (await receive_json(ws))["type"] == "comment.created"
        await member.delete(f"/api/tasks/{created['id']}")
        event = await receive_json(ws)
        assert event["type"] == "task.deleted" and event["payload"]["taskId"] == created["id"]


async def test_bearer_token_clients_receive_events(app, api_token, admin):
    token = await api_token("viewer")
    async with app.test_client().websocket("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await receive_json(ws))["type"] == "connected"
        await admin.post("/api/tasks", json={"title": "Seen by agents"})
        assert (await receive_json(ws))["payload"]["task"]["title"] == "Seen by agents"


async def test_refused_changes_publish_nothing(admin, member, viewer):
    async with admin.client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
        await receive_json(ws)
        assert (await viewer.post("/api/tasks", json={"title": "nope"})).status_code == 403
        assert (await member.post("/api/tasks", json={"title": ""})).status_code == 400
        with pytest.raises(asyncio.TimeoutError):
            await receive_json(ws, timeout=0.3)


@pytest.mark.skipif(BACKEND != "postgres", reason="cross-process fan-out uses PostgreSQL LISTEN/NOTIFY")
def test_two_processes_share_live_events(database_url, tmp_path):
    """A change made through process A reaches a WebSocket client of process B within a second."""
    environ = make_environ(database_url, tmp_path)
    token = run_cli("token", "create", "--name", "fanout", "--role", "admin", environ=environ).stdout.strip()
    with serving(2, environ, tmp_path) as ports:
        async def scenario() -> float:
            headers = {"Authorization": f"Bearer {token}"}
            async with websockets.connect(f"ws://127.0.0.1:{ports[1]}/ws", additional_headers=headers) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"
                await asyncio.sleep(0.5)  # let process B's listener settle
                started = time.monotonic()
                import httpx

                async with httpx.AsyncClient() as http:
                    response = await http.post(f"http://127.0.0.1:{ports[0]}/api/tasks", headers=headers,
                                               json={"title": "Made on A"})
                    assert response.status_code == 201
                event = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert event["type"] == "task.created" and event["payload"]["task"]["title"] == "Made on A"
                return time.monotonic() - started

        assert asyncio.run(scenario()) < 1.0
