"""Outages under load: PostgreSQL restarted mid-run (the app answers 503 meanwhile and recovers by itself),
and the real OpenClaw gateway killed (the app keeps serving and reconnects when it returns)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import httpx
import pytest
import websockets

from clawtrol.gateway.client import BACKOFF_MAX, GatewayClient, GatewayError
from clawtrol.gateway.identity import KEY_FILE_NAME
from clawtrol.gateway.state import GatewayState

from ..conftest import make_environ
from .harness import (POSTGRES_ONLY, Ledger, Traffic, cli_token, gateway_reported, health, make_users, percentile,
                      simulate, verify_ledger, wait_until)

pytestmark = POSTGRES_ONLY

USERS = {"admin": 3, "member": 5, "viewer": 2}
REQUEST_TIMEOUT = 15.0    # the users' HTTP timeout: a request without an answer by then counts as a hang
MAX_ANSWER_SECONDS = 6.0  # every request, outage or not, is answered within this
WARM_UP = 5.0
OUTAGE = 5.0
AFTER_RECOVERY = 6.0
RECOVERY_BUDGET = 10.0    # seconds from PostgreSQL accepting connections to the app answering 200 again
LIVE_BUDGET = 40.0        # the live-event listener reconnects with its own backoff (1 s, 2 s, 4 s … 30 s)
RECONNECT_SLACK = 15.0    # beyond the gateway client's longest backoff


async def watch_health(base: str, stop: asyncio.Event) -> list[tuple[float, int | None, dict]]:
    """Poll /api/health until `stop`: (time, status, body) every 0.2 s."""
    seen = []
    while not stop.is_set():
        answer = await health(base)
        seen.append((time.monotonic(), *(answer or (None, {}))))
        await asyncio.sleep(0.2)
    return seen


async def probe_outage(base: str, token: str) -> None:
    """While the database is down: API reads and writes and the board page answer 503, API ones in JSON with
    Retry-After, the page as HTML; the health check says why."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        for method, path, body in (("GET", "/api/tasks", None), ("POST", "/api/tasks", {"title": "in the dark"})):
            response = await client.request(method, path, json=body)
            assert response.status_code == 503, (method, path, response.status_code, response.text)
            assert "database" in response.json()["error"] and response.headers["Retry-After"]
        page = await client.get("/board")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        status, report = await health(base)
        assert status == 503 and report["status"] == "unhealthy" and report["db"]["connected"] is False


