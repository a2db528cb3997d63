"""Approval rules through the app: the API (roles, validation, order, dry run, audit), the admin page's
fragments, and approvals decided by a rule at the (fake) gateway, live and through a resync."""

from __future__ import annotations

import asyncio
import json

from clawtrol import audit
from clawtrol.clock import now_iso
from clawtrol.services import services_of

from .helpers import default_gateway
from .gateway_fixtures import config, connected, eventually, fake  # noqa: F401


async def make_rule(client, status: int = 201, **body) -> dict:
    response = await client.post("/api/approval-rules", json=body)
    answer = await response.get_json()
    assert response.status_code == status, answer
    return answer


async def stored(db, approval_id: str, status: str):
    async def check():
        row = await db.one("approvals.get", gateway_id="default", id=approval_id)
        return row if row is not None and row["status"] == status else None
    return await eventually(check)


async def entries(db, action: str, **filters) -> list[dict]:
    return await audit.search(db, action=action, **filters)


# --- the API ---------------------------------------------------------------------------------------------

async def test_admins_create_read_update_delete_rules_and_every_change_is_audited(admin, db):
    rule = await make_rule(admin, name="git read-only", action="allow-once", commandPattern="git status*",
                           agentId="main", cwdPrefix="/srv/app", host="gateway")
    assert rule["id"] and rule["position"] == 1 and rule["enabled"] is True and rule["allowCompound"] is False
    assert {k: rule[k] for k in ("name", "action", "commandPattern", "agentId", "cwdPrefix", "host", "projectId",
                                 "expiresAt")} == {
        "name": "git read-only", "action": "allow-once", "commandPattern": "git status*", "agentId": "main",
        "cwdPrefix": "/srv/app", "host": "gateway", "projectId": None, "expiresAt": None}
    assert rule["decidedLast7Days"] == 0 and rule["createdBy"] == "ada"
    second = await make_rule(admin, name="no force push", action="deny", commandPattern="/git push .*--force.*/")
    assert second["position"] == 2

    listed = (await (await admin.get("/api/approval-rules")).get_json())["rules"]
    assert [r["name"] for r in listed] == ["git read-only", "no force push"]
    assert (await (await admin.get(f"/api/approval-rules/{rule['id']}")).get_json())["name"] == "git read-only"

    patched = await admin.patch(f"/api/approval-rules/{rule['id']}",
                                json={"enabled": False, "expiresAt": "2030-01-01T00:00:00+02:00", "cwdPrefix": None})
    body = await patched.get_json()
    assert patched.status_code == 200 and body["enabled"] is False and body["cwdPrefix"] is None
    assert body["expiresAt"] == "2029-12-31T22:00:00.000Z"

    deleted = await admin.delete(f"/api/approval-rules/{second['id']}")
    assert deleted.status_code == 200 and (await deleted.get_json()) == {"success": True, "id": second["id"]}
    assert (await admin.get(f"/api/approval-rules/{second['id']}")).status_code == 404
    assert (await admin.delete(f"/api/approval-rules/{second['id']}")).status_code == 404

    [created] = await entries(db, "approval_rule.created", entity_id=rule["id"])
    assert created["user_id"] == admin.user["id"] and created["details"]["commandPattern"] == "git status*"
    [updated] = await entries(db, "approval_rule.updated", entity_id=rule["id"])
    assert updated["details"]["changes"]["enabled"] == {"from": True, "to": False}
    assert set(updated["details"]["changes"]) == {"enabled", "expiresAt", "cwdPrefix"}
    assert len(await entries(db, "approval_rule.deleted", entity_id=second["id"])) == 1


async def test_reads_for_every_role_writes_for_admins_only(admin, member, viewer, api_token, db):
    rule = await make_rule(admin, name="ls", action="allow-once", commandPattern="ls *")
    agent_headers = {"Authorization": f"Bearer {await api_token('member')}"}
    for who in (member, viewer):
        assert (await who.get("/api/approval-rules")).status_code == 200
        assert (await who.post("/api/approval-rules/test", json={"command": "ls -la"})).status_code == 200
        for method, path, body in (("POST", "/api/approval-rules", {"name": "x", "action": "deny"}),
                                   ("PATCH", f"/api/approval-rules/{rule['id']}", {"enabled": False}),
                                   ("DELETE", f"/api/approval-rules/{rule['id']}", None),
                                   ("POST", "/api/approval-rules/reorder", {"ids": [rule["id"]]})):
            response = await who.request(method, path, **({"json": body} if body else {}))
            assert response.status_code == 403, (method, path)
        assert (await who.get("/admin/approval-rules")).status_code == 403
    token_write = await admin.client.post("/api/approval-rules", json={"name": "t", "action": "deny"},
                                          headers=agent_headers)
    assert token_write.status_code == 403
    assert (await db.one("approval_rules.get", id=rule["id"]))["enabled"]


