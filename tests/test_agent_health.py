"""Agent health from what the gateway reports (issue #15, part 3): working, idle, stalled, offline, error.

The tracker's clock is injected and the stall threshold is one minute, so a stall is a clock step, not a wait.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from clawtrol.agents.health import HealthTracker
from clawtrol.agents.health_poller import HealthPoller
from clawtrol.config import ConfigError, load_config
from clawtrol.webhooks import signing
from clawtrol.services import services_of

from .helpers import default_gateway
from .conftest import make_environ
from .gateway_fixtures import connected, eventually, fake  # noqa: F401

T0 = 1_800_000_000_000
GW = "default"  # the gateway the scripted rows come from
MINUTE = 60_000


class Clock:
    def __init__(self, now: int = T0):
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def row(key: str, **fields) -> dict:
    return {"key": key, "agentId": key.split(":")[1], "updatedAt": T0, "hasActiveRun": False, "status": "done",
            "inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **fields}


@pytest.fixture
def config(database_url, tmp_path, fake):  # noqa: F811  (the fake gateway, a one-minute stall threshold)
    return load_config(make_environ(database_url, tmp_path / "data", GATEWAY_URL=fake.url, GATEWAY_TOKEN="gw-token",
                                    STALL_MINUTES="1"), env_file=None)


# --- the states, from scripted sessions.list rows and events --------------------------------------------

def test_a_run_is_working_until_it_is_quiet_for_the_threshold_and_activity_revives_it():
    clock, online = Clock(), [True]
    tracker = HealthTracker(1, clock=clock, connected=lambda _gateway_id: online[0])
    tracker.observe(GW, [row("agent:main:a", hasActiveRun=True, status="running")])
    assert tracker.session_state("agent:main:a") == "working"
    clock.advance(MINUTE - 1)
    tracker.observe(GW, [row("agent:main:a", hasActiveRun=True, status="running")])  # nothing moved
    assert tracker.session_state("agent:main:a") == "working"
    clock.advance(1)
    assert tracker.session_state("agent:main:a") == "stalled"
    assert [s["sessionKey"] for s in tracker.stalled()] == ["agent:main:a"]
    assert tracker.stalled()[0]["quietMs"] == MINUTE
    # token usage moved: activity, working again (updatedAt unchanged)
    tracker.observe(GW, [row("agent:main:a", hasActiveRun=True, status="running", outputTokens=9, totalTokens=19)])
    assert tracker.session_state("agent:main:a") == "working"
    clock.advance(MINUTE)
    assert tracker.session_state("agent:main:a") == "stalled"
    # a chat event for the session is activity too
    tracker.observe_event(GW, "chat", {"sessionKey": "agent:main:a", "state": "delta", "runId": "r1"})
    assert tracker.session_state("agent:main:a") == "working"
    online[0] = False
    assert tracker.session_state("agent:main:a") == "offline"
    assert tracker.agent_state(GW, "main") == "offline"


def test_first_sight_uses_the_gateways_own_timestamps():
    """After an app restart a run that has been quiet for long is stalled at once, not after another wait."""
    clock = Clock(T0 + 30 * MINUTE)
    tracker = HealthTracker(10, clock=clock)
    tracker.observe(GW, [row("agent:main:old", hasActiveRun=True, status="running", updatedAt=T0),
                         row("agent:main:new", hasActiveRun=True, status="running", updatedAt=T0 + 25 * MINUTE),
                         row("agent:main:done", updatedAt=T0)])
    assert tracker.session_state("agent:main:old") == "stalled"
    assert tracker.session_state("agent:main:new") == "working"
    assert tracker.session_state("agent:main:done") == "idle"
    assert tracker.session_state("agent:main:unknown") is None


def test_errors_from_the_row_and_from_events():
    clock = Clock()
    tracker = HealthTracker(1, clock=clock)
    tracker.observe(GW, [row("agent:main:failed", status="failed",
                             lastRunError="No route-compatible authentication"),
                         row("agent:main:timeout", status="timeout"),
                         row("agent:main:aborted", abortedLastRun=True),
                         row("agent:main:killed", status="killed"),
                         row("agent:main:ok")])
    assert {key.split(":")[2]: tracker.session_state(key) for _, key in tracker.sessions} == {
        "failed": "error", "timeout": "error", "aborted": "error", "killed": "idle", "ok": "idle"}
    # a run that fails between two polls: the events say so first
    tracker.observe_event(GW, "agent", {"sessionKey": "agent:main:ok", "stream": "lifecycle",
                                        "data": {"phase": "start"}})
    assert tracker.session_state("agent:main:ok") == "working"
    tracker.observe_event(GW, "chat", {"sessionKey": "agent:main:ok", "state": "error", "errorMessage": "boom"})
    assert tracker.session_state("agent:main:ok") == "error"
    tracker.observe(GW, [row(key) if key == "agent:main:ok" else row(key, status="failed")
                         for _, key in tracker.sessions])
    assert tracker.session_state("agent:main:ok") == "error"  # the row has not moved yet: the error stands
    tracker.observe(GW, [row("agent:main:ok", hasActiveRun=True, status="running", lastRunId="r2")])
    assert tracker.session_state("agent:main:ok") == "working"  # a new run clears it
    assert set(tracker.sessions) == {(GW, "agent:main:ok")}  # sessions gone from a complete list are forgotten


def test_an_agent_is_its_sessions_worst_and_its_latest_error():
    clock = Clock()
    tracker = HealthTracker(1, clock=clock)
    tracker.agents = {GW: [{"id": "main"}, {"id": "ops"}, {"id": "quiet"}]}
    tracker.observe(GW, [row("agent:main:a", hasActiveRun=True, status="running"),
                         row("agent:main:b", status="failed"),
                         row("agent:ops:old", status="failed", updatedAt=T0 - MINUTE), row("agent:ops:new")])
    assert tracker.agent_states(GW) == {"main": "working", "ops": "idle", "quiet": "idle"}
    clock.advance(MINUTE)
    assert tracker.agent_states(GW)["main"] == "stalled"
    tracker.observe(GW, [row("agent:main:b", status="failed", updatedAt=T0 + MINUTE)])
    assert tracker.agent_states(GW)["main"] == "error"  # no run in progress; the latest run failed


def test_the_stall_threshold_setting():
    def load(value: str | None):
        extra = {} if value is None else {"STALL_MINUTES": value}
        return load_config(make_environ("sqlite:///x.db", __import__("pathlib").Path("/tmp/x"), **extra), env_file=None)
    assert load(None).stall_minutes == 10 and load("3").stall_minutes == 3
    for bad in ("0", "abc", "1441"):
        with pytest.raises(ConfigError) as caught:
            load(bad)
        assert any(problem.startswith("STALL_MINUTES:") for problem in caught.value.problems)


# --- the app: poller, live event, pages and API ----------------------------------------------------------

def _clocked(app) -> Clock:
    clock = Clock()
    services_of(app).agent_health.clock = clock
    return clock


async def test_a_stall_is_announced_once_and_shown_everywhere(connected, fake, db, admin):
    clock = _clocked(connected)
    poller: HealthPoller = services_of(connected).agent_health_poller
    hub = services_of(connected).hub
    events = hub.subscribe()
    fake.add_session("agent:main:work", label="Fix login", hasActiveRun=True, status="running", updatedAt=T0)
    fake.add_session("agent:main:main", updatedAt=T0 - 5 * MINUTE)
    task = await (await admin.post("/api/tasks", json={"title": "Fix the login", "sessionKey": "agent:main:work",
                                                       "status": "in-progress"})).get_json()
    await poller.poll()
    roster = await (await admin.get("/api/agents/roster")).get_json()
    assert roster["agents"][0]["id"] == "main" and roster["agents"][0]["health"] == "working"
    assert roster["agents"][0]["status"] == "online"  # the existing field is unchanged

    clock.advance(MINUTE)
    await poller.poll()
    await poller.poll()
    assert await poller.check() == []  # already announced: not on every poll
    stalled = [e for e in await _drain(hub, events) if e["type"] == "agent.stalled"]
    assert len(stalled) == 1
    payload = stalled[0]["payload"]
    assert payload["sessionKey"] == "agent:main:work" and payload["agentId"] == "main"
    assert payload["quietMs"] == MINUTE and payload["task"] == {"id": task["id"], "title": "Fix the login"}

    roster = await (await admin.get("/api/agents/roster")).get_json()
    assert roster["agents"][0]["health"] == "stalled"
    sessions = {s["sessionKey"]: s for s in (await (await admin.get("/api/agents")).get_json())["sessions"]}
    assert sessions["agent:main:work"]["health"] == "stalled" and sessions["agent:main:main"]["health"] == "idle"
    one = await (await admin.get("/api/sessions/main/agent:main:work")).get_json()
    assert one["health"] == "stalled" and one["taskId"] == task["id"]
    agent = await (await admin.get("/api/agents/main")).get_json()
    assert agent["health"] == "stalled"
    by_key = await (await admin.get("/api/agents/agent:main:work")).get_json()
    assert by_key["health"] == "stalled" and by_key["session"]["health"] == "stalled"

    page = await (await admin.get("/agents")).get_data(as_text=True)
    assert "badge-health-stalled" in page
    assert "badge-health-stalled" in await (await admin.get("/agents/main")).get_data(as_text=True)
    assert "badge-health-stalled" in await (await admin.get("/sessions/agent:main:work")).get_data(as_text=True)
    board = await (await admin.get("/board")).get_data(as_text=True)
    card = board[board.index(f'id="task-{task["id"]}"'):]
    card = card[:card.index("</article>")]
    assert "badge-health-stalled" in card
    overview = await (await admin.get("/")).get_data(as_text=True)
    assert "Stalled agent sessions" in overview and "Fix login" in overview
    assert 'href="/sessions/agent:main:work#message-form"' in overview and "Message the agent" in overview

    # activity again, then quiet again: a new quiet period, announced again
    fake.sessions["agent:main:work"]["updatedAt"] = T0 + MINUTE
    await poller.poll()
    assert (await (await admin.get("/api/agents/roster")).get_json())["agents"][0]["health"] == "working"
    assert "Stalled agent sessions" not in await (await admin.get("/")).get_data(as_text=True)
    clock.advance(MINUTE)
    await poller.poll()
    assert [e["type"] for e in await _drain(hub, events)].count("agent.stalled") == 1
    hub.unsubscribe(events)


async def test_only_one_process_announces_a_stall(connected, fake, db):
    """Several app processes (PostgreSQL) each track the gateway; the conditional insert picks one announcer,
    and an app restart (a fresh tracker) does not announce the same stall again."""
    clock = _clocked(connected)
    hub, registry = services_of(connected).hub, services_of(connected).gateways
    fake.add_session("agent:main:work", hasActiveRun=True, status="running", updatedAt=T0 - 5 * MINUTE)
    pollers = [services_of(connected).agent_health_poller]
    for _ in range(2):
        tracker = HealthTracker(1, clock=clock, connected=registry.is_connected)
        pollers.append(HealthPoller(db, hub, registry, tracker))
    events = hub.subscribe()
    for poller in pollers:
        await poller.poll()
        assert poller.tracker.session_state("agent:main:work") == "stalled"
    assert [e["type"] for e in await _drain(hub, events)].count("agent.stalled") == 1
    hub.unsubscribe(events)


async def test_offline_when_the_gateway_disconnects(connected, fake, admin):
    _clocked(connected)
    fake.agents.append({"id": "ops", "identity": {"name": "Ops"}})
    fake.add_session("agent:main:work", hasActiveRun=True, status="running", updatedAt=T0)
    task = await (await admin.post("/api/tasks", json={"title": "Linked", "sessionKey": "agent:main:work"})).get_json()
    await services_of(connected).agent_health_poller.poll()
    await fake.drop()
    gateway = default_gateway(connected)

    async def disconnected():
        return not gateway.connected
    await eventually(disconnected)
    tracker = services_of(connected).agent_health
    assert tracker.session_state("agent:main:work") == "offline"
    assert tracker.agent_states(GW) == {"main": "offline", "ops": "offline"}
    assert await services_of(connected).agent_health_poller.check() == []  # offline is no stall
    await gateway.stop()  # no reconnect while the pages are read
    page = await (await admin.get("/agents")).get_data(as_text=True)
    assert "not connected" in page and "Ops" in page and page.count("badge-health-offline") == 2
    board = await (await admin.get("/board")).get_data(as_text=True)
    card = board[board.index(f'id="task-{task["id"]}"'):]
    assert "badge-health-offline" in card[:card.index("</article>")]


async def test_error_after_a_failed_run_from_the_poll_and_from_events(connected, fake, admin):
    _clocked(connected)
    fake.add_session("agent:main:broken", status="failed", lastRunError="No route-compatible authentication source")
    fake.add_session("agent:main:live", hasActiveRun=True, status="running", updatedAt=T0)
    await services_of(connected).agent_health_poller.poll()
    sessions = {s["sessionKey"]: s for s in (await (await admin.get("/api/sessions/main")).get_json())["sessions"]}
    assert sessions["agent:main:broken"]["health"] == "error" and sessions["agent:main:live"]["health"] == "working"

    await fake.emit("chat", {"sessionKey": "agent:main:live", "runId": "r1", "state": "error",
                             "errorMessage": "provider refused"})
    tracker = services_of(connected).agent_health

    async def failed():
        return tracker.session_state("agent:main:live") == "error"
    await eventually(failed)
    assert "badge-health-error" in await (await admin.get("/agents/main")).get_data(as_text=True)


async def test_the_poller_polls_on_connect(connected, fake):
    """The background loop polls soon after the gateway connects (then at most every 30 s)."""
    assert services_of(connected).agent_health_poller.interval == 30

    async def polled():
        return any(method == "sessions.list" for method, _ in fake.requests)
    await eventually(polled)


async def _drain(hub, queue) -> list[dict]:
    """Every event published so far: live events arrive in order (on PostgreSQL through LISTEN), so reading up to
    a marker published now sees them all, with no waiting for events that might still come."""
    await hub.publish("test.marker", {})
    found = []
    async with asyncio.timeout(5):
        while (event := await queue.get())["type"] != "test.marker":
            found.append(event)
    return found


async def test_a_stall_queues_the_agent_stalled_webhook_once(connected, fake, db, admin):
    """A webhook subscribed to agent.stalled gets one delivery per quiet period, queued with the claim."""
    clock = _clocked(connected)
    poller: HealthPoller = services_of(connected).agent_health_poller
    created = await admin.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["agent.stalled"]})
    assert created.status_code == 201, await created.get_data(as_text=True)
    webhook = await created.get_json()
    fake.add_session("agent:main:work", label="Fix login", hasActiveRun=True, status="running", updatedAt=T0)
    await poller.poll()
    clock.advance(MINUTE)
    await poller.poll()
    await poller.poll()
    deliveries = (await (await admin.get(f"/api/webhooks/{webhook['id']}/deliveries")).get_json())["deliveries"]
    assert [d["event"] for d in deliveries] == ["agent.stalled"]
    [row] = await db.all("webhooks.deliveries", webhook_id=webhook["id"], limit=10)
    payload = json.loads(row["payload"])
    assert payload["data"]["session"]["sessionKey"] == "agent:main:work" and payload["data"]["task"] is None
    assert signing.summary("agent.stalled", payload) == "Agent main on gateway default stalled: no activity for 1 min"
    assert signing.link("https://ct.example", "agent.stalled", payload["data"]) == \
        "https://ct.example/sessions/agent:main:work?gatewayId=default"