async def live_event_arrives(base: str, token: str) -> bool:
    """A task created now reaches a /ws client (the PostgreSQL LISTEN connection is back)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(base.replace("http://", "ws://") + "/ws", additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "connected"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            created = await client.post("/api/tasks", json={"title": "live again"})
        if created.status_code != 201:
            return False
        try:
            async with asyncio.timeout(2):
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "task.created" and event["payload"]["task"]["id"] == created.json()["id"]:
                        return True
        except TimeoutError:
            return False


async def _answers_200(base: str, token: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{base}/api/tasks", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def test_postgres_restart_mid_run(pg_cluster, serve, tmp_path):
    await create_database(pg_cluster.url(), "clawtrol")
    database_url = pg_cluster.url("clawtrol")
    environ = make_environ(database_url, tmp_path)
    app = serve(environ)  # applies the migrations
    admin_token = cli_token(environ, "admin-0", "admin")
    traffic, ledger, stop = Traffic(), Ledger(), asyncio.Event()
    users = await make_users(app.base, admin_token, traffic, USERS, timeout=REQUEST_TIMEOUT)
    load = asyncio.gather(*(simulate(user, ledger, stop) for user in users))
    watcher = asyncio.create_task(watch_health(app.base, stop))
    try:
        await asyncio.sleep(WARM_UP)
        down_at = time.monotonic()
        await asyncio.to_thread(pg_cluster.stop, "fast")
        stopped_at = time.monotonic()
        await probe_outage(app.base, admin_token)
        await asyncio.sleep(max(0.0, stopped_at + OUTAGE - time.monotonic()))
        restart_at = time.monotonic()
        await asyncio.to_thread(pg_cluster.start)
        back_at = time.monotonic()
        recovered_in = await wait_until(lambda: _answers_200(app.base, admin_token), RECOVERY_BUDGET, 0.05)
        assert recovered_in is not None, f"the app did not answer 200 within {RECOVERY_BUDGET} s of PostgreSQL's return"
        recovered_at = time.monotonic()
        live_in = await wait_until(lambda: live_event_arrives(app.base, admin_token), LIVE_BUDGET, 0.5)
        await asyncio.sleep(AFTER_RECOVERY)
    finally:
        stop.set()
        await load
        checks = await watcher
        await asyncio.gather(*(user.aclose() for user in users))

    during = traffic.between(stopped_at, restart_at)
    after = traffic.between(recovered_at + 1, float("inf"))
    worst = max(s.seconds for s in traffic.samples)
    traffic.report("PostgreSQL restarted mid-run")
    during_p99 = percentile([s.seconds for s in during], 0.99) * 1000
    print(f"   outage: stop took {stopped_at - down_at:.2f} s, down {restart_at - stopped_at:.1f} s, start took "
          f"{back_at - restart_at:.2f} s; {len(during)} requests during it, statuses "
          f"{sorted({s.status for s in during}, key=str)}, p99 {during_p99:.0f} ms;"
          f" app answered 200 {recovered_in:.2f} s after PostgreSQL was back, live events after "
          f"{'never' if live_in is None else f'{live_in:.1f} s'}; slowest answer {worst:.2f} s; accepted "
          f"{len(ledger.created)} tasks, {len(ledger.moves)} moves, {len(ledger.comments)} comments")

    wrong = [s for s in traffic.samples if s.status is None or (s.status >= 500 and s.status != 503)]
    assert not wrong, (wrong[:5], app.unhandled[:3])
    assert worst <= MAX_ANSWER_SECONDS, f"a request waited {worst:.1f} s for an answer"
    assert len(during) >= 10 and all(s.status == 503 for s in during), sorted({s.status for s in during}, key=str)
    assert after and all(s.status < 500 for s in after), "503s after the app had recovered"
    assert [status for at, status, _ in checks if stopped_at < at < restart_at and status != 503] == []
    assert checks[-1][1] == 200 and checks[-1][2]["db"]["connected"] is True
    assert live_in is not None, f"live events did not come back within {LIVE_BUDGET} s"
    assert not ledger.anomalies, ledger.anomalies[:10]
    assert any(s.started > recovered_at for s in traffic.samples if s.label.startswith("PATCH") and s.status == 200)
    problems = await verify_ledger(database_url, ledger, exact=False)
    assert not problems, "\n".join(problems[:30])
    assert not app.unhandled, app.unhandled[:5]
    stopped_in = app.stop()
    print(f"   SIGTERM after the outage: stopped in {'—' if stopped_in is None else f'{stopped_in:.1f} s'}")
    assert stopped_in is not None, "the app did not stop on SIGTERM after the outage (a database connection leaked?)"


async def approval_is(base: str, token: str, approval_id: str, status: str) -> bool:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        response = await client.get(f"/api/approvals/{approval_id}")
    return response.status_code == 200 and response.json()["status"] == status


async def raise_approval(requester: GatewayClient, command: str) -> tuple[str, asyncio.Task]:
    """Raise an approval on the gateway; (its id, the task awaiting the final answer)."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()
    params = {"command": command, "host": "gateway", "twoPhase": True, "timeoutMs": 120_000, "agentId": "main",
              "sessionKey": "agent:main:main"}
    waiting = asyncio.create_task(requester.request("exec.approval.request", params, expect_final=True, timeout=15,
                                                    on_accepted=lambda payload: accepted.set_result(payload["id"])))
    return await asyncio.wait_for(accepted, 15), waiting