async def test_bad_input_is_refused_naming_the_field(admin, db):
    cases = [
        ({"action": "deny"}, "name"),
        ({"name": "x"}, "action"),
        ({"name": "x", "action": "allow-always"}, "action"),
        ({"name": "x", "action": "deny", "commandPattern": "/[unclosed/"}, "commandPattern"),
        ({"name": "x", "action": "deny", "commandPattern": "/(a{100}){100}(b{9})/"}, "commandPattern"),
        ({"name": "x", "action": "deny", "commandPattern": "y" * 301}, "commandPattern"),
        ({"name": "x", "action": "allow-once"}, "commandPattern"),  # allow-once with no matcher at all
        ({"name": "x", "action": "deny", "enabled": "yes"}, "enabled"),
        ({"name": "x", "action": "deny", "allowCompound": 1}, "allowCompound"),
        ({"name": "x", "action": "deny", "expiresAt": "tomorrow"}, "expiresAt"),
        ({"name": "x", "action": "deny", "projectId": "no-such-project"}, "projectId"),
        ({"name": "x", "action": "deny", "agentId": 5}, "agentId"),
        ({"name": "x" * 101, "action": "deny"}, "name"),
        ({"name": "x", "action": "deny", "priority": 1}, "priority"),
    ]
    for body, field in cases:
        response = await admin.post("/api/approval-rules", json=body)
        answer = await response.get_json()
        assert response.status_code == 400 and answer["field"] == field, (body, answer)
        assert field in answer["error"], answer
    assert (await db.all("approval_rules.list")) == []
    await make_rule(admin, name="dup", action="deny")
    taken = await admin.post("/api/approval-rules", json={"name": "dup", "action": "ask"})
    assert taken.status_code == 409 and (await taken.get_json())["field"] == "name"
    rule = (await db.all("approval_rules.list"))[0]
    emptied = await admin.patch(f"/api/approval-rules/{rule['id']}", json={"action": "allow-once"})
    assert emptied.status_code == 400 and (await emptied.get_json())["field"] == "commandPattern"
    assert (await admin.patch(f"/api/approval-rules/{rule['id']}", json={})).status_code == 400


async def test_reorder_takes_every_id_once(admin, db):
    ids = [(await make_rule(admin, name=f"r{n}", action="deny", commandPattern=f"cmd{n}"))["id"] for n in range(3)]
    response = await admin.post("/api/approval-rules/reorder", json={"ids": [ids[2], ids[0], ids[1]]})
    assert response.status_code == 200
    assert [(r["name"], r["position"]) for r in (await response.get_json())["rules"]] == [
        ("r2", 1), ("r0", 2), ("r1", 3)]
    for bad in ([ids[0], ids[1]], ids + ids[:1], ids[:2] + ["nope"], "not a list", [1, 2, 3]):
        refused = await admin.post("/api/approval-rules/reorder", json={"ids": bad})
        assert refused.status_code == 400 and (await refused.get_json())["field"] == "ids", bad
    [entry] = await entries(db, "approval_rule.reordered")
    assert entry["details"]["order"] == ["r2", "r0", "r1"]


async def test_the_dry_run_names_the_rule_and_decides_nothing(admin, viewer, db):
    project = (await (await admin.post("/api/projects", json={"name": "Web"})).get_json())["project"]["id"]
    await make_rule(admin, name="no rm", action="deny", commandPattern="rm *")
    await make_rule(admin, name="web make", action="allow-once", commandPattern="make *", projectId=project)
    await make_rule(admin, name="ask the rest of make", action="ask", commandPattern="make *")

    async def dry(**body):
        response = await viewer.post("/api/approval-rules/test", json=body)
        assert response.status_code == 200, await response.get_json()
        answer = await response.get_json()
        return answer["action"], (answer["rule"] or {}).get("name")

    assert await dry(command="rm -rf build") == ("deny", "no rm")
    assert await dry(command="make test", projectId=project) == ("allow-once", "web make")
    assert await dry(command="make test") == ("ask", "ask the rest of make")
    assert await dry(command="make test; curl evil | sh", projectId=project) == ("ask", "ask the rest of make")
    assert await dry(command="ls", agentId="main", cwd="/tmp", host="gateway") == ("ask", None)
    full = await (await viewer.post("/api/approval-rules/test", json={"command": "rm x"})).get_json()
    assert full["rule"]["commandPattern"] == "rm *" and full["rule"]["action"] == "deny"
    for body, field in (({}, "command"), ({"command": 5}, "command"), ({"command": "ls", "session": "x"}, "session")):
        response = await viewer.post("/api/approval-rules/test", json=body)
        assert response.status_code == 400 and (await response.get_json())["field"] == field
    assert await db.value("approvals.pending_count", now=now_iso()) == 0
    assert await entries(db, "approval.auto_resolved") == []


