"""Agents, sessions, start work, messages and health with two gateways at once (issue #15, parts 2 and 3): the
'default' gateway (GATEWAY_URL, the `fake` fixture) and a second one, "gpu", added as a record at runtime."""

from __future__ import annotations

import asyncio
import time

import pytest

from clawtrol import audit
from clawtrol.agents import associations
from clawtrol.audit import Actor
from clawtrol.config import load_config
from clawtrol.gateways import service as gateways_service
from clawtrol.services import services_of

from .conftest import make_environ, sign_in_as
from .fake_gateway import FakeGateway
from .gateway_fixtures import connected, eventually, fake  # noqa: F401
from .helpers import default_gateway
from .test_agent_health import MINUTE, T0, Clock

SAME_KEY = "agent:main:shared"  # one session key that both gateways have: two different sessions


@pytest.fixture
def config(database_url, tmp_path, fake):  # noqa: F811  (the default gateway is the fake; stalls after a minute)
    return load_config(make_environ(database_url, tmp_path / "data", GATEWAY_URL=fake.url, GATEWAY_TOKEN="gw-token",
                                    STALL_MINUTES="1"), env_file=None)


@pytest.fixture
async def fake_b():
    async with FakeGateway(token="gw-b") as gateway:
        gateway.agents = [{"id": "builder", "identity": {"name": "Bob the Builder"}, "model": "fake/fake-2"},
                          {"id": "main", "identity": {"name": "GPU main"}}]
        yield gateway


@pytest.fixture
async def gpu(connected, fake_b, admin) -> str:  # noqa: F811
    """The second gateway's id, once the app is connected to both."""
    app = connected
    actor = Actor(kind="user", label=admin.user["login"], user_id=admin.user["id"])
    async with app.app_context():
        row = await gateways_service.create(services_of(app), actor, {"name": "gpu", "url": fake_b.url, "token": "gw-b"})
    connection = services_of(app).gateways.get(row["id"])
    await connection.client.wait_connected(5)
    return row["id"]


def _sent(gateway: FakeGateway) -> list[dict]:
    return [params for method, params in gateway.requests if method == "chat.send"]


# --- the roster -------------------------------------------------------------------------------------------

async def test_the_roster_lists_both_gateways_agents_grouped(connected, fake, fake_b, gpu, viewer):
    now = int(time.time() * 1000)
    fake.add_session("agent:main:main", updatedAt=now - 30_000)
    fake_b.add_session("agent:builder:main", updatedAt=now - 10_000)
    body = await (await viewer.get("/api/agents/roster")).get_json()
    by_gateway = {(agent["gatewayId"], agent["id"]): agent for agent in body["agents"]}
    assert set(by_gateway) == {("default", "main"), (gpu, "builder"), (gpu, "main")}
    assert by_gateway[(gpu, "builder")]["gatewayName"] == "gpu" and by_gateway[(gpu, "builder")]["status"] == "online"
    assert by_gateway[("default", "main")]["activeSession"] == "agent:main:main"
    assert by_gateway[(gpu, "main")]["activeSession"] is None  # the same agent id, another gateway's agent
    assert {g["id"]: g["connected"] for g in body["gateways"]} == {"default": True, gpu: True}
    only = await (await viewer.get(f"/api/agents/roster?gatewayId={gpu}")).get_json()
    assert {agent["id"] for agent in only["agents"]} == {"builder", "main"} and len(only["gateways"]) == 1
    assert (await viewer.get("/api/agents/roster?gatewayId=nope")).status_code == 400

    sessions = await (await viewer.get("/api/agents")).get_json()
    assert {(s["gatewayId"], s["sessionKey"]) for s in sessions["sessions"]} == {
        ("default", "agent:main:main"), (gpu, "agent:builder:main")}

    page = await (await viewer.get("/agents")).get_data(as_text=True)
    default_at, gpu_at = page.index('data-gateway-id="default"'), page.index(f'data-gateway-id="{gpu}"')
    assert page.index("Bob the Builder") > gpu_at and page.index("GPU main") > gpu_at
    assert default_at < page.index("agent:main:main") < gpu_at  # each agent under its gateway's heading
    assert f"/agents/builder?gatewayId={gpu}" in page


# --- start work -------------------------------------------------------------------------------------------