async def test_gateway_killed_and_back(restored_gateway, database_url, serve, tmp_path):
    gateway = restored_gateway
    environ = make_environ(database_url, tmp_path, GATEWAY_URL=gateway.url, GATEWAY_TOKEN=gateway.token)
    admin_token = cli_token(environ, "admin-0", "admin")
    app = serve(environ)
    assert await wait_until(lambda: gateway_reported(app.base), 30) is not None, "the app never reached the gateway"
    requester = GatewayClient(gateway.url, gateway.token, state=GatewayState(), backoff_max=2,
                              identity_path=tmp_path / "requester" / KEY_FILE_NAME)
    await requester.start()
    traffic, ledger, stop = Traffic(), Ledger(), asyncio.Event()
    users = await make_users(app.base, admin_token, traffic, USERS)
    load = asyncio.gather(*(simulate(user, ledger, stop) for user in users))
    try:
        await requester.wait_connected(30)
        approval_id, waiting = await raise_approval(requester, "echo clawtrol-outage")
        assert await wait_until(lambda: approval_is(app.base, admin_token, approval_id, "pending"), 10) is not None
        await asyncio.sleep(2)

        killed_at = time.monotonic()
        await asyncio.to_thread(gateway.kill)
        noticed_in = await wait_until(lambda: gateway_reported(app.base, False), 10, 0.05)
        assert noticed_in is not None, "the app still reports the gateway connected 10 s after it died"
        status, report = await health(app.base)
        assert status == 200 and report["status"] == "degraded" and report["db"]["connected"] is True
        await check_decision_refused(app.base, admin_token, approval_id)
        with pytest.raises(GatewayError):
            await waiting  # the requester's connection died with the gateway

        restarting = time.monotonic()
        await asyncio.to_thread(gateway.start)
        ready_at = time.monotonic()
        budget = BACKOFF_MAX + RECONNECT_SLACK
        reconnected_in = await wait_until(lambda: gateway_reported(app.base), budget, 0.1)
        assert reconnected_in is not None, f"the app did not reconnect within {budget:.0f} s of the gateway's return"
        await requester.wait_connected(30)
        still_listed = {item["id"] for item in await requester.request("exec.approval.list") or []}
        expected = "pending" if approval_id in still_listed else "closed"
        assert await wait_until(lambda: approval_is(app.base, admin_token, approval_id, expected), 10) is not None, \
            f"after the reconnect the app does not show the approval {expected} as the gateway does"
        await asyncio.sleep(2)
    finally:
        stop.set()
        await load
        await requester.stop()
        await asyncio.gather(*(user.aclose() for user in users))

    outage = traffic.between(killed_at, ready_at + reconnected_in)
    traffic.report("OpenClaw gateway killed and restarted")
    print(f"   gateway: down noticed after {noticed_in:.2f} s, restart took {ready_at - restarting:.1f} s, app "
          f"reconnected {reconnected_in:.1f} s after it was ready (backoff max {BACKOFF_MAX:.0f} s); {len(outage)} "
          f"requests while it was away, statuses {sorted({s.status for s in outage})}; the approval raised before "
          f"the kill is {expected} in the app as on the restarted gateway; accepted "
          f"{len(ledger.created)} tasks, {len(ledger.moves)} moves, {len(ledger.comments)} comments")
    assert not traffic.failures(), (traffic.failures()[:5], app.unhandled[:3])
    assert len(outage) > 50 and all(s.status == 200 for s in outage if s.label.startswith("GET"))
    assert not ledger.anomalies, ledger.anomalies[:10]
    problems = await verify_ledger(database_url, ledger, exact=True)
    assert not problems, "\n".join(problems[:30])
    assert not app.unhandled, app.unhandled[:5]


async def check_decision_refused(base: str, token: str, approval_id: str) -> None:
    """Without the gateway a decision is refused with 503 and leaves the approval pending, undecided, unaudited."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        refused = await client.post(f"/api/approvals/{approval_id}/resolve", json={"decision": "deny"})
        assert refused.status_code == 503 and refused.json()["code"] == "GATEWAY_UNAVAILABLE", refused.text
        queue = (await client.get("/api/approvals")).json()
        assert queue["gatewayConnected"] is False
        assert [a["id"] for a in queue["pending"] if a["id"] == approval_id and a["decision"] is None] == [approval_id]
        audit = (await client.get("/api/audit", params={"action": "approval.resolved", "entityId": approval_id})).json()
        assert audit["count"] == 0
