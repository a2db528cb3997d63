"""Talking to the main agent: POST /api/message and GET /api/message/history through the (fake) gateway, with
the same roles and authority as messaging any session (clawtrol/agents/authority.py)."""

from __future__ import annotations

import pytest

from clawtrol import audit
from clawtrol.app import create_app
from clawtrol.clock import now_iso
from clawtrol.config import ConfigError, load_config

from . import gateway_fixtures
from .helpers import default_gateway
from .conftest import Agent, make_environ, sign_in_as

# The app under test talks to the in-process fake gateway (fixtures bound here, not imported: ruff F811).
config, connected, fake = gateway_fixtures.config, gateway_fixtures.connected, gateway_fixtures.fake

MAIN = "agent:cso:main"


async def test_admins_message_the_main_session_with_the_project_context(connected, fake, db, admin):
    await admin.post("/api/projects", json={"name": "Website", "description": "The public site. " + "x" * 600})
    await admin.post("/api/tasks", json={"title": "One", "projectId": "website", "status": "todo"})
    plain = await admin.post("/api/message", json={"message": "Good morning"})
    assert plain.status_code == 200
    body = await plain.get_json()
    assert body["success"] is True and body["sessionKey"] == MAIN and body["projectId"] is None
    assert body["result"]["status"] == "started" and body["result"]["runId"]
    assert fake.transcripts[MAIN][-1]["content"] == "Good morning"

    about = await admin.post("/api/message", json={"message": "What is left?", "projectId": "website"})
    assert about.status_code == 200 and (await about.get_json())["projectId"] == "website"
    sent = fake.transcripts[MAIN][-1]["content"]
    assert sent.startswith('[Project Context for "website":\n\n## Project: website\n\n# Website\n\nThe public site.')
    assert "## Current Status:\n\n# Website — status" in sent and "- To do: 1" in sent
    assert sent.endswith("]\n\nUser request: What is left?")
    assert "x" * 600 not in sent  # each file at most 500 characters, as the original
    [params] = [p for m, p in fake.requests if m == "chat.send" and p["message"] == sent]
    assert params["sessionKey"] == MAIN and params["idempotencyKey"].startswith("clawtrol-msg-")

    entries = await audit.search(db, action="agent.messaged", entity_id=MAIN)
    assert [e["details"]["preview"] for e in entries] == ["What is left?", "Good morning"]
    assert entries[0]["details"]["projectId"] == "website" and "projectId" not in entries[1]["details"]


async def test_who_may_message_the_main_session_follows_the_authority_rules(connected, fake, db, admin, member,
                                                                           viewer, api_token):
    # Nobody started the main session through start work: only admins (and admin tokens) may message it.
    refused = await member.post("/api/message", json={"message": "hi"})
    assert refused.status_code == 403
    assert "Nobody started this session through start work" in (await refused.get_json())["error"]
    assert (await viewer.post("/api/message", json={"message": "hi"})).status_code == 403
    assert (await Agent(connected, await api_token("member")).post("/api/message", json={"message": "hi"})).status_code == 403
    assert (await Agent(connected, await api_token("admin")).post("/api/message", json={"message": "hi"})).status_code == 200
    assert len(await audit.search(db, action="agent.message_refused", entity_id=MAIN)) == 3
    assert MAIN not in fake.transcripts or [m["content"] for m in fake.transcripts[MAIN]] == ["hi"]

    # Authority comes from the server's start work record, not from a rule of its own: a member recorded as
    # having started the main session may message it, exactly as any session they started.
    await db.changed("agents.record_start", gateway_id="default", session_key=MAIN, task_id=None, project_id=None,
                     agent_id="cso", started_by=member.user["id"], started_by_token=None, started_by_label="mel", run_id=None,
                     started_at=now_iso())
    allowed = await member.post("/api/message", json={"message": "status?"})
    assert allowed.status_code == 200 and fake.transcripts[MAIN][-1]["content"] == "status?"
    assert (await viewer.post("/api/message", json={"message": "hi"})).status_code == 403


async def test_history_comes_from_the_gateway(connected, fake, admin, viewer):
    fake.add_session(MAIN)
    fake.transcripts[MAIN] = [
        {"role": "user", "content": "first", "timestamp": 1},
        {"role": "assistant", "content": [{"type": "text", "text": "reply one"},
                                          {"type": "toolCall", "id": "c", "name": "exec", "arguments": {}}]},
        {"role": "toolResult", "toolName": "exec", "content": [{"type": "text", "text": "tool output"}]},
        {"role": "assistant", "content": [{"type": "toolCall", "id": "d", "name": "read", "arguments": {}}]},
        {"role": "user", "content": "second", "timestamp": 5},
        {"role": "assistant", "content": "reply two", "timestamp": 6},
    ]
    body = await (await viewer.get("/api/message/history")).get_json()
    assert body["sessionKey"] == MAIN
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "first"), ("assistant", "reply one"), ("user", "second"), ("assistant", "reply two")]
    assert body["messages"][2] == {"role": "user", "timestamp": 5, "content": "second"}
    last = await (await viewer.get("/api/message/history?limit=2")).get_json()
    assert [m["content"] for m in last["messages"]] == ["second", "reply two"]
    assert [p for m, p in fake.requests if m == "chat.history"][-1]["sessionKey"] == MAIN
    for bad in ("limit=0", "limit=201", "limit=x"):
        response = await viewer.get(f"/api/message/history?{bad}")
        assert response.status_code == 400 and (await response.get_json())["field"] == "limit"


async def test_bad_input_and_a_missing_gateway(connected, fake, admin):
    for body, field in (({}, "message"), ({"message": "  "}, "message"), ({"message": 5}, "message"),
                        ({"message": "hi", "projectId": "nope"}, "projectId"), ({"message": "hi", "projectId": 3}, "projectId"),
                        ({"message": "hi", "sessionKey": "agent:x:main"}, "sessionKey")):
        response = await admin.post("/api/message", json=body)
        assert response.status_code == 400, body
        assert (await response.get_json())["field"] == field, body
    assert not [m for m, _ in fake.requests if m == "chat.send"]
    await default_gateway(connected).stop()
    for response in (await admin.post("/api/message", json={"message": "hi"}), await admin.get("/api/message/history")):
        assert response.status_code == 503 and (await response.get_json())["code"] == "GATEWAY_UNAVAILABLE"


async def test_the_main_session_is_configurable(database_url, tmp_path, fake):
    environ = make_environ(database_url, tmp_path / "data", GATEWAY_URL=fake.url, GATEWAY_TOKEN="gw-token",
                           MAIN_SESSION_KEY="agent:main:main")
    app = create_app(load_config(environ, env_file=None))
    async with app.test_app():
        await default_gateway(app).wait_connected(5)
        admin = await sign_in_as(app, "ada", "admin")
        response = await admin.post("/api/message", json={"message": "to main"})
        assert (await response.get_json())["sessionKey"] == "agent:main:main"
        assert fake.transcripts["agent:main:main"][-1]["content"] == "to main"
    for bad in ("agent:cso main", "a/b", "x" * 201):
        with pytest.raises(ConfigError) as raised:
            load_config({**environ, "MAIN_SESSION_KEY": bad}, env_file=None)
        assert raised.value.problems[0].startswith("MAIN_SESSION_KEY:")
    assert load_config({**environ, "MAIN_SESSION_KEY": ""}, env_file=None).main_session_key == "agent:cso:main"
