"""The OpenClaw gateway client against the in-process fake gateway (tests/fake_gateway.py)."""

from __future__ import annotations

import asyncio
import logging
import stat
import time

import pytest

from clawtrol.app import create_app
from clawtrol.config import load_config
from clawtrol.gateway.client import (DEFAULT_CAPS, DEFAULT_SCOPES, GatewayClient, GatewayError, GatewayEvent,
                                     GatewayTimeout, GatewayUnavailable, backoff_delay)
from clawtrol.gateway.identity import KEY_FILE_NAME, DeviceIdentity, DeviceIdentityError
from clawtrol.gateway.state import GatewayState

from .helpers import default_gateway
from .conftest import make_environ
from .fake_gateway import FakeCall, FakeError, FakeGateway

TOKEN = "fake-token-0123456789abcdef"


@pytest.fixture
async def fake():
    async with FakeGateway(token=TOKEN) as gateway:
        yield gateway


def make_client(url: str, tmp_path, token: str = TOKEN, **options) -> GatewayClient:
    options.setdefault("backoff_initial", 0.02)
    options.setdefault("backoff_max", 0.2)
    return GatewayClient(url, token, state=GatewayState(), identity_path=tmp_path / "data" / KEY_FILE_NAME, **options)


@pytest.fixture
async def gw(fake, tmp_path):
    gateway_client = make_client(fake.url, tmp_path)
    await gateway_client.start()
    await gateway_client.wait_connected(5)
    yield gateway_client
    await gateway_client.stop()


# --- handshake -------------------------------------------------------------------------------------

async def test_handshake_sends_connect_with_scopes_caps_token_and_device_proof(fake, gw):
    params = fake.connect_params[0]
    assert params["minProtocol"] == params["maxProtocol"] == 4
    assert params["role"] == "operator"
    assert params["client"]["id"] == "cli" and params["client"]["mode"] == "cli"
    # the scopes trap: approvals reach a connection only with operator.admin plus the approval caps
    assert params["scopes"] == list(DEFAULT_SCOPES)
    assert set(params["scopes"]) == {"operator.read", "operator.write", "operator.approvals", "operator.admin"}
    assert set(params["caps"]) == set(DEFAULT_CAPS) == {"exec-approvals", "approvals"}
    assert params["auth"] == {"token": TOKEN}
    # the fake verified the v3 signature over its challenge; the id is the key fingerprint
    assert params["device"]["id"] == gw.state.device_id == fake.connections[0].device_id
    assert gw.device_token == "fake-device-token"


async def test_hello_ok_fills_the_gateway_state(fake, gw):
    state = gw.state
    assert gw.connected and state.connected
    assert state.server_version == fake.version
    assert state.as_json() == {"connected": True, "version": fake.version}
    assert state.protocol == 4 and state.conn_id
    assert set(state.scopes) == set(DEFAULT_SCOPES)
    assert state.supports("agents.list") and not state.supports("sessions.spawn")
    assert state.connects == 1 and state.connected_at and state.last_error is None
    assert gw.hello["type"] == "hello-ok"


async def test_the_token_is_never_logged(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    good = make_client(fake.url, tmp_path)
    await good.start()
    await good.wait_connected(5)
    await good.request("health")
    await fake.drop()
    await fake.wait_for(lambda: len(fake.live) == 1)
    await good.stop()
    bad = make_client(fake.url, tmp_path, token="wrong-" + TOKEN)
    await bad.start()
    await fake.wait_for(lambda: bad.state.last_error is not None)
    await bad.stop()
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]  # the fake's own logs
    assert any(r.name == "clawtrol.gateway.client" for r in ours)
    for record in ours:
        assert TOKEN not in record.getMessage() and TOKEN not in str(vars(record))
    assert TOKEN not in repr(good)


async def test_wrong_token_is_reported_and_retried(fake, tmp_path, caplog):
    bad = make_client(fake.url, tmp_path, token="wrong", backoff_max=0.05)
    await bad.start()
    try:
        await fake.wait_for(lambda: len(fake.connect_params) >= 2)
        assert not bad.connected
        assert "token mismatch" in bad.state.last_error
        assert any(r.levelno == logging.ERROR and "check the gateway's token" in r.getMessage() for r in caplog.records)
        with pytest.raises(GatewayUnavailable):
            await bad.request("health")
    finally:
        await bad.stop()