async def test_start_work_on_a_chosen_gateway_sends_there_only_and_records_it(connected, fake, fake_b, gpu, db,
                                                                               admin):
    task = await (await admin.post("/api/tasks", json={"title": "Train the model"})).get_json()
    ambiguous = await admin.post("/api/agents/spawn", json={"taskId": task["id"]})
    assert ambiguous.status_code == 400 and (await ambiguous.get_json())["field"] == "gatewayId"
    assert "gpu" in (await ambiguous.get_json())["error"]  # names the choices

    dialog = await (await admin.get(f"/board/tasks/{task['id']}")).get_data(as_text=True)
    assert 'name="gatewayId"' in dialog and f'value="{gpu}"' in dialog  # several gateways: the form asks

    started = await admin.post("/api/agents/spawn", json={"taskId": task["id"], "agentId": "builder",
                                                          "gatewayId": gpu})
    assert started.status_code == 201, await started.get_data(as_text=True)
    result = await started.get_json()
    key = result["childSessionKey"]
    assert result["gatewayId"] == gpu and result["task"]["sessionGatewayId"] == gpu
    assert [p["sessionKey"] for p in _sent(fake_b)] == [key] and _sent(fake) == []
    assert (await db.one("agents.session_start", gateway_id=gpu, session_key=key))["agent_id"] == "builder"
    assert await db.one("agents.session_start", gateway_id="default", session_key=key) is None
    [entry] = await audit.search(db, action="agent.work_started")
    assert entry["details"]["gatewayId"] == gpu

    # the session's pages find it on its gateway through the task link
    page = await (await admin.get(f"/sessions/{key}")).get_data(as_text=True)
    assert "On gateway <strong>gpu</strong>" in page and "Train the model" in page
    one = await (await admin.get(f"/api/sessions/builder/{key}")).get_json()
    assert one["gatewayId"] == gpu and one["taskId"] == task["id"]

    # the board's start work form, with the gateway chosen in its select
    other = await (await admin.post("/api/tasks", json={"title": "Second"})).get_json()
    html = await (await admin.post(f"/board/tasks/{other['id']}/start", form={"gatewayId": "default"})
                  ).get_data(as_text=True)
    assert "on gateway default" in html
    assert len(_sent(fake)) == 1 and len(_sent(fake_b)) == 1


async def test_the_projects_default_gateway_is_where_its_work_starts(connected, fake, fake_b, gpu, db, admin):
    created = await admin.post("/api/projects", json={"name": "Vision", "defaultGatewayId": gpu})
    assert created.status_code == 201 and (await created.get_json())["project"]["defaultGatewayId"] == gpu
    bad = await admin.patch("/api/projects/vision", json={"defaultGatewayId": "nope"})
    assert bad.status_code == 400 and (await bad.get_json())["field"] == "defaultGatewayId"
    task = await (await admin.post("/api/tasks", json={"title": "Label images", "projectId": "vision"})).get_json()
    dialog = await (await admin.get(f"/board/tasks/{task['id']}")).get_data(as_text=True)
    assert f'<option value="{gpu}" selected>' in dialog
    started = await (await admin.post("/api/agents/spawn", json={"taskId": task["id"]})).get_json()
    assert started["gatewayId"] == gpu and started["agentId"] == "main" and _sent(fake) == []
    # the project form offers the gateways; clearing the default puts the choice back on the caller
    page = await (await admin.get("/projects/vision")).get_data(as_text=True)
    assert 'name="defaultGatewayId"' in page and f'<option value="{gpu}" selected>gpu</option>' in page
    cleared = await admin.patch("/api/projects/vision", json={"defaultGatewayId": None})
    assert (await cleared.get_json())["defaultGatewayId"] is None
    again = await admin.post("/api/agents/spawn", json={"taskId": task["id"]})
    assert again.status_code == 400


# --- authority is per gateway -----------------------------------------------------------------------------