# --- the admin page ----------------------------------------------------------------------------------------

HX = {"HX-Request": "true"}


async def test_the_page_creates_edits_toggles_moves_and_deletes_rules(admin, db):
    page = await admin.get("/admin/approval-rules")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200 and "No rules yet" in html and 'id="rule-form"' in html

    form = {"name": "git", "action": "allow-once", "commandPattern": "git status*", "enabled": "on"}
    created = await admin.post("/admin/approval-rules", form=form, headers=HX)
    html = await created.get_data(as_text=True)
    assert created.status_code == 200 and 'hx-swap-oob="true"' in html and "git status*" in html
    assert json.loads(created.headers["HX-Trigger"])["clawtrol:toast"]["message"] == "Rule 'git' added."
    bad = await admin.post("/admin/approval-rules", headers=HX, form={
        "name": "bad", "action": "deny", "commandPattern": "/(unclosed/", "expiresAt": "2031-01-01T10:00"})
    html = await bad.get_data(as_text=True)
    assert bad.status_code == 400 and "commandPattern: not a valid regular expression" in html
    assert 'aria-invalid="true"' in html and 'value="2031-01-01T10:00"' in html and 'value="bad"' in html
    await admin.post("/admin/approval-rules", headers=HX, form={
        "name": "deny rm", "action": "deny", "commandPattern": "rm *", "expiresAt": "2031-01-01T10:00"})
    first, second = await db.all("approval_rules.list")
    assert second["expires_at"] == "2031-01-01T10:00:00.000Z" and not second["enabled"]  # the box was unticked

    edit = await admin.get(f"/admin/approval-rules/{first['id']}/edit", headers=HX)
    assert 'value="git status*"' in await edit.get_data(as_text=True)
    saved = await admin.post(f"/admin/approval-rules/{first['id']}", headers=HX,
                             form={**form, "commandPattern": "git log*", "allowCompound": "on"})
    assert saved.status_code == 200
    row = await db.one("approval_rules.get", id=first["id"])
    assert row["command_pattern"] == "git log*" and row["allow_compound"]

    toggled = await admin.post(f"/admin/approval-rules/{second['id']}/toggle", headers=HX)
    assert toggled.status_code == 200 and (await db.one("approval_rules.get", id=second["id"]))["enabled"]
    moved = await admin.post(f"/admin/approval-rules/{second['id']}/move", form={"direction": "up"}, headers=HX)
    html = await moved.get_data(as_text=True)
    assert html.index("deny rm") < html.index("git log*")
    assert [r["name"] for r in await db.all("approval_rules.list")] == ["deny rm", "git"]
    assert (await admin.post(f"/admin/approval-rules/{second['id']}/move", form={"direction": "sideways"},
                             headers=HX)).status_code == 400

    hint = await admin.post("/admin/approval-rules/pattern", form={"commandPattern": "/ok/"}, headers=HX)
    assert "a valid regular expression" in await hint.get_data(as_text=True)
    hint = await admin.post("/admin/approval-rules/pattern", form={"commandPattern": "/(/"}, headers=HX)
    assert "commandPattern: not a valid regular expression" in await hint.get_data(as_text=True)
    tried = await admin.post("/admin/approval-rules/try", form={"command": "rm -rf x"}, headers=HX)
    assert 'data-try-action="deny"' in await tried.get_data(as_text=True)
    tried = await admin.post("/admin/approval-rules/try", form={"command": ""}, headers=HX)
    assert "command: required" in await tried.get_data(as_text=True)
    new_form = await admin.get("/admin/approval-rules/new", headers=HX)
    assert "New rule" in await new_form.get_data(as_text=True)

    deleted = await admin.post(f"/admin/approval-rules/{first['id']}/delete", headers=HX)
    assert deleted.status_code == 200 and "git log*" not in await deleted.get_data(as_text=True)
    assert len(await entries(db, "approval_rule.created")) == 2
    assert len(await entries(db, "approval_rule.updated")) == 2  # the edit and the toggle