async def test_pairing_required_names_the_request_to_approve_then_connects(fake, tmp_path, caplog):
    """A non-loopback gateway answers an unknown device with NOT_PAIRED until an operator approves it."""
    refusal = {"code": "NOT_PAIRED", "message": "pairing required: device is not approved yet",
               "details": {"code": "PAIRING_REQUIRED", "requestId": "req-123", "recommendedNextStep": "wait_then_retry",
                           "pauseReconnect": False}}
    fake.connect_errors = [refusal, refusal]
    gateway_client = make_client(fake.url, tmp_path)
    await gateway_client.start()
    try:
        await fake.wait_for(lambda: gateway_client.state.pairing_request_id == "req-123")
        assert "pairing required" in gateway_client.state.last_error
        assert any(r.levelno == logging.ERROR and "openclaw devices approve req-123" in r.getMessage()
                   for r in caplog.records)
        await gateway_client.wait_connected(5)  # approved: the next attempt gets hello-ok
        assert gateway_client.state.pairing_request_id is None and gateway_client.state.last_error is None
    finally:
        await gateway_client.stop()


async def test_startup_unavailable_is_retried_until_hello_ok(fake, tmp_path):
    fake.connect_errors = [{"code": "UNAVAILABLE", "message": "gateway starting; retry shortly", "retryAfterMs": 10,
                            "details": {"reason": "startup-sidecars"}}] * 2
    gateway_client = make_client(fake.url, tmp_path, backoff_initial=5, backoff_max=30)
    await gateway_client.start()
    try:
        started = time.monotonic()
        await gateway_client.wait_connected(3)  # retryAfterMs (10 ms) wins over the 5 s backoff
        assert time.monotonic() - started < 2
        assert len(fake.connect_params) == 3
    finally:
        await gateway_client.stop()


async def test_a_gateway_speaking_another_protocol_is_refused(fake, tmp_path):
    fake.hello_patch = {"protocol": 5}
    gateway_client = make_client(fake.url, tmp_path)
    await gateway_client.start()
    try:
        await fake.wait_for(lambda: len(fake.connect_params) >= 2)  # refused, and retried
        assert not gateway_client.connected
        assert "protocol 5" in gateway_client.state.last_error
        fake.hello_patch = {}
        await gateway_client.wait_connected(5)
    finally:
        await gateway_client.stop()


# --- requests --------------------------------------------------------------------------------------

async def test_request_returns_the_payload(fake, gw):
    assert await gw.request("agents.list") == {"defaultId": "main", "mainKey": "main", "agents": fake.agents}
    assert await gw.request("echo", {"a": [1, 2]}) == {"a": [1, 2]}
    assert ("echo", {"a": [1, 2]}) in fake.requests


async def test_error_response_raises_gateway_error_with_code_and_details(gw):
    with pytest.raises(GatewayError) as caught:
        await gw.request("fail")
    error = caught.value
    assert not isinstance(error, GatewayUnavailable)
    assert error.code == "FORBIDDEN" and error.message == "missing scope: operator.admin"
    assert error.detail_code == "MISSING_SCOPE" and error.details["missingScope"] == "operator.admin"
    assert error.method == "fail"
    with pytest.raises(GatewayError) as caught:
        await gw.request("no.such.method")
    assert caught.value.code == "INVALID_REQUEST"
    assert await gw.request("health")  # the connection is still fine


async def test_responses_out_of_order_reach_their_callers(gw):
    slow = asyncio.create_task(gw.request("slow", {"seconds": 0.3}))
    await asyncio.sleep(0.05)
    fast = await gw.request("slow", {"seconds": 0.01})
    assert fast == {"slept": 0.01} and not slow.done()
    assert await slow == {"slept": 0.3}


async def test_request_timeout(fake, gw):
    started = time.monotonic()
    with pytest.raises(GatewayTimeout) as caught:
        await gw.request("never", timeout=0.2)
    assert 0.15 < time.monotonic() - started < 2
    assert isinstance(caught.value, GatewayError) and isinstance(caught.value, TimeoutError)
    assert caught.value.code == "TIMEOUT" and caught.value.method == "never"
    assert gw._pending == {}
    assert gw.request_timeout == 30.0  # the default


async def test_request_when_not_connected_raises_unavailable(tmp_path):
    idle = make_client("ws://127.0.0.1:9", tmp_path)
    with pytest.raises(GatewayUnavailable):
        await idle.request("health")
    await idle.start()
    try:
        await asyncio.sleep(0.05)
        with pytest.raises(GatewayUnavailable) as caught:
            await idle.request("health")
        assert caught.value.code == "NOT_CONNECTED" and isinstance(caught.value, GatewayError)
        assert idle.state.last_error and "ConnectionRefused" in idle.state.last_error
        with pytest.raises(GatewayTimeout):
            await idle.wait_connected(0.05)
    finally:
        await idle.stop()