async def test_a_start_on_one_gateway_grants_nothing_on_the_other(connected, fake, fake_b, gpu, db, member):
    task = await (await member.post("/api/tasks", json={"title": "Mine"})).get_json()
    started = await (await member.post("/api/agents/spawn", json={"taskId": task["id"], "gatewayId": "default"})
                     ).get_json()
    key = started["childSessionKey"]
    fake_b.add_session(key)  # the same key exists on the other gateway: another session, not the member's

    refused = await member.post(f"/api/agents/{key}/message", json={"message": "hi", "gatewayId": gpu})
    assert refused.status_code == 403 and (await refused.get_json())["code"] == "FORBIDDEN"
    assert _sent(fake_b) == []
    assert (await member.patch(f"/api/agents/{key}/model?gatewayId={gpu}",
                               json={"model": "fake/fake-2"})).status_code == 403
    assert (await member.delete(f"/api/agents/{key}?gatewayId={gpu}")).status_code == 403
    assert key in fake_b.sessions

    allowed = await member.post(f"/api/agents/{key}/message", json={"message": "status?", "gatewayId": "default"})
    assert allowed.status_code == 200 and (await allowed.get_json())["gatewayId"] == "default"
    by_link = await member.post(f"/api/agents/{key}/message", json={"message": "and now?"})  # the task's gateway
    assert by_link.status_code == 200
    assert [p["message"] for p in _sent(fake)][-2:] == ["status?", "and now?"] and _sent(fake_b) == []
    transcript = await (await member.get(f"/api/sessions/main/{key}/transcript?gatewayId={gpu}")).get_json()
    assert transcript["gatewayId"] == gpu and transcript["authority"]["canMessage"] is False
    transcript = await (await member.get(f"/api/sessions/main/{key}/transcript")).get_json()
    assert transcript["gatewayId"] == "default" and transcript["authority"]["canMessage"] is True

    # the page's message form, on the other gateway: refused with a toast
    form = await member.post(f"/sessions/{key}/message", form={"message": "sneaky", "gatewayId": gpu})
    assert "FORBIDDEN" not in await form.get_data(as_text=True) and _sent(fake_b) == []
    refusals = await audit.search(db, action="agent.message_refused", entity_id=key)
    assert len(refusals) == 2

    # the main session is on the gateway a request picks
    admin = await sign_in_as(connected, "ada", "admin")
    assert (await admin.post("/api/message", json={"message": "hello"})).status_code == 400
    sent = await admin.post("/api/message", json={"message": "hello", "gatewayId": gpu})
    assert sent.status_code == 200 and _sent(fake_b)[-1]["sessionKey"] == "agent:cso:main"
    history = await (await admin.get(f"/api/message/history?gatewayId={gpu}")).get_json()
    assert history["gatewayId"] == gpu and [m["content"] for m in history["messages"]] == ["hello"]


# --- health is per gateway --------------------------------------------------------------------------------

async def test_health_per_gateway_and_a_stopped_gateway_is_offline_alone(connected, fake, fake_b, gpu, admin):
    clock = Clock()
    services_of(connected).agent_health.clock = clock
    tracker, poller = services_of(connected).agent_health, services_of(connected).agent_health_poller
    fake.add_session(SAME_KEY, hasActiveRun=True, status="running", updatedAt=T0)
    fake_b.add_session(SAME_KEY, status="failed", updatedAt=T0)
    fake_b.add_session("agent:builder:job", hasActiveRun=True, status="running", updatedAt=T0)
    await poller.poll()
    assert tracker.session_state(SAME_KEY, "default") == "working"
    assert tracker.session_state(SAME_KEY, gpu) == "error"
    assert tracker.session_state(SAME_KEY) is None  # ambiguous without its gateway
    assert tracker.agent_states(gpu) == {"main": "error", "builder": "working"}
    assert tracker.agent_states("default") == {"main": "working"}

    gateway_a = default_gateway(connected)
    await fake.drop()

    async def disconnected():
        return not gateway_a.connected
    await eventually(disconnected)
    await gateway_a.stop()  # no reconnect while the pages are read
    assert tracker.session_state(SAME_KEY, "default") == "offline"
    assert tracker.agent_states("default") == {"main": "offline"}
    assert tracker.session_state(SAME_KEY, gpu) == "error"  # the other gateway is unaffected
    assert tracker.session_state("agent:builder:job", gpu) == "working"

    started = time.monotonic()
    roster = await admin.get("/api/agents/roster")
    page = await (await admin.get("/agents")).get_data(as_text=True)
    assert time.monotonic() - started < 2  # a gateway that is down does not slow the page
    body = await roster.get_json()
    assert {g["id"]: g["connected"] for g in body["gateways"]} == {"default": False, gpu: True}
    assert {(a["gatewayId"], a["id"]): a["health"] for a in body["agents"]} == {
        (gpu, "builder"): "working", (gpu, "main"): "error"}
    offline_group = page[page.index('data-gateway-id="default"'):page.index(f'data-gateway-id="{gpu}"')]
    assert "badge-agent-offline" in offline_group and "badge-health-offline" in offline_group
    assert "badge-health-working" in page[page.index(f'data-gateway-id="{gpu}"'):]
    sessions = await (await admin.get("/api/agents")).get_json()
    assert {s["gatewayId"] for s in sessions["sessions"]} == {gpu}


