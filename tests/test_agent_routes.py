"""The original's agent and session routes on the gateway's API: GET /api/agents/:id, /:id/history,
PATCH /:id/model (sessions.patch), DELETE /:id (sessions.delete), /api/agents/subagents and
GET /api/sessions/:agentId/:sessionId."""

from __future__ import annotations

import time

from clawtrol import audit

from . import gateway_fixtures
from .helpers import default_gateway
from .conftest import Agent

# The app under test talks to the in-process fake gateway (fixtures bound here, not imported: ruff F811).
config, connected, fake = gateway_fixtures.config, gateway_fixtures.connected, gateway_fixtures.fake


async def test_one_agent_by_id_or_one_session_by_key(connected, fake, viewer):
    now = int(time.time() * 1000)
    fake.agents.append({"id": "reviewer", "identity": {"name": "Rita", "emoji": "🔍"}, "model": "fake/fake-2"})
    fake.add_session("agent:reviewer:main", updatedAt=now - 30_000, totalTokens=900, lastChannel="webchat")
    agent = await (await viewer.get("/api/agents/reviewer")).get_json()
    assert agent["id"] == "reviewer" and agent["name"] == "Rita" and agent["emoji"] == "🔍"
    assert agent["status"] == "online" and agent["model"] == "fake/fake-2"
    assert agent["mainSession"] == "agent:reviewer:main" and agent["activeSession"] == "agent:reviewer:main"

    session = await (await viewer.get("/api/agents/agent:reviewer:main")).get_json()
    assert {k: session[k] for k in ("id", "name", "role", "status", "model", "provider", "tokens", "channel")} == {
        "id": "agent:reviewer:main", "name": "Main", "role": "Primary Assistant", "status": "working",
        "model": "fake-1", "provider": "fake", "tokens": 900, "channel": "webchat"}
    assert session["lastActive"].endswith("Z") and session["sessionId"]

    fake.add_session("agent:main:subagent:fix-login:17", updatedAt=now - 3 * 3600_000, label=None)
    sub = await (await viewer.get("/api/agents/agent:main:subagent:fix-login:17")).get_json()
    assert sub["name"] == "Fix Login" and sub["role"] == "Subagent" and sub["status"] == "offline"

    for path, error in (("/api/agents/ghost", "Agent not found"), ("/api/agents/agent:ghost:main", "Session not found")):
        response = await viewer.get(path)
        assert response.status_code == 404 and await response.get_json() == {"error": error}, path


async def test_history_of_an_agents_main_session(connected, fake, viewer):
    fake.add_session("agent:main:main")
    fake.transcripts["agent:main:main"] = [{"role": "user", "content": f"m{n}", "timestamp": n} for n in range(30)]
    body = await (await viewer.get("/api/agents/main/history")).get_json()
    assert body["agentId"] == "main" and body["sessionKey"] == "agent:main:main"
    assert [m["content"] for m in body["messages"]] == [f"m{n}" for n in range(10, 30)]  # the last 20
    assert body["totalMessages"] == 30 and body["hasMore"] is True
    by_key = await (await viewer.get("/api/agents/agent:main:main/history?limit=2")).get_json()
    assert [m["content"] for m in by_key["messages"]] == ["m28", "m29"] and by_key["agentId"] == "main"
    assert (await viewer.get("/api/agents/ghost/history")).status_code == 404
    assert (await viewer.get("/api/agents/agent:main:gone/history")).status_code == 404
    bad = await viewer.get("/api/agents/main/history?limit=-1")
    assert bad.status_code == 400 and (await bad.get_json())["field"] == "limit"


async def test_changing_a_sessions_model_goes_through_sessions_patch(connected, fake, db, admin, member, viewer):
    fake.add_session("agent:main:main", model="fake-1", modelProvider="fake")
    changed = await admin.patch("/api/agents/agent:main:main/model", json={"model": "fake/fake-2"})
    assert changed.status_code == 200
    assert await changed.get_json() == {"success": True, "sessionKey": "agent:main:main", "gatewayId": "default",
                                        "model": "fake/fake-2", "resolvedModel": "fake-2", "modelProvider": "fake",
                                        "previousModel": "fake-1"}
    assert [p for m, p in fake.requests if m == "sessions.patch"] == [{"key": "agent:main:main", "model": "fake/fake-2"}]
    assert fake.sessions["agent:main:main"]["model"] == "fake-2"
    [entry] = await audit.search(db, action="agent.model_changed")
    assert entry["entity_id"] == "agent:main:main" and entry["details"] == {"from": "fake-1", "to": "fake/fake-2",
                                                                            "resolved": "fake-2",
                                                                            "gatewayId": "default"}
    by_agent = await admin.patch("/api/agents/main/model", json={"model": "fake/fake-1"})  # the agent's main session
    assert by_agent.status_code == 200 and (await by_agent.get_json())["sessionKey"] == "agent:main:main"

    unknown = await admin.patch("/api/agents/main/model", json={"model": "nobody/knows"})
    assert unknown.status_code == 400 and (await unknown.get_json())["field"] == "model"
    assert "model not allowed" in (await unknown.get_json())["error"]
    for body in ({}, {"model": ""}, {"model": 3}, {"model": "has space"}):
        response = await admin.patch("/api/agents/main/model", json=body)
        assert response.status_code == 400 and (await response.get_json())["field"] == "model", body
    assert (await admin.patch("/api/agents/agent:main:gone/model", json={"model": "fake/fake-1"})).status_code == 404
    assert (await admin.patch("/api/agents/ghost/model", json={"model": "fake/fake-1"})).status_code == 404
    # Who may: who may message the session (nobody started agent:main:main through start work: admins only).
    for who in (member, viewer):
        refused = await who.patch("/api/agents/agent:main:main/model", json={"model": "fake/fake-2"})
        assert refused.status_code == 403 and (await refused.get_json())["code"] == "FORBIDDEN"
    assert len(await audit.search(db, action="agent.model_change_refused")) == 2
    assert len([m for m, _ in fake.requests if m == "sessions.patch"]) == 3  # two changes and the refused model