async def test_two_phase_request_waits_for_the_final_answer(fake, gw, tmp_path):
    accepted: list[dict] = []
    call = asyncio.create_task(gw.request("exec.approval.request", {"command": "echo hi", "twoPhase": True},
                                              expect_final=True, on_accepted=accepted.append, timeout=0.2))
    await fake.wait_for(lambda: bool(accepted))
    assert accepted[0]["status"] == "accepted"
    approval_id = accepted[0]["id"]
    await asyncio.sleep(0.3)  # past `timeout`: it bounds the first answer only
    assert not call.done()
    fake.resolve(approval_id, "deny")
    final = await call
    assert final["id"] == approval_id and final["decision"] == "deny" and "status" not in final


async def test_two_phase_final_timeout(fake, gw):
    with pytest.raises(GatewayTimeout) as caught:
        await gw.request("exec.approval.request", {"command": "true", "twoPhase": True}, expect_final=True,
                             final_timeout=0.1)
    assert "accepted" in caught.value.message


async def test_two_phase_without_expect_final_returns_the_ack_and_ignores_the_final(fake, gw):
    ack = await gw.request("exec.approval.request", {"command": "ls", "twoPhase": True})
    assert ack["status"] == "accepted"
    fake.resolve(ack["id"], "allow-once")  # the second res for the same id arrives; nobody waits for it
    await asyncio.sleep(0.05)
    assert await gw.request("health")
    assert gw.connected and gw._pending == {}


async def test_two_phase_error_after_accept(fake, gw):
    async def accept_then_fail(call: FakeCall):
        await call.accept({"id": "x"})
        raise FakeError("UNAVAILABLE", "agent run failed")
    fake.methods["agent"] = accept_then_fail
    with pytest.raises(GatewayError) as caught:
        await gw.request("agent", {"message": "hi"}, expect_final=True)
    assert caught.value.code == "UNAVAILABLE"


async def test_expect_final_with_a_single_answer(gw):
    assert await gw.request("echo", {"status": "ok"}, expect_final=True) == {"status": "ok"}


# --- events ----------------------------------------------------------------------------------------

async def test_events_reach_subscribers_in_order(fake, gw):
    seen: list[tuple[str, object]] = []
    everything: list[str] = []

    async def on_requested(event: GatewayEvent):
        await asyncio.sleep(0.01)  # a slow handler still sees events in order
        seen.append((event.event, event.payload["id"]))

    def on_resolved(event: GatewayEvent):  # plain functions work too
        seen.append((event.event, event.payload["id"]))

    gw.on_event("exec.approval.requested", on_requested)
    unsubscribe = gw.on_event("exec.approval.resolved", on_resolved)
    gw.on_event("*", lambda event: everything.append(event.event))
    for n in range(3):
        await fake.emit("exec.approval.requested", {"id": n})
        await fake.emit("exec.approval.resolved", {"id": n})
    await fake.emit("presence", {})
    await fake.wait_for(lambda: "presence" in everything)
    assert seen == [(name, n) for n in range(3) for name in ("exec.approval.requested", "exec.approval.resolved")]
    unsubscribe()
    await fake.emit("exec.approval.resolved", {"id": 99})
    await fake.emit("presence", {})
    await fake.wait_for(lambda: everything.count("presence") == 2)
    assert ("exec.approval.resolved", 99) not in seen


async def test_a_failing_handler_does_not_stop_dispatch(fake, gw, caplog):
    seen = []

    async def broken(event):
        raise RuntimeError("handler bug")

    gw.on_event("thing", broken)
    gw.on_event("thing", lambda event: seen.append(event.payload))
    await fake.emit("thing", 1)
    await fake.emit("thing", 2)
    await fake.wait_for(lambda: seen == [1, 2])
    assert any("handler failed" in r.getMessage() for r in caplog.records)


async def test_handlers_may_call_request(fake, gw):
    answers = []

    async def on_requested(event):
        answers.append(await gw.request("exec.approval.list"))

    gw.on_event("exec.approval.requested", on_requested)
    await fake.emit("exec.approval.requested", {"id": "a"})
    await fake.wait_for(lambda: answers)
    assert answers == [None]  # nothing pending: null, as the real gateway answers


