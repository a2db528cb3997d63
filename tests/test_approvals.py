"""The durable approval queue against the fake gateway: ingestion, resync, decisions, roles, races, expiry,
the page and the live events."""

from __future__ import annotations

import asyncio
import json

from clawtrol.app import create_app
from clawtrol.clock import now_iso
from clawtrol.services import services_of

from .helpers import default_gateway
from .conftest import Agent
from .gateway_fixtures import config, connected, eventually, fake  # noqa: F401

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def stored(db, approval_id: str, status: str = "pending"):
    async def check():
        row = await db.one("approvals.get", gateway_id="default", id=approval_id)
        return row if row is not None and row["status"] == status else None
    return await eventually(check)


async def audit_rows(db, action: str, approval_id: str) -> list[dict]:
    from clawtrol import audit
    return await audit.search(db, action=action, entity_id=approval_id)


# --- ingestion -----------------------------------------------------------------------------------------

async def test_a_requested_approval_is_stored_audited_and_listed(connected, fake, db, admin):
    record = await fake.raise_approval("rm -rf build/", cwd="/srv/app", sessionKey="agent:main:main",
                                       allowedDecisions=["allow-once", "deny"])
    row = await stored(db, record["id"])
    assert row["command"] == "rm -rf build/" and row["cwd"] == "/srv/app" and row["agent_id"] == "main"
    [entry] = await audit_rows(db, "approval.requested", record["id"])
    assert entry["actor_kind"] == "system" and entry["details"]["command"] == "rm -rf build/"

    body = await (await admin.get("/api/approvals")).get_json()
    assert body["gatewayConnected"] is True and body["resolved"] == []
    [pending] = body["pending"]
    assert pending["id"] == record["id"] and pending["command"] == "rm -rf build/"
    assert pending["allowedDecisions"] == ["allow-once", "deny"]
    assert pending["sessionKey"] == "agent:main:main" and pending["agentId"] == "main" and pending["host"] == "gateway"
    assert pending["expiresAtMs"] == record["expiresAtMs"] // 1000 * 1000 or pending["expiresAtMs"] == record["expiresAtMs"]
    assert 100 <= pending["expiresInSec"] <= 120
    status = await (await admin.get("/api/approvals/status")).get_json()
    assert status == {"connected": True, "pendingCount": 1}


async def test_the_same_event_twice_stores_one_row_and_one_audit_entry(connected, fake, db):
    record = await fake.raise_approval("make deploy")
    await stored(db, record["id"])
    await fake.emit("exec.approval.requested", record)  # e.g. a second delivery
    await services_of(connected).approvals.resync("default")
    assert len(await audit_rows(db, "approval.requested", record["id"])) == 1
    assert await db.value("approvals.pending_count", now=now_iso()) == 1


async def test_two_app_processes_ingest_each_approval_once(connected, fake, db, config):
    other = create_app(config)  # a second app instance on the same database and gateway
    async with other.test_app():
        await default_gateway(other).wait_connected(5)
        record = await fake.raise_approval("terraform apply")
        await stored(db, record["id"])
        await asyncio.sleep(0.3)  # let the second instance handle its copy of the event
        assert len(await audit_rows(db, "approval.requested", record["id"])) == 1
        await services_of(connected).approvals.expire_due()


async def test_malformed_approval_events_are_ignored(connected, fake, db, admin):
    for payload in (None, {"id": 5}, {"id": "x"}, {"id": "y", "request": {"command": ""}}, ["list"]):
        await fake.emit("exec.approval.requested", payload)
    record = await fake.raise_approval("ls")
    await stored(db, record["id"])
    assert [a["id"] for a in (await (await admin.get("/api/approvals")).get_json())["pending"]] == [record["id"]]


async def test_resync_on_connect_adds_missing_and_closes_vanished(connected, fake, db, admin):
    before = {"id": "raised-while-away", "request": {"command": "npm publish", "agentId": "main"},
              "createdAtMs": 1_790_000_000_000, "expiresAtMs": 4_102_444_800_000}
    fake.approvals[before["id"]] = before  # raised while the app's connection was down: no event reached it
    await fake.drop()
    await stored(db, "raised-while-away")

    fake.approvals.clear()  # decided elsewhere while the app was disconnected
    await fake.drop()
    row = await stored(db, "raised-while-away", "closed")
    assert row["decision"] is None
    assert len(await audit_rows(db, "approval.closed", "raised-while-away")) == 1
    body = await (await admin.get("/api/approvals")).get_json()
    assert body["pending"] == [] and body["resolved"][0]["status"] == "closed"


async def test_a_decision_taken_elsewhere_updates_the_row(connected, fake, db):
    record = await fake.raise_approval("git push --force")
    await stored(db, record["id"])
    await fake.emit("exec.approval.resolved", {"id": record["id"], "decision": "deny", "resolvedBy": "control-ui"})
    row = await stored(db, record["id"], "resolved")
    assert row["decision"] == "deny" and row["decided_by_label"] == "control-ui (in OpenClaw)"
    assert row["decided_by"] is None and row["gateway_ack_at"]
    [entry] = await audit_rows(db, "approval.resolved", record["id"])
    assert entry["actor_kind"] == "system" and entry["details"]["decision"] == "deny"


