"""Agents through the (fake) gateway: roster status, sessions, transcripts, messages, start work, usage."""

from __future__ import annotations

import time

from clawtrol import audit
from clawtrol.agents.roster import status_for
from clawtrol.agents.transcript import convert
from clawtrol.services import services_of

from .helpers import default_gateway
from .conftest import Agent
from .gateway_fixtures import config, connected, eventually, fake  # noqa: F401

XSS = '<script>alert("x")</script>'


def test_status_follows_recency():
    now = 10_000_000
    assert status_for(now - 60_000, now_ms=now) == "online"
    assert status_for(now - 30 * 60_000, now_ms=now) == "idle"
    assert status_for(now - 2 * 3600_000, now_ms=now) == "offline"
    assert status_for(None, now_ms=now) == "offline"
    assert status_for(now - 2 * 3600_000, running=True, now_ms=now) == "online"


def test_transcript_conversion_rules():
    assert convert({"role": "user", "content": ["a", {"type": "text", "text": "b"}]})["content"] == "a\nb"
    assistant = convert({"role": "assistant", "model": "m", "content": [
        {"type": "text", "text": "running it"},
        {"type": "toolCall", "id": "c1", "name": "exec", "arguments": {"command": "ls"}}]})
    assert assistant["content"] == "running it" and assistant["model"] == "m"
    assert assistant["toolCalls"] == [{"id": "c1", "name": "exec", "arguments": {"command": "ls"}}]
    result = convert({"role": "toolResult", "toolName": "exec", "content": [{"type": "text", "text": "out"}]})
    assert result == {"timestamp": None, "role": "tool", "toolName": "exec", "content": "out", "isError": False}
    assert convert({"role": "custom", "customType": "run-failed-before-reply"})["content"] == "run-failed-before-reply"
    assert convert("not a message") is None


async def test_roster_and_sessions_from_the_gateway(connected, fake, admin, viewer):
    now = int(time.time() * 1000)
    fake.agents.append({"id": "reviewer", "identity": {"name": "Rita", "emoji": "🔍"}, "model": "fake/fake-2"})
    fake.add_session("agent:main:main", updatedAt=now - 30_000, totalTokens=1200, estimatedCostUsd=0.42)
    fake.add_session("agent:reviewer:main", updatedAt=now - 3 * 3600_000)
    body = await (await viewer.get("/api/agents/roster")).get_json()
    agents = {agent["id"]: agent for agent in body["agents"]}
    assert agents["main"]["status"] == "online" and agents["main"]["model"] == "fake/fake-1"
    assert agents["main"]["activeSession"] == "agent:main:main" and agents["main"]["isDefault"] is True
    assert agents["reviewer"]["status"] == "offline" and agents["reviewer"]["name"] == "Rita"

    task = await (await admin.post("/api/tasks", json={"title": "Linked", "sessionKey": "agent:main:main"})).get_json()
    sessions = await (await viewer.get("/api/sessions/main")).get_json()
    assert sessions["agentId"] == "main" and sessions["totalSessions"] == 1
    [session] = sessions["sessions"]
    assert session["sessionKey"] == "agent:main:main" and session["totalTokens"] == 1200
    assert session["taskId"] == task["id"]

    roster_html = await (await viewer.get("/agents")).get_data(as_text=True)
    assert "Rita" in roster_html and "badge-agent-online" in roster_html
    page = await (await viewer.get("/agents/main")).get_data(as_text=True)
    assert "Linked" in page and "agent:main:main" in page and "$0.42" in page


async def test_transcript_escapes_agent_output(connected, fake, admin):
    fake.add_session("agent:main:main")
    fake.transcripts["agent:main:main"] = [
        {"role": "user", "content": "please list", "timestamp": 1_790_000_000_000},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"},
                                          {"type": "toolCall", "id": "c", "name": "exec", "arguments": {"command": XSS}}]},
        {"role": "toolResult", "toolName": "exec", "content": [{"type": "text", "text": XSS}]},
    ]
    body = await (await admin.get("/api/sessions/main/agent:main:main/transcript")).get_json()
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
    assert body["messages"][2]["content"] == XSS and body["totalMessages"] == 3
    html = await (await admin.get("/sessions/agent:main:main")).get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;" in html
    assert "<details class=\"tool-call\">" in html and "Output of exec" in html
    assert 'id="message-form"' in html  # admins may message any session