async def test_approval_round_trip_between_two_clients(fake, gw, tmp_path):
    """One connection raises an approval (two-phase), the other sees the event and resolves it."""
    requester = make_client(fake.url, tmp_path / "other")
    await requester.start()
    await requester.wait_connected(5)
    try:
        async def approve(event):
            await gw.request("exec.approval.resolve", {"id": event.payload["id"], "decision": "allow-once"})
        gw.on_event("exec.approval.requested", approve)
        final = await requester.request("exec.approval.request", {"command": "echo hi", "twoPhase": True},
                                        expect_final=True, timeout=5, final_timeout=5)
        assert final["decision"] == "allow-once"
    finally:
        await requester.stop()


# --- liveness and reconnects -----------------------------------------------------------------------

async def test_reconnects_after_the_gateway_drops_and_calls_on_connect_each_time(fake, tmp_path):
    hellos: list[dict] = []
    reasons: list[str] = []
    resynced: list = []
    gateway_client = make_client(fake.url, tmp_path)

    async def resync(hello):
        hellos.append(hello)
        resynced.append(await gateway_client.request("exec.approval.list"))  # what approvals will do

    gateway_client.on_connect(resync)
    gateway_client.on_disconnect(reasons.append)
    await gateway_client.start()
    try:
        await fake.wait_for(lambda: len(resynced) == 1)
        pending = asyncio.create_task(gateway_client.request("never"))
        await asyncio.sleep(0.05)
        await fake.drop(1012, "service restart")
        with pytest.raises(GatewayUnavailable):
            await pending  # not replayed
        await fake.wait_for(lambda: len(resynced) == 2)
        assert gateway_client.connected and gateway_client.state.connects == 2
        assert len(fake.connect_params) == 2
        assert hellos[0]["server"]["connId"] != hellos[1]["server"]["connId"]
        assert reasons and "1012" in reasons[0]
        assert await gateway_client.request("health")
    finally:
        await gateway_client.stop()


async def test_state_goes_disconnected_while_the_gateway_is_down(tmp_path):
    async with FakeGateway(token=TOKEN) as first:
        port = first.port
        gateway_client = make_client(first.url, tmp_path)
        await gateway_client.start()
        await gateway_client.wait_connected(5)
    try:
        await asyncio.sleep(0.1)
        assert not gateway_client.connected
        assert gateway_client.state.as_json() == {"connected": False, "version": None}
        assert gateway_client.state.disconnected_at
        # the gateway comes back on the same port: the client finds it
        async with FakeGateway(token=TOKEN, version="2026.9.7-fake", port=port):
            await gateway_client.wait_connected(5)
            assert gateway_client.state.as_json() == {"connected": True, "version": "2026.9.7-fake"}
    finally:
        await gateway_client.stop()


async def test_a_silent_gateway_is_detected_by_the_tick_watchdog(tmp_path):
    async with FakeGateway(token=TOKEN, tick_interval_ms=100) as fake:
        gateway_client = make_client(fake.url, tmp_path)
        await gateway_client.start()
        try:
            await gateway_client.wait_connected(5)
            await asyncio.sleep(0.35)  # ticks keep the connection alive
            assert len(fake.connect_params) == 1
            fake.silent = True
            await fake.wait_for(lambda: fake.connections[0].closed.is_set(), timeout=3)
            assert fake.connections[0].close_code == 4000
            fake.silent = False
            await fake.wait_for(lambda: len(fake.live) == 1 and gateway_client.connected, timeout=3)
            assert gateway_client.state.connects == 2
        finally:
            await gateway_client.stop()


