"""Revocation reaches open WebSockets (issue #12, item 3): a revoked token, a deactivated or deleted user,
a signed-out session and a role change close the sockets they hold within a second — across processes on
PostgreSQL — and a periodic read-only re-check catches what no control message announced."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from quart.testing import WebsocketResponseError
from quart.testing.connections import WebsocketDisconnectError

from clawtrol.app import create_app
from clawtrol.audit import Actor
from clawtrol.auth import tokens
from clawtrol.clock import now_iso
from clawtrol.live import CONTROL_TYPE
from clawtrol.services import services_of

from .conftest import BACKEND, make_environ, sign_in_as
from .helpers import run_cli, serving

ORIGIN = {"Origin": "http://localhost"}

pg_only = pytest.mark.skipif(BACKEND != "postgres", reason="cross-process fan-out uses PostgreSQL LISTEN/NOTIFY")


async def new_token(app, admin, role: str = "viewer") -> tuple[str, str]:
    """(token id, raw token), created as the admin would."""
    actor = Actor(kind="user", label=admin.user["login"], user_id=admin.user["id"])
    row, raw = await tokens.create(services_of(app).db, actor, f"{role}-agent", role, None)
    return row["id"], raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


async def receive_json(ws, timeout: float = 2.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.receive(), timeout))


async def connected(ws) -> None:
    assert (await receive_json(ws))["type"] == "connected"


async def closed_with(ws, timeout: float = 1.0) -> int:
    """The close code of the next thing the socket gets; fails if an event (or nothing) comes instead."""
    try:
        message = await asyncio.wait_for(ws.receive(), timeout)
    except WebsocketDisconnectError as closed:
        return closed.args[0]
    raise AssertionError(f"expected the socket to close, got {message!r}")


async def stays_quiet(ws, timeout: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.receive(), timeout)


async def still_receives(ws, admin, title: str) -> None:
    await admin.post("/api/tasks", json={"title": title})
    event = await receive_json(ws)
    assert event["type"] == "task.created" and event["payload"]["task"]["title"] == title


# --- control messages from the revoking routes ------------------------------------------------------

async def test_revoked_token_socket_closes_at_once_and_gets_no_later_events(app, admin):
    token_id, raw = await new_token(app, admin, "viewer")
    _, other = await new_token(app, admin, "viewer")
    async with app.test_client().websocket("/ws", headers=bearer(raw)) as ws, \
            app.test_client().websocket("/ws", headers=bearer(other)) as bystander:
        await connected(ws)
        await connected(bystander)
        started = time.monotonic()
        assert (await admin.delete(f"/api/tokens/{token_id}")).status_code == 200
        await admin.post("/api/tasks", json={"title": "After the revoke"})
        assert await closed_with(ws) == 4401  # before the task.created that followed the revoke
        assert time.monotonic() - started < 1.0
        # the other token's socket stays open, and never sees the control message
        assert (await receive_json(bystander))["type"] == "task.created"
        await stays_quiet(bystander)
    assert services_of(app).hub.subscriber_count == 0  # every closed socket let go of its queue
    with pytest.raises(WebsocketResponseError) as refused:  # and it cannot come back
        async with app.test_client().websocket("/ws", headers=bearer(raw)) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 401


async def test_token_revoked_from_the_admin_page_closes_its_socket(app, admin):
    token_id, raw = await new_token(app, admin, "member")
    async with app.test_client().websocket("/ws", headers=bearer(raw)) as ws:
        await connected(ws)
        response = await admin.post(f"/admin/tokens/{token_id}/revoke", headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert await closed_with(ws) == 4401


async def test_deactivated_user_sockets_close(app, admin, member):
    second = await sign_in_as(app, "mel")  # another browser of the same user
    async with member.client.websocket("/ws", headers=ORIGIN) as ws, \
            second.client.websocket("/ws", headers=ORIGIN) as ws2, \
            admin.client.websocket("/ws", headers=ORIGIN) as admin_ws:
        for socket in (ws, ws2, admin_ws):
            await connected(socket)
        response = await admin.patch(f"/api/users/{member.user['id']}", json={"active": False})
        assert response.status_code == 200
        assert await closed_with(ws) == 4401
        assert await closed_with(ws2) == 4401
        await still_receives(admin_ws, admin, "Admin still live")


async def test_deactivation_from_the_admin_page_closes_the_socket(app, admin, member):
    async with member.client.websocket("/ws", headers=ORIGIN) as ws:
        await connected(ws)
        response = await admin.post(f"/admin/users/{member.user['id']}", form={"active": "false"},
                                    headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert await closed_with(ws) == 4401


async def test_deleted_user_socket_closes(app, admin, member):
    async with member.client.websocket("/ws", headers=ORIGIN) as ws:
        await connected(ws)
        assert (await admin.delete(f"/api/users/{member.user['id']}")).status_code == 200
        assert await closed_with(ws) == 4401


async def test_logout_closes_that_sessions_sockets_only(app, admin, member):
    other_browser = await sign_in_as(app, "mel")
    async with member.client.websocket("/ws", headers=ORIGIN) as ws, \
            other_browser.client.websocket("/ws", headers=ORIGIN) as other:
        await connected(ws)
        await connected(other)
        assert (await member.post("/api/auth/logout")).status_code == 200
        assert await closed_with(ws) == 4401
        await still_receives(other, admin, "Other session still live")


async def test_role_change_closes_the_socket_and_it_may_reopen_with_the_new_role(app, admin, member):
    hub = services_of(app).hub
    async with member.client.websocket("/ws", headers=ORIGIN) as ws, \
            admin.client.websocket("/ws", headers=ORIGIN) as admin_ws:
        await connected(ws)
        await connected(admin_ws)
        response = await admin.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"})
        assert response.status_code == 200
        assert await closed_with(ws) == 4403
        await stays_quiet(admin_ws)  # other users are untouched
    async with member.client.websocket("/ws", headers=ORIGIN) as ws:
        await connected(ws)
        assert [s.holder.role for s in hub._sockets if s.holder.id == member.user["id"]] == ["viewer"]
        await still_receives(ws, admin, "Seen as a viewer")
        # the admin page's role select: back to member
        response = await admin.post(f"/admin/users/{member.user['id']}", form={"role": "member"},
                                    headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert await closed_with(ws) == 4403


async def test_unchanged_role_keeps_the_socket(app, admin, member):
    async with member.client.websocket("/ws", headers=ORIGIN) as ws:
        await connected(ws)
        assert (await admin.patch(f"/api/users/{member.user['id']}", json={"role": "member"})).status_code == 200
        await still_receives(ws, admin, "Still a member")


async def test_control_messages_are_not_events(app):
    with pytest.raises(ValueError):
        await services_of(app).hub.publish(CONTROL_TYPE, {"tokenId": "x", "reason": "token_revoked"})


# --- the periodic re-check ---------------------------------------------------------------------------

async def test_recheck_closes_a_socket_whose_token_was_revoked_in_the_database(app, admin, db):
    app.config["LIVE_RECHECK_SECONDS"] = 0.2
    token_id, raw = await new_token(app, admin, "viewer")
    async with app.test_client().websocket("/ws", headers=bearer(raw)) as ws:
        await connected(ws)
        await db.changed("tokens.revoke", id=token_id, now=now_iso())  # no control message
        assert await closed_with(ws, timeout=1.5) == 4401


async def test_recheck_closes_a_socket_whose_role_changed_in_the_database(app, admin, member, db):
    app.config["LIVE_RECHECK_SECONDS"] = 0.2
    async with member.client.websocket("/ws", headers=ORIGIN) as ws:
        await connected(ws)
        await db.changed("users.set_role", id=member.user["id"], role="viewer", now=now_iso())
        assert await closed_with(ws, timeout=1.5) == 4403


async def test_a_requested_recheck_runs_at_once(app, admin, db):
    """What the hub does when its LISTEN connection comes back (control messages may have been missed)."""
    app.config["LIVE_RECHECK_SECONDS"] = 60
    token_id, raw = await new_token(app, admin, "viewer")
    async with app.test_client().websocket("/ws", headers=bearer(raw)) as ws:
        await connected(ws)
        await db.changed("tokens.revoke", id=token_id, now=now_iso())
        await stays_quiet(ws)
        services_of(app).hub.request_recheck()
        assert await closed_with(ws) == 4401


async def test_recheck_only_reads(app, admin, member, db, monkeypatch):
    app.config["LIVE_RECHECK_SECONDS"] = 0.05
    _, raw = await new_token(app, admin, "viewer")
    async with member.client.websocket("/ws", headers=ORIGIN) as ws, \
            app.test_client().websocket("/ws", headers=bearer(raw)) as token_ws:
        await connected(ws)
        await connected(token_ws)
        writes: list[str] = []
        original = db.changed

        async def spy(name, /, **params):
            writes.append(name)
            return await original(name, **params)

        monkeypatch.setattr(db, "changed", spy)
        reads = []
        lookup = tokens.lookup

        async def counting_lookup(*args):
            reads.append(1)
            return await lookup(*args)

        monkeypatch.setattr(tokens, "lookup", counting_lookup)
        await asyncio.sleep(0.5)
        assert len(reads) >= 3  # it did re-check…
        assert writes == []  # …without touching last_used_at / last_seen_at
        await still_receives(ws, admin, "Still open")


# --- across processes (PostgreSQL) -------------------------------------------------------------------

@pg_only
async def test_revocation_on_one_instance_closes_sockets_on_another(app, config, admin, member):
    other = create_app(config)  # a second app instance on the same database
    async with other.test_app():
        token_id, raw = await new_token(app, admin, "viewer")
        member_on_other = await sign_in_as(other, "mel")
        async with other.test_client().websocket("/ws", headers=bearer(raw)) as ws, \
                member_on_other.client.websocket("/ws", headers=ORIGIN) as member_ws:
            await connected(ws)
            await connected(member_ws)
            # instance B has resolved (and cached, auth/token_cache.py) the token for an API call
            assert (await other.test_client().get("/api/auth/me", headers=bearer(raw))).status_code == 200
            started = time.monotonic()
            assert (await admin.delete(f"/api/tokens/{token_id}")).status_code == 200  # through instance A
            assert await closed_with(ws) == 4401
            assert time.monotonic() - started < 1.0
            # the control message that closed B's socket also emptied B's token cache
            assert (await other.test_client().get("/api/auth/me", headers=bearer(raw))).status_code == 401
            assert (await admin.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"})).status_code == 200
            assert await closed_with(member_ws) == 4403
        assert services_of(other).hub.subscriber_count == 0  # every closed socket let go of its queue


@pg_only
def test_two_processes_revocation_reaches_the_other_process(database_url, tmp_path):
    """Real `clawtrol serve` processes: revoke through A; B closes the socket with 4401 and says why."""
    environ = make_environ(database_url, tmp_path)
    admin_token = run_cli("token", "create", "--name", "ops", "--role", "admin", environ=environ).stdout.strip()
    viewer_token = run_cli("token", "create", "--name", "watcher", "--role", "viewer",
                           environ=environ).stdout.strip()
    with serving(2, environ, tmp_path) as ports:
        async def scenario() -> float:
            async with websockets.connect(f"ws://127.0.0.1:{ports[1]}/ws",
                                          additional_headers=bearer(viewer_token)) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}",
                                             headers=bearer(viewer_token)) as on_b:
                    assert (await on_b.get("/api/auth/me")).status_code == 200  # B has the token cached
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}",
                                                 headers=bearer(admin_token)) as http:
                        listed = (await http.get("/api/tokens")).json()["tokens"]
                        token_id = next(t["id"] for t in listed if t["name"] == "watcher")
                        started = time.monotonic()
                        assert (await http.delete(f"/api/tokens/{token_id}")).status_code == 200
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 5)
                    assert closed.value.rcvd.code == 4401 and closed.value.rcvd.reason == "token revoked"
                    elapsed = time.monotonic() - started
                    assert (await on_b.get("/api/auth/me")).status_code == 401  # B's cache was emptied too
                return elapsed

        assert asyncio.run(scenario()) < 1.0