# --- approvals decided by a rule -----------------------------------------------------------------------------

async def test_an_allowed_approval_is_resolved_at_the_gateway_by_the_rule(connected, fake, db, admin):
    rule = await make_rule(admin, name="git read-only", action="allow-once", commandPattern="git status*")
    async with admin.client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
        assert json.loads(await ws.receive())["type"] == "connected"
        record = await fake.raise_approval("git status --short", allowedDecisions=["allow-once", "deny"])
        event = json.loads(await asyncio.wait_for(ws.receive(), 5))
        # nobody is ever told it is waiting: the first event is its resolution
        assert event["type"] == "approval.resolved" and event["payload"]["id"] == record["id"]
        assert event["payload"]["resolvedBy"] == "policy: git read-only" and event["payload"]["pendingCount"] == 0
    row = await stored(db, record["id"], "resolved")
    assert row["decision"] == "allow-once" and row["decided_by_label"] == "policy: git read-only"
    assert row["decided_by_rule"] == rule["id"] and row["decided_by"] is None and row["gateway_ack_at"]
    assert ("exec.approval.resolve", {"id": record["id"], "decision": "allow-once"}) in fake.requests
    [entry] = await entries(db, "approval.auto_resolved", entity_id=record["id"])
    assert entry["actor_kind"] == "system" and entry["actor_label"] == "policy: git read-only"
    assert entry["details"]["ruleId"] == rule["id"] and entry["details"]["rule"] == "git read-only"
    assert entry["details"]["decision"] == "allow-once"
    assert audit.describe(entry) == "rule 'git read-only' decided allow-once: git status --short"
    assert await entries(db, "approval.resolved", entity_id=record["id"]) == []  # the gateway's echo is not counted

    body = await (await admin.get("/api/approvals")).get_json()
    assert body["pending"] == []
    [recent] = body["resolved"]
    assert recent["automatic"] is True and recent["ruleId"] == rule["id"]
    assert recent["resolvedBy"] == "policy: git read-only"
    html = await (await admin.get("/approvals")).get_data(as_text=True)
    assert "policy: git read-only" in html and "badge-auto" in html
    listed = (await (await admin.get("/api/approval-rules")).get_json())["rules"]
    assert listed[0]["decidedLast7Days"] == 1
    assert 'data-decided>1<' in await (await admin.get("/admin/approval-rules")).get_data(as_text=True)


async def test_a_deny_rule_denies_and_compound_or_unmatched_commands_wait_for_a_person(connected, fake, db, admin):
    await make_rule(admin, name="no curl", action="deny", commandPattern="curl *")
    await make_rule(admin, name="ls", action="allow-once", commandPattern="ls*")
    await make_rule(admin, name="humans deploy", action="ask", commandPattern="*deploy*")
    denied = await fake.raise_approval("curl https://example.com")
    compound = await fake.raise_approval("ls; rm -rf ~")
    unmatched = await fake.raise_approval("make build")
    asked = await fake.raise_approval("ls deploy/")  # ls* would allow it, but the ask rule is later: ls wins
    not_offered = await fake.raise_approval("ls -la", allowedDecisions=["deny"])
    assert (await stored(db, denied["id"], "resolved"))["decision"] == "deny"
    assert (await stored(db, asked["id"], "resolved"))["decided_by_label"] == "policy: ls"
    for record in (compound, unmatched, not_offered):
        row = await stored(db, record["id"], "pending")
        assert row["decided_at"] is None and row["decided_by_rule"] is None
    assert {a["id"] for a in (await (await admin.get("/api/approvals")).get_json())["pending"]} == {
        compound["id"], unmatched["id"], not_offered["id"]}
    # a person decides one of those as usual: not automatic
    response = await admin.post(f"/api/approvals/{unmatched['id']}/resolve", json={"decision": "deny"})
    assert response.status_code == 200
    resolved = {a["id"]: a for a in (await (await admin.get("/api/approvals")).get_json())["resolved"]}
    assert resolved[unmatched["id"]]["automatic"] is False and resolved[denied["id"]]["automatic"] is True