def test_backoff_grows_from_one_second_and_caps_at_thirty():
    assert [backoff_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_delay(10_000) == 30
    assert backoff_delay(-1) == 1
    assert [backoff_delay(n, 0.5, 3) for n in range(4)] == [0.5, 1, 2, 3]


async def test_backoff_is_used_between_failed_attempts(tmp_path):
    sleeps: list[float] = []

    async def no_wait(seconds):
        sleeps.append(seconds)
        await asyncio.sleep(0)

    idle = GatewayClient("ws://127.0.0.1:9", TOKEN, identity_path=tmp_path / KEY_FILE_NAME)
    idle._pause = no_wait  # the default backoff, without waiting for it
    await idle.start()
    try:
        while len(sleeps) < 8:
            await asyncio.sleep(0.01)
    finally:
        await idle.stop()
    assert sleeps[:8] == [1, 2, 4, 8, 16, 30, 30, 30]


# --- shutdown --------------------------------------------------------------------------------------

async def test_stop_is_prompt_and_fails_pending_requests(fake, gw):
    pending = asyncio.create_task(gw.request("never"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await gw.stop()
    assert time.monotonic() - started < 1
    with pytest.raises(GatewayUnavailable):
        await pending
    assert not gw.connected and not gw.running
    assert gw.state.connected is False
    await fake.wait_for(lambda: fake.connections[0].closed.is_set(), timeout=2)
    assert fake.connections[0].close_code == 1000
    await gw.stop()  # twice is fine


async def test_stop_during_backoff_is_prompt(tmp_path):
    idle = make_client("ws://127.0.0.1:9", tmp_path, backoff_initial=30, backoff_max=30)
    await idle.start()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await idle.stop()
    assert time.monotonic() - started < 0.5


async def test_stop_against_a_hung_gateway_is_bounded(fake, tmp_path):
    hung = make_client(fake.url, tmp_path, close_timeout=0.3)
    await hung.start()
    await hung.wait_connected(5)
    fake.freeze()  # the gateway will not answer the close frame
    started = time.monotonic()
    await hung.stop()
    elapsed = time.monotonic() - started
    fake.thaw()
    assert 0.25 < elapsed < 1.5  # waited for the close handshake only as long as close_timeout
    assert not hung.running and not hung.connected


# --- device identity -------------------------------------------------------------------------------

def test_device_key_is_created_once_with_mode_0600_and_reused(tmp_path):
    path = tmp_path / "data" / KEY_FILE_NAME
    first = DeviceIdentity.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = DeviceIdentity.load_or_create(path)
    assert first.device_id == second.device_id and len(first.device_id) == 64
    assert first.public_key == second.public_key and "=" not in first.public_key
    assert not [p for p in path.parent.iterdir() if p.name != KEY_FILE_NAME]  # no temp files left


def test_a_loose_key_file_is_tightened(tmp_path):
    path = tmp_path / KEY_FILE_NAME
    identity = DeviceIdentity.load_or_create(path)
    path.chmod(0o644)
    assert DeviceIdentity.load_or_create(path).device_id == identity.device_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_corrupt_key_is_reported_not_replaced(tmp_path):
    path = tmp_path / KEY_FILE_NAME
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(DeviceIdentityError):
        DeviceIdentity.load_or_create(path)
    assert path.read_text() == "not a key"


async def test_a_corrupt_key_keeps_the_client_retrying_without_crashing(fake, tmp_path):
    path = tmp_path / "data" / KEY_FILE_NAME
    path.parent.mkdir()
    path.write_text("garbage")
    broken = make_client(fake.url, tmp_path)
    await broken.start()
    try:
        await fake.wait_for(lambda: broken.state.last_error is not None)
        assert "not an unencrypted PEM private key" in broken.state.last_error
        assert not broken.connected and fake.connect_params == []
    finally:
        await broken.stop()


async def test_the_same_device_id_is_sent_across_restarts(fake, tmp_path):
    for _ in range(2):
        gateway_client = make_client(fake.url, tmp_path)
        await gateway_client.start()
        await gateway_client.wait_connected(5)
        await gateway_client.stop()
    first, second = fake.connect_params
    assert first["device"]["id"] == second["device"]["id"]
    assert first["device"]["nonce"] != second["device"]["nonce"]
    key = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert DeviceIdentity.load_or_create(key).device_id == first["device"]["id"]


# --- the app ---------------------------------------------------------------------------------------

async def test_health_reports_the_gateway_disconnected(app):
    response = await app.test_client().get("/api/health")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["gateway"] == {"connected": False, "version": None}
    assert body["status"] == "degraded"
    gateway = default_gateway(app)
    assert gateway.running


async def test_health_reports_the_gateway_connected_through_the_app(fake, database_url, tmp_path):
    environ = make_environ(database_url, tmp_path / "data", GATEWAY_URL=fake.url, GATEWAY_TOKEN=TOKEN)
    application = create_app(load_config(environ, env_file=None))
    async with application.test_app():
        gateway = default_gateway(application)
        await gateway.wait_connected(5)
        response = await application.test_client().get("/api/health")
        body = await response.get_json()
        assert body["gateway"] == {"connected": True, "version": fake.version}
        assert body["status"] in ("healthy", "degraded")  # degraded only if the database is slow
        if body["db"]["responseMs"] < 200:
            assert body["status"] == "healthy"
        assert (tmp_path / "data" / KEY_FILE_NAME).exists()
        await fake.close()  # the gateway goes away
        await asyncio.sleep(0.1)
        body = await (await application.test_client().get("/api/health")).get_json()
        assert body["gateway"] == {"connected": False, "version": None} and body["status"] == "degraded"
    assert not gateway.running  # after_serving stopped it