async def test_a_member_controls_the_sessions_they_started(connected, fake, db, member, api_token):
    task = await (await member.post("/api/tasks", json={"title": "Mine"})).get_json()
    key = (await (await member.post("/api/agents/spawn", json={"taskId": task["id"]})).get_json())["childSessionKey"]
    assert (await member.patch(f"/api/agents/{key}/model", json={"model": "fake/fake-2"})).status_code == 200
    other_member_token = Agent(connected, await api_token("member"))
    assert (await other_member_token.delete(f"/api/agents/{key}")).status_code == 403
    deleted = await member.delete(f"/api/agents/{key}")
    assert deleted.status_code == 200 and await deleted.get_json() == {"success": True, "deleted": key,
                                                                       "gatewayId": "default"}
    assert key not in fake.sessions
    [entry] = await audit.search(db, action="agent.session_deleted", entity_id=key)
    assert entry["user_id"] == member.user["id"]
    assert (await member.delete(f"/api/agents/{key}")).status_code == 404  # gone now


async def test_deleting_removes_a_registration_and_the_gateway_guards_main_sessions(connected, fake, db, admin):
    await admin.post("/api/projects", json={"name": "Site"})
    fake.add_session("agent:main:subagent:helper")
    fake.add_session("agent:main:main")
    await admin.post("/api/agents/associations", json={"sessionKey": "agent:main:subagent:helper", "projectId": "site",
                                                       "task": "help"})
    assert (await admin.delete("/api/agents/agent:main:subagent:helper")).status_code == 200
    assert (await (await admin.get("/api/agents/associations")).get_json())["associations"] == []
    [entry] = await audit.search(db, action="agent.session_deleted")
    assert entry["details"] == {"unregistered": True, "gatewayId": "default"}
    main = await admin.delete("/api/agents/main")
    assert main.status_code == 502 and "Cannot delete the main session" in (await main.get_json())["error"]
    assert "agent:main:main" in fake.sessions


async def test_subagents_and_one_session_by_key_or_id(connected, fake, admin, viewer):
    now = int(time.time() * 1000)
    fake.add_session("agent:main:main", updatedAt=now)
    child = fake.add_session("agent:main:subagent:worker-1", updatedAt=now - 1000, totalTokens=50)
    fake.add_session("agent:main:helper", updatedAt=now - 2000, spawnedBy="agent:main:main")
    body = await (await viewer.get("/api/agents/subagents")).get_json()
    assert [s["id"] for s in body["subagents"]] == ["agent:main:subagent:worker-1", "agent:main:helper"]
    first = body["subagents"][0]
    assert first["status"] == "working" and first["tokens"] == 50 and first["model"] == "fake-1"
    assert body["subagents"][1]["spawnedBy"] == "agent:main:main" and body["count"] == 2

    task = await (await admin.post("/api/tasks", json={"title": "Worker", "sessionKey": "agent:main:subagent:worker-1"})).get_json()
    by_key = await (await viewer.get("/api/sessions/main/agent:main:subagent:worker-1")).get_json()
    by_id = await (await viewer.get(f"/api/sessions/main/{child['sessionId']}")).get_json()
    assert by_key == by_id
    assert by_key["sessionKey"] == "agent:main:subagent:worker-1" and by_key["sessionId"] == child["sessionId"]
    assert by_key["agentId"] == "main" and by_key["totalTokens"] == 50 and by_key["model"] == "fake-1"
    assert by_key["taskId"] == task["id"] and by_key["startedBy"] is None and "lastChannel" in by_key
    for path in ("/api/sessions/main/agent:main:nothing", "/api/sessions/main/no-such-id",
                 "/api/sessions/reviewer/agent:main:subagent:worker-1"):
        response = await viewer.get(path)
        assert response.status_code == 404 and await response.get_json() == {"error": "Session not found"}, path


async def test_gateway_down_is_503_on_every_gateway_route(connected, admin):
    await default_gateway(connected).stop()
    for method, path, body in (("GET", "/api/agents/main", None), ("GET", "/api/agents/main/history", None),
                               ("PATCH", "/api/agents/main/model", {"model": "fake/fake-1"}),
                               ("DELETE", "/api/agents/agent:main:x", None), ("GET", "/api/agents/subagents", None),
                               ("GET", "/api/sessions/main/agent:main:main", None)):
        response = await admin.request(method, path, **({"json": body} if body else {}))
        assert response.status_code == 503, (method, path)
        assert (await response.get_json())["code"] == "GATEWAY_UNAVAILABLE", (method, path)