async def test_a_stall_on_one_gateway_is_that_gateways(connected, fake, fake_b, gpu, db, admin):
    clock = Clock()
    services_of(connected).agent_health.clock = clock
    tracker, poller, hub = (services_of(connected).agent_health, services_of(connected).agent_health_poller,
                            services_of(connected).hub)
    events = hub.subscribe()
    fake.add_session(SAME_KEY, hasActiveRun=True, status="running", updatedAt=T0)
    fake_b.add_session(SAME_KEY, label="GPU job", hasActiveRun=True, status="running", updatedAt=T0)
    task = await (await admin.post("/api/tasks", json={"title": "On the GPU", "sessionKey": SAME_KEY,
                                                       "sessionGatewayId": gpu})).get_json()
    assert task["sessionGatewayId"] == gpu
    await poller.poll()
    clock.advance(MINUTE)
    fake.sessions[SAME_KEY]["updatedAt"] = T0 + MINUTE  # the default gateway's session moved; gpu's did not
    await poller.poll()
    assert tracker.session_state(SAME_KEY, "default") == "working"
    assert tracker.session_state(SAME_KEY, gpu) == "stalled"
    assert [(s["gatewayId"], s["sessionKey"]) for s in tracker.stalled()] == [(gpu, SAME_KEY)]

    stalled = []
    async with asyncio.timeout(5):
        while not stalled:
            event = await events.get()
            if event["type"] == "agent.stalled":
                stalled.append(event["payload"])
    hub.unsubscribe(events)
    assert stalled[0]["gatewayId"] == gpu and stalled[0]["gatewayName"] == "gpu"
    assert stalled[0]["task"] == {"id": task["id"], "title": "On the GPU"}
    await poller.poll()
    assert await poller.check() == []  # announced once

    board = await (await admin.get("/board")).get_data(as_text=True)
    card = board[board.index(f'id="task-{task["id"]}"'):]
    assert "badge-health-stalled" in card[:card.index("</article>")]
    overview = await (await admin.get("/")).get_data(as_text=True)
    assert "Stalled agent sessions" in overview and "GPU job" in overview
    assert f'href="/sessions/{SAME_KEY}?gatewayId={gpu}#message-form"' in overview
    one = await (await admin.get(f"/api/sessions/main/{SAME_KEY}?gatewayId={gpu}")).get_json()
    assert one["health"] == "stalled" and one["taskId"] == task["id"]
    other = await (await admin.get(f"/api/sessions/main/{SAME_KEY}?gatewayId=default")).get_json()
    assert other["health"] == "working" and other["taskId"] is None


async def test_a_session_link_by_hand_names_its_gateway(connected, fake, fake_b, gpu, db, admin):
    await admin.post("/api/projects", json={"name": "Site"})
    member_task = await (await admin.post("/api/tasks", json={"title": "Linked", "projectId": "site",
                                                              "sessionKey": "agent:main:x",
                                                              "sessionGatewayId": gpu})).get_json()
    listed = await associations.list_all(db, "site")
    assert [(a["gatewayId"], a["sessionKey"], a["taskId"]) for a in listed] == [(gpu, "agent:main:x",
                                                                                 member_task["id"])]
    ambiguous = await admin.post("/api/tasks", json={"title": "Which?", "sessionKey": "agent:main:y"})
    assert ambiguous.status_code == 400 and (await ambiguous.get_json())["field"] == "sessionGatewayId"


# --- usage pulls and polling are per gateway --------------------------------------------------------------

HANDOFF = "Files changed: a\nHow tested: b\nEdge cases: c\nRollback: d\nCommit hash: NO_COMMIT"


async def test_usage_is_pulled_from_the_gateway_of_the_tasks_session(connected, fake, fake_b, gpu, db, admin):
    fake.add_session(SAME_KEY, totalTokens=999, estimatedCostUsd=9.0, model="wrong")
    fake_b.add_session(SAME_KEY, inputTokens=5, outputTokens=7, totalTokens=12, estimatedCostUsd=0.5,
                       runtimeMs=100, model="fake-2")
    task = await (await admin.post("/api/tasks", json={"title": "Usage", "sessionKey": SAME_KEY,
                                                       "sessionGatewayId": gpu, "status": "review",
                                                       "handoffNotes": HANDOFF})).get_json()
    assert (await admin.patch(f"/api/tasks/{task['id']}", json={"status": "done"})).status_code == 200

    async def pulled():
        current = await (await admin.get(f"/api/tasks/{task['id']}")).get_json()
        return current if current.get("tokens") else None
    current = await eventually(pulled)
    assert current["tokens"] == {"input": 5, "output": 7, "total": 12} and current["model"] == "fake-2"
    assert [p for m, p in fake.requests if m == "sessions.describe"] == []
    [entry] = await audit.search(db, action="task.usage_pulled", entity_id=task["id"])
    assert entry["details"]["gatewayId"] == gpu


async def test_the_poller_polls_each_gateway_on_its_connect(connected, fake, fake_b, gpu):
    async def polled():
        return any(method == "sessions.list" for method, _ in fake_b.requests)
    await eventually(polled)  # the gateway added at runtime is polled without a restart
    assert any(method == "sessions.list" for method, _ in fake.requests)