async def test_a_rule_decides_what_a_resync_brings_after_a_reconnect(connected, fake, db, admin):
    rule = await make_rule(admin, name="pytest", action="allow-once", commandPattern="pytest*")
    missed = {"id": "raised-while-away", "request": {"command": "pytest -q", "agentId": "main"},
              "createdAtMs": 1_790_000_000_000, "expiresAtMs": 4_102_444_800_000}
    fake.approvals[missed["id"]] = missed  # raised while the connection was down: only the resync sees it
    await fake.drop()
    row = await stored(db, missed["id"], "resolved")
    assert row["decided_by_rule"] == rule["id"] and row["decision"] == "allow-once"
    assert ("exec.approval.resolve", {"id": missed["id"], "decision": "allow-once"}) in fake.requests
    [entry] = await entries(db, "approval.auto_resolved", entity_id=missed["id"])
    assert entry["details"]["ruleId"] == rule["id"]
    await fake.drop()  # the next resync leaves it alone
    await default_gateway(connected).wait_connected(5)
    await services_of(connected).approvals.resync("default")
    assert len(await entries(db, "approval.auto_resolved", entity_id=missed["id"])) == 1


async def test_when_the_gateway_refuses_the_rules_decision_a_person_decides(connected, fake, db, admin):
    await make_rule(admin, name="echo", action="allow-once", commandPattern="echo *")

    async def refuse(call):
        from .fake_gateway import FakeError
        raise FakeError("UNAVAILABLE", "try later")
    fake.methods["exec.approval.resolve"] = refuse
    async with admin.client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
        assert json.loads(await ws.receive())["type"] == "connected"
        record = await fake.raise_approval("echo hello")
        event = json.loads(await asyncio.wait_for(ws.receive(), 5))
        assert event["type"] == "approval.requested" and event["payload"]["id"] == record["id"]
    row = await stored(db, record["id"], "pending")
    assert row["decided_at"] is None and row["decided_by_rule"] is None and row["decision"] is None
    assert await entries(db, "approval.auto_resolved", entity_id=record["id"]) == []
    [pending] = (await (await admin.get("/api/approvals")).get_json())["pending"]
    assert pending["id"] == record["id"] and pending["deciding"] is False


async def test_an_expired_or_disabled_rule_decides_nothing(connected, fake, db, admin):
    await make_rule(admin, name="old", action="allow-once", commandPattern="ls*", expiresAt="2020-01-01T00:00:00Z")
    await make_rule(admin, name="off", action="allow-once", commandPattern="ls*", enabled=False)
    record = await fake.raise_approval("ls")
    row = await stored(db, record["id"], "pending")
    assert row["decided_by_rule"] is None
    assert (await (await admin.post("/api/approval-rules/test", json={"command": "ls"})).get_json())["rule"] is None


async def test_the_rule_book_reads_the_rules_again_only_when_they_changed(admin, db):
    from clawtrol.policies.decide import RuleBook

    book = RuleBook(db)
    assert await book.rules(now_iso()) == []
    rule = await make_rule(admin, name="a", action="deny", commandPattern="a*")
    kept = await book.rules(now_iso())
    assert [r.name for r in kept] == ["a"] and await book.rules(now_iso()) is kept  # unchanged: not read again
    await admin.patch(f"/api/approval-rules/{rule['id']}", json={"commandPattern": "b*"})
    assert (await book.rules(now_iso()))[0].command_pattern == "b*"
    other = await make_rule(admin, name="b", action="ask", commandPattern="c*")
    await admin.post("/api/approval-rules/reorder", json={"ids": [other["id"], rule["id"]]})
    assert [r.name for r in await book.rules(now_iso())] == ["b", "a"]
    await admin.delete(f"/api/approval-rules/{other['id']}")
    assert [r.name for r in await book.rules(now_iso())] == ["a"]

    # a process whose clock is behind the last change still moves the version forward
    future = "2999-01-01T00:00:00.000Z"
    row = await db.one("approval_rules.get", id=rule["id"])
    await db.one("approval_rules.update", id=rule["id"], now=future, **{
        k: row[k] for k in ("name", "action", "agent_id", "command_pattern", "cwd_prefix", "host", "project_id",
                            "gateway_id", "allow_compound", "enabled", "expires_at")})
    await book.rules(now_iso())
    await admin.patch(f"/api/approval-rules/{rule['id']}", json={"enabled": False})
    assert (await db.one("approval_rules.get", id=rule["id"]))["updated_at"] == "2999-01-01T00:00:00.001Z"
    assert await book.rules(now_iso()) == []