async def test_expired_approvals_leave_the_queue(connected, fake, db, admin):
    record = await fake.raise_approval("sleep 1", expires_in_ms=-1000)
    await eventually(lambda: db.one("approvals.get", gateway_id="default", id=record["id"]))
    assert (await (await admin.get("/api/approvals")).get_json())["pending"] == []  # already past its expiry
    response = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny"})
    assert response.status_code == 409 and "expired" in (await response.get_json())["error"]
    assert await services_of(connected).approvals.expire_due() == 1
    assert (await db.one("approvals.get", gateway_id="default", id=record["id"]))["status"] == "expired"
    assert len(await audit_rows(db, "approval.expired", record["id"])) == 1
    assert await services_of(connected).approvals.expire_due() == 0


# --- deciding --------------------------------------------------------------------------------------------

async def test_admin_resolves_through_the_gateway_and_it_is_audited(connected, fake, db, admin):
    record = await fake.raise_approval("docker compose up -d")
    await stored(db, record["id"])
    response = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "allow-once"})
    assert response.status_code == 200
    assert await response.get_json() == {"success": True, "id": record["id"], "gatewayId": "default",
                                         "decision": "allow-once"}
    assert ("exec.approval.resolve", {"id": record["id"], "decision": "allow-once"}) in fake.requests
    row = await db.one("approvals.get", gateway_id="default", id=record["id"])
    assert row["status"] == "resolved" and row["decision"] == "allow-once"
    assert row["decided_by"] == admin.user["id"] and row["decided_by_label"] == "ada" and row["gateway_ack_at"]
    [entry] = await audit_rows(db, "approval.resolved", record["id"])
    assert entry["user_id"] == admin.user["id"] and entry["details"]["decision"] == "allow-once"

    again = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny"})
    assert again.status_code == 409
    error = (await again.get_json())["error"]
    assert error.startswith("This approval was already resolved by ada at ") and "allow-once" in error
    resolved = (await (await admin.get("/api/approvals")).get_json())["resolved"]
    assert resolved[0]["id"] == record["id"] and resolved[0]["resolvedBy"] == "ada" and resolved[0]["resolvedAt"]


async def test_two_simultaneous_decisions_one_wins_the_other_gets_409(connected, fake, db, admin, api_token):
    other = Agent(connected, await api_token("admin", "night-shift"))
    record = await fake.raise_approval("kubectl delete pod web-1")
    await stored(db, record["id"])
    first, second = await asyncio.gather(
        admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "allow-once"}),
        other.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny"}))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert "already" in (await loser.get_json())["error"]
    assert len([m for m, _ in fake.requests if m == "exec.approval.resolve"]) == 1
    assert len(await audit_rows(db, "approval.resolved", record["id"])) == 1


async def test_bad_decisions_are_refused_naming_the_field(connected, fake, db, admin):
    record = await fake.raise_approval("curl example.com", allowedDecisions=["allow-once", "deny"])
    await stored(db, record["id"])
    for body, needle in (({"decision": "maybe"}, "must be one of"), ({}, "must be one of"),
                         ({"decision": "allow-always"}, "only allows allow-once, deny")):
        response = await admin.post(f"/api/approvals/{record['id']}/resolve", json=body)
        payload = await response.get_json()
        assert response.status_code == 400 and payload["field"] == "decision" and needle in payload["error"]
    unknown = await admin.post("/api/approvals/nope/resolve", json={"decision": "deny"})
    assert unknown.status_code == 404
    extra = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny", "force": True})
    assert extra.status_code == 400
    assert (await db.one("approvals.get", gateway_id="default", id=record["id"]))["status"] == "pending"


async def test_gateway_down_answers_503_and_the_approval_stays_pending(connected, fake, db, admin):
    record = await fake.raise_approval("shutdown -h now")
    await stored(db, record["id"])
    await default_gateway(connected).stop()
    response = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny"})
    assert response.status_code == 503 and "stays pending" in (await response.get_json())["error"]
    row = await db.one("approvals.get", gateway_id="default", id=record["id"])
    assert row["status"] == "pending" and row["decided_at"] is None
    assert (await (await admin.get("/api/approvals")).get_json())["gatewayConnected"] is False


async def test_a_gateway_refusal_releases_the_claim(connected, fake, db, admin):
    record = await fake.raise_approval("echo hi")
    await stored(db, record["id"])
    fake.approvals.pop(record["id"])  # the gateway forgot it: resolve answers "unknown approval id"
    response = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny"})
    assert response.status_code == 502 and "unknown approval id" in (await response.get_json())["error"]
    assert await audit_rows(db, "approval.resolved", record["id"]) == []
    await stored(db, record["id"], "closed")  # the resync after the refusal closes what the gateway no longer has