async def test_gateway_down_pages_say_so_and_the_api_answers_503(connected, admin):
    await default_gateway(connected).stop()
    response = await admin.get("/api/agents/roster")
    assert response.status_code == 503 and (await response.get_json())["code"] == "GATEWAY_UNAVAILABLE"
    html = await (await admin.get("/agents")).get_data(as_text=True)
    assert "not connected" in html


async def test_start_work_sends_the_task_links_the_session_and_audits(connected, fake, db, member):
    task = await (await member.post("/api/tasks", json={"title": "Fix login", "description": "Users see 500"})).get_json()
    html = await (await member.get(f"/board/tasks/{task['id']}", headers={"HX-Request": "true"})).get_data(as_text=True)
    assert "Start work" in html
    response = await member.post(f"/board/tasks/{task['id']}/start", form={"agentId": ""},
                                 headers={"HX-Request": "true"})
    html = await response.get_data(as_text=True)
    assert response.status_code == 200 and "Sent to agent main in session agent:main:clawtrol-" in html
    stored = await (await member.get(f"/api/tasks/{task['id']}")).get_json()
    assert stored["status"] == "in-progress" and stored["agentId"] == "main"
    key = stored["sessionKey"]
    assert key.startswith("agent:main:clawtrol-")
    [(method, params)] = [(m, p) for m, p in fake.requests if m == "chat.send"]
    assert params["sessionKey"] == key and "Fix login" in params["message"] and "Users see 500" in params["message"]
    assert f"/api/tasks/{task['id']}" in params["message"]
    [entry] = await audit.search(db, action="agent.work_started", entity_id=task["id"])
    assert entry["details"]["sessionKey"] == key and entry["user_id"] == member.user["id"]
    assert await audit.search(db, action="task.status_changed", entity_id=task["id"])


async def test_start_work_through_the_api_and_its_refusals(connected, fake, admin, member):
    task = await (await admin.post("/api/tasks", json={"title": "API start"})).get_json()
    unknown = await admin.post("/api/agents/spawn", json={"taskId": task["id"], "agentId": "ghost"})
    assert unknown.status_code == 400 and (await unknown.get_json())["field"] == "agentId"
    missing = await admin.post("/api/agents/spawn", json={"projectId": "x"})
    assert missing.status_code == 400 and (await missing.get_json())["field"] == "taskId"
    refused = await member.post("/api/agents/spawn", json={"taskId": task["id"]})
    assert refused.status_code == 403
    started = await admin.post("/api/agents/spawn", json={"taskId": task["id"], "task": "Be careful with prod"})
    body = await started.get_json()
    assert started.status_code == 201 and body["success"] and body["agentId"] == "main"
    assert body["task"]["sessionKey"] == body["childSessionKey"] and body["task"]["status"] == "in-progress"
    assert "Be careful with prod" in fake.transcripts[body["childSessionKey"]][0]["content"]

    await default_gateway(connected).stop()
    down = await admin.post("/api/agents/spawn", json={"taskId": task["id"]})
    assert down.status_code == 503
    assert (await (await admin.get(f"/api/tasks/{task['id']}")).get_json())["sessionKey"] == body["childSessionKey"]


async def test_messages_go_to_sessions_the_member_started(connected, fake, db, admin, member, viewer, api_token):
    mine = await (await member.post("/api/tasks", json={"title": "Mine"})).get_json()
    key = (await (await member.post("/api/agents/spawn", json={"taskId": mine["id"]})).get_json())["childSessionKey"]
    ok = await member.post(f"/api/agents/{key}/message", json={"message": "status?"})
    assert ok.status_code == 200 and (await ok.get_json())["success"] is True
    assert fake.transcripts[key][-1]["content"] == "status?"
    [entry] = await audit.search(db, action="agent.messaged", entity_id=key)
    assert entry["details"]["preview"] == "status?"
    assert (await member.post("/api/agents/agent:main:other/message", json={"message": "hi"})).status_code == 403
    assert (await viewer.post(f"/api/agents/{key}/message", json={"message": "hi"})).status_code == 403
    empty = await member.post(f"/api/agents/{key}/message", json={"message": "  "})
    assert empty.status_code == 400 and (await empty.get_json())["field"] == "message"
    bot = Agent(connected, await api_token("admin"))
    assert (await bot.post("/api/agents/agent:main:other/message", json={"message": "hi"})).status_code == 200

    form = await member.post(f"/sessions/{key}/message", form={"message": "from the page"},
                             headers={"HX-Request": "true"})
    assert form.status_code == 200 and "success" in form.headers["HX-Trigger"]


async def test_usage_is_pulled_when_a_linked_task_reaches_done(connected, fake, db, admin):
    fake.add_session("agent:main:work", inputTokens=55, outputTokens=25, totalTokens=80, estimatedCostUsd=0.000105,
                     runtimeMs=4200, model="fake-1")
    task = await (await admin.post("/api/tasks", json={
        "title": "Usage", "sessionKey": "agent:main:work", "status": "review",
        "handoffNotes": "Files changed: a\nHow tested: b\nEdge cases: c\nRollback: d\nCommit hash: NO_COMMIT"})).get_json()
    moved = await admin.patch(f"/api/tasks/{task['id']}", json={"status": "done"})
    assert moved.status_code == 200, await moved.get_json()

    async def pulled():
        current = await (await admin.get(f"/api/tasks/{task['id']}")).get_json()
        return current if current.get("tokens") else None
    current = await eventually(pulled)
    assert current["tokens"] == {"input": 55, "output": 25, "total": 80}
    assert current["cost"] == 0.000105 and current["runtime"] == 4200 and current["model"] == "fake-1"
    [entry] = await audit.search(db, action="task.usage_pulled", entity_id=task["id"])
    assert entry["actor_kind"] == "system" and entry["details"]["tokens"] == 80

    fake.add_session("agent:main:r", totalTokens=999, estimatedCostUsd=9.0)
    reported = await (await admin.post("/api/tasks", json={
        "title": "Reported", "sessionKey": "agent:main:r", "status": "review", "tokens": {"total": 10}, "cost": 0.01,
        "handoffNotes": "Files changed: a\nHow tested: b\nEdge cases: c\nRollback: d\nCommit hash: NO_COMMIT"})).get_json()
    assert (await admin.patch(f"/api/tasks/{reported['id']}", json={"status": "done"})).status_code == 200
    assert not await services_of(connected).usage.pull(reported["id"])  # reported usage is never overwritten
    after = await (await admin.get(f"/api/tasks/{reported['id']}")).get_json()
    assert after["tokens"]["total"] == 10 and after["cost"] == 0.01


async def test_the_task_dialog_links_the_session_and_offers_start_work_only_to_editors(connected, admin, viewer):
    task = await (await admin.post("/api/tasks", json={"title": "Linked", "sessionKey": "agent:main:linked"})).get_json()
    for who, may_start in ((admin, True), (viewer, False)):
        html = await (await who.get(f"/board/tasks/{task['id']}", headers={"HX-Request": "true"})).get_data(as_text=True)
        assert 'href="/sessions/agent:main:linked"' in html
        assert ("Start a new session" in html) is may_start
    await default_gateway(connected).stop()
    html = await (await admin.get(f"/board/tasks/{task['id']}", headers={"HX-Request": "true"})).get_data(as_text=True)
    assert "unavailable while the OpenClaw gateway is disconnected" in html