async def test_roles_members_decide_only_for_sessions_they_started(connected, fake, db, admin, member, viewer):
    mine = await (await member.post("/api/tasks", json={"title": "Mine"})).get_json()
    theirs = await (await admin.post("/api/tasks", json={"title": "Theirs"})).get_json()
    my_key = (await (await member.post("/api/agents/spawn", json={"taskId": mine["id"]})).get_json())["childSessionKey"]
    their_key = (await (await admin.post("/api/agents/spawn", json={"taskId": theirs["id"]})).get_json())["childSessionKey"]
    linked_mine = await fake.raise_approval("make test", sessionKey=my_key)
    linked_theirs = await fake.raise_approval("make test", sessionKey=their_key)
    unlinked = await fake.raise_approval("make test", sessionKey="agent:other:x")
    for record in (linked_mine, linked_theirs, unlinked):
        await stored(db, record["id"])

    for record in (linked_mine, linked_theirs, unlinked):
        response = await viewer.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "deny"})
        assert response.status_code == 403
    response = await member.post(f"/api/approvals/{unlinked['id']}/resolve", json={"decision": "deny"})
    assert response.status_code == 403 and "only an admin" in (await response.get_json())["error"]
    response = await member.post(f"/api/approvals/{linked_theirs['id']}/resolve", json={"decision": "deny"})
    assert response.status_code == 403 and "started by ada via start work" in (await response.get_json())["error"]
    response = await member.post(f"/api/approvals/{linked_mine['id']}/resolve", json={"decision": "allow-once"})
    assert response.status_code == 200

    listed = {a["id"]: a for a in (await (await viewer.get("/api/approvals")).get_json())["pending"]}
    assert listed[linked_theirs["id"]]["task"]["title"] == "Theirs" and listed[linked_theirs["id"]]["taskId"]
    assert listed[linked_theirs["id"]]["startedBy"]["label"] == "ada"
    assert listed[unlinked["id"]]["task"] is None and listed[unlinked["id"]]["startedBy"] is None
    assert (await db.one("approvals.get", gateway_id="default", id=linked_mine["id"]))["task_id"] == mine["id"]


# --- the page and live updates ----------------------------------------------------------------------------

async def test_the_page_escapes_the_command_and_shows_buttons_by_role(connected, fake, db, admin, viewer):
    record = await fake.raise_approval(XSS, allowedDecisions=["allow-once", "deny"])
    await stored(db, record["id"])
    html = await (await admin.get("/approvals")).get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert 'name="decision" value="allow-once"' in html and 'name="decision" value="deny"' in html
    assert 'value="allow-always"' not in html
    assert 'data-pending-approvals' in html and 'title="1 pending">1</span>' in html
    assert f'data-countdown="{record["expiresAtMs"]}"' in html

    viewer_html = await (await viewer.get("/approvals")).get_data(as_text=True)
    assert "&lt;script&gt;" in viewer_html and 'name="decision"' not in viewer_html
    board = await (await viewer.get("/board")).get_data(as_text=True)
    assert 'title="1 pending">1</span>' in board  # the badge is in every page's header


async def test_deciding_from_the_page_swaps_the_queue_and_toasts(connected, fake, db, admin):
    record = await fake.raise_approval("pytest -q")
    await stored(db, record["id"])
    response = await admin.post(f"/approvals/default/{record['id']}/decide", form={"decision": "deny"},
                                headers={"HX-Request": "true"})
    html = await response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="approvals"' in html and "Nothing is waiting" in html
    assert json.loads(response.headers["HX-Trigger"])["clawtrol:toast"]["level"] == "success"
    again = await admin.post(f"/approvals/default/{record['id']}/decide", form={"decision": "deny"},
                             headers={"HX-Request": "true"})
    toast = json.loads(again.headers["HX-Trigger"])["clawtrol:toast"]
    assert toast["level"] == "error" and "already resolved by ada" in toast["message"]


async def test_live_events_for_requested_and_resolved(connected, fake, db, admin):
    async with admin.client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
        assert json.loads(await ws.receive())["type"] == "connected"
        record = await fake.raise_approval("cat /etc/hostname")
        event = json.loads(await asyncio.wait_for(ws.receive(), 5))
        assert event["type"] == "approval.requested" and event["payload"]["approval"]["id"] == record["id"]
        assert event["payload"]["pendingCount"] == 1
        await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "allow-once"})
        event = json.loads(await asyncio.wait_for(ws.receive(), 5))
        assert event["type"] == "approval.resolved" and event["payload"]["decision"] == "allow-once"
        assert event["payload"]["resolvedBy"] == "ada" and event["payload"]["pendingCount"] == 0
        assert event["payload"]["actorId"] == admin.user["id"]


async def test_a_stale_claim_of_a_process_that_died_does_not_block_the_approval(connected, fake, db, admin):
    record = await fake.raise_approval("make clean")
    await stored(db, record["id"])
    await db.changed("approvals.claim", gateway_id="default", id=record["id"], decision="deny", user_id=None, token_id=None,
                     label="crashed-worker", now="2020-01-01T00:00:00.000Z", stale_before="2000-01-01T00:00:00.000Z")
    response = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "allow-once"})
    assert response.status_code == 200
    row = await db.one("approvals.get", gateway_id="default", id=record["id"])
    assert row["status"] == "resolved" and row["decided_by_label"] == "ada" and row["decision"] == "allow-once"
