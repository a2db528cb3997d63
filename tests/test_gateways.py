"""Gateways as records (issue #15, part 1): the admin API and page, the token kept encrypted and never shown or
audited, "test connection", and connections started, changed and stopped at runtime (against fake gateways)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from clawtrol import audit
from clawtrol.gateways.secrets import TokenBox
from clawtrol.services import services_of

from .conftest import Agent
from .fake_gateway import FakeGateway
from .gateway_fixtures import config, connected, eventually, fake  # noqa: F401
from .helpers import free_port

TOKEN = "s3cret-gateway-token-value"


async def add_gateway(admin, **body) -> dict:
    response = await admin.post("/api/gateways", json=body)
    answer = await response.get_json()
    assert response.status_code == 201, answer
    return answer


async def listed(admin) -> dict[str, dict]:
    response = await admin.get("/api/gateways")
    assert response.status_code == 200
    return {gw["name"]: gw for gw in (await response.get_json())["gateways"]}


async def gateway_state(admin, gateway_id: str) -> dict:
    response = await admin.get(f"/api/gateways/{gateway_id}")
    assert response.status_code == 200
    return await response.get_json()


async def until_connected(admin, gateway_id: str, connected: bool = True) -> dict:
    async def check():
        gw = await gateway_state(admin, gateway_id)
        return gw if gw["connected"] is connected else None
    return await eventually(check, timeout=10)


def form_post(browser, path: str, fields: dict):
    return browser.post(path, form=fields, headers={"HX-Request": "true"})


@pytest.fixture
async def other():
    """A second gateway, besides the 'default' one GATEWAY_URL names."""
    async with FakeGateway(token=TOKEN, version="2026.10.1-other") as gateway:
        yield gateway


# --- the record GATEWAY_URL becomes -----------------------------------------------------------------------

async def test_gateway_url_becomes_the_default_record(connected, fake, admin, db, app, config):
    gateways = (await (await admin.get("/api/gateways")).get_json())["gateways"]
    [default] = gateways
    assert default["id"] == "default" and default["name"] == "default" and default["url"] == fake.url
    assert default["enabled"] is True and default["hasToken"] is True and "token" not in default
    await until_connected(admin, "default")
    default = await gateway_state(admin, "default")
    assert default["version"] == fake.version and default["lastError"] is None and default["lastConnectedAt"]
    assert default["pendingApprovals"] == 0
    [entry] = await audit.search(db, entity_type="gateway", entity_id="default")
    assert entry["action"] == "gateway.created" and entry["actor_label"] == "GATEWAY_URL"
    assert "gw-token" not in json.dumps(entry["details"])
    row = await db.one("gateways.get", id="default")
    assert row["token_encrypted"] and "gw-token" not in row["token_encrypted"]
    assert services_of(app).gateway_tokens.open(row["token_encrypted"]) == "gw-token"

    # a second start (another process, a restart) inserts nothing more
    from clawtrol.gateways import bootstrap
    await bootstrap.default_from_environment(db, services_of(app).gateway_tokens, config.gateway_url, "gw-token")
    assert [g["id"] for g in await db.all("gateways.live")] == ["default"]
    assert len(await audit.search(db, entity_type="gateway")) == 1


# --- the API -----------------------------------------------------------------------------------------------

async def test_admins_manage_gateways_and_the_token_never_comes_back(connected, other, admin, db, app):
    created = await add_gateway(admin, name="gpu box", url=other.url, token=TOKEN)
    assert created["name"] == "gpu box" and created["url"] == other.url and created["enabled"] is True
    assert created["hasToken"] is True and created["createdBy"] == "ada"
    gateway_id = created["id"]

    # connected at runtime, without a restart
    up = await until_connected(admin, gateway_id)
    assert up["version"] == "2026.10.1-other" and up["lastError"] is None and up["lastConnectedAt"]
    assert set(up) >= {"id", "name", "url", "enabled", "connected", "version", "lastError", "lastConnectedAt",
                       "latencyMs", "pendingApprovals"}
    both = await listed(admin)
    assert set(both) == {"default", "gpu box"} and both["gpu box"]["connected"] is True

    # stored encrypted
    row = await db.one("gateways.get", id=gateway_id)
    assert row["token_encrypted"] and row["token_encrypted"] != TOKEN and TOKEN not in row["token_encrypted"]
    assert TokenBox(app.config["CLAWTROL"].session_secret).open(row["token_encrypted"]) == TOKEN

    renamed = await admin.patch(f"/api/gateways/{gateway_id}", json={"name": "gpu"})
    assert renamed.status_code == 200 and (await renamed.get_json())["name"] == "gpu"
    assert (await db.one("gateways.get", id=gateway_id))["token_encrypted"] == row["token_encrypted"]  # kept
    new_token = "another-" + TOKEN
    rotated = await admin.patch(f"/api/gateways/{gateway_id}", json={"token": new_token})
    assert rotated.status_code == 200

    async def refused():  # a new connection with the new token, which the fake does not know
        gw = await gateway_state(admin, gateway_id)
        return gw if gw["lastError"] and not gw["connected"] else None
    down = await eventually(refused, timeout=10)
    assert "version" in down and down["version"] is None

    disabled = await (await admin.patch(f"/api/gateways/{gateway_id}", json={"enabled": False,
                                                                              "token": TOKEN})).get_json()
    assert disabled["enabled"] is False and disabled["connected"] is False and disabled["version"] is None
    assert services_of(app).gateways.get(gateway_id) is None

    deleted = await admin.delete(f"/api/gateways/{gateway_id}")
    assert deleted.status_code == 200
    assert await deleted.get_json() == {"success": True, "id": gateway_id, "closedApprovals": 0}
    assert (await admin.get(f"/api/gateways/{gateway_id}")).status_code == 404
    assert (await admin.delete(f"/api/gateways/{gateway_id}")).status_code == 404
    assert set(await listed(admin)) == {"default"}
    # the name is free again, and history still names the removed one
    assert services_of(app).gateways.name(gateway_id) == "gpu"
    await add_gateway(admin, name="gpu", url=other.url, token=TOKEN, enabled=False)

    logged = [e for e in reversed(await audit.search(db, entity_type="gateway")) if e["entity_id"] == gateway_id]
    assert [e["action"] for e in logged] == ["gateway.created"] + ["gateway.updated"] * 3 + ["gateway.removed"]
    assert logged[1]["details"]["changes"] == {"name": "gpu"}
    assert logged[2]["details"]["changes"] == {"token": "replaced"}
    assert logged[3]["details"]["changes"] == {"enabled": False, "token": "replaced"}
    assert all(e["actor_label"] == "ada" for e in logged)
    everything = json.dumps([e["details"] for e in await audit.search(db, limit=1000)])
    assert TOKEN not in everything and new_token not in everything


async def test_the_token_is_in_no_answer(connected, other, admin):
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN)
    await until_connected(admin, created["id"])
    answers = [await admin.get("/api/gateways"), await admin.get(f"/api/gateways/{created['id']}"),
               await admin.patch(f"/api/gateways/{created['id']}", json={"name": "gpu 2"}),
               await admin.get("/admin/gateways"), await admin.get("/admin/gateways/list"),
               await admin.get(f"/admin/gateways/{created['id']}/edit"), await admin.get("/status")]
    for response in answers:
        assert response.status_code == 200
        assert TOKEN not in await response.get_data(as_text=True)


@pytest.mark.parametrize("body, field", [
    ({"url": "ws://127.0.0.1:1"}, "name"),
    ({"name": "", "url": "ws://127.0.0.1:1"}, "name"),
    ({"name": "   ", "url": "ws://127.0.0.1:1"}, "name"),
    ({"name": 5, "url": "ws://127.0.0.1:1"}, "name"),
    ({"name": "x" * 61, "url": "ws://127.0.0.1:1"}, "name"),
    ({"name": "a"}, "url"),
    ({"name": "a", "url": "http://127.0.0.1:1"}, "url"),
    ({"name": "a", "url": "127.0.0.1:1"}, "url"),
    ({"name": "a", "url": "ws://"}, "url"),
    ({"name": "a", "url": "ws://user:pw@host:1"}, "url"),
    ({"name": "a", "url": "ws://host:99999"}, "url"),
    ({"name": "a", "url": "ws://h/" + "x" * 600}, "url"),
    ({"name": "a", "url": "ws://127.0.0.1:1", "token": 5}, "token"),
    ({"name": "a", "url": "ws://127.0.0.1:1", "token": "t" * 501}, "token"),
    ({"name": "a", "url": "ws://127.0.0.1:1", "enabled": "yes"}, "enabled"),
    ({"name": "a", "url": "ws://127.0.0.1:1", "secret": "x"}, "secret"),
])
async def test_bad_gateways_are_refused_naming_the_field(app, admin, db, body, field):
    response = await admin.post("/api/gateways", json=body)
    answer = await response.get_json()
    assert response.status_code == 400 and answer["field"] == field, answer
    assert [g["id"] for g in await db.all("gateways.live")] == ["default"]


async def test_bad_changes_are_refused_naming_the_field(app, admin, db):
    created = await add_gateway(admin, name="a", url="ws://127.0.0.1:9", enabled=False)
    for body, field in (({"url": "https://x"}, "url"), ({"name": ""}, "name"), ({"enabled": 1}, "enabled"),
                        ({"token": ["x"]}, "token"), ({"id": "b"}, "id")):
        response = await admin.patch(f"/api/gateways/{created['id']}", json=body)
        assert response.status_code == 400 and (await response.get_json())["field"] == field, body
    empty = await admin.patch(f"/api/gateways/{created['id']}", json={})
    assert empty.status_code == 400 and "No updates" in (await empty.get_json())["error"]
    assert (await admin.patch("/api/gateways/nope", json={"name": "b"})).status_code == 404
    assert (await admin.get("/api/gateways/nope")).status_code == 404
    wrong_type = await admin.post("/api/gateways", data="name=a", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert [e["action"] for e in await audit.search(db, entity_type="gateway", entity_id=created["id"])] == [
        "gateway.created"]


async def test_a_duplicate_name_is_a_conflict(app, admin, db):
    await add_gateway(admin, name="build", url="ws://127.0.0.1:9", enabled=False)
    again = await admin.post("/api/gateways", json={"name": "build", "url": "ws://127.0.0.1:10", "enabled": False})
    assert again.status_code == 409 and (await again.get_json())["field"] == "name"
    second = await add_gateway(admin, name="gpu", url="ws://127.0.0.1:9", enabled=False)
    renamed = await admin.patch(f"/api/gateways/{second['id']}", json={"name": "default"})
    assert renamed.status_code == 409 and (await renamed.get_json())["code"] == "CONFLICT"
    assert sorted(g["name"] for g in await db.all("gateways.live")) == ["build", "default", "gpu"]


async def test_only_admins_reach_gateways(app, admin, member, viewer, api_token):
    agent = Agent(admin.app, await api_token("member"))
    for who in (member, viewer, agent):
        for method, path in (("GET", "/api/gateways"), ("GET", "/api/gateways/default"),
                             ("POST", "/api/gateways"), ("PATCH", "/api/gateways/default"),
                             ("DELETE", "/api/gateways/default"), ("POST", "/api/gateways/test")):
            response = await who.request(method, path, **({"json": {}} if method in ("POST", "PATCH") else {}))
            assert response.status_code == 403, (method, path)
    for path in ("/admin/gateways", "/admin/gateways/list", "/admin/gateways/default/edit"):
        assert (await member.get(path)).status_code == 403
    for path in ("/admin/gateways", "/admin/gateways/test", "/admin/gateways/default/toggle",
                 "/admin/gateways/default/delete"):
        assert (await form_post(member, path, {"name": "x", "url": "ws://127.0.0.1:1"})).status_code == 403
    assert (await app.test_client().get("/api/gateways")).status_code == 401
    assert [g["id"] for g in await services_of(app).db.all("gateways.live")] == ["default"]
    admin_agent = Agent(admin.app, await api_token("admin"))
    assert (await admin_agent.get("/api/gateways")).status_code == 200


# --- test connection -----------------------------------------------------------------------------------------

async def test_test_connection_shows_the_version_or_the_gateways_error(app, admin, other):
    ok = await (await admin.post("/api/gateways/test", json={"url": other.url, "token": TOKEN})).get_json()
    assert ok["ok"] is True and ok["version"] == "2026.10.1-other"

    wrong = await (await admin.post("/api/gateways/test", json={"url": other.url, "token": "wrong"})).get_json()
    assert wrong["ok"] is False and wrong["error"] and "version" not in wrong
    assert "wrong" not in wrong["error"] and TOKEN not in wrong["error"]

    unreachable = await (await admin.post("/api/gateways/test",
                                          json={"url": f"ws://127.0.0.1:{free_port()}"})).get_json()
    assert unreachable["ok"] is False and unreachable["error"]

    bad = await admin.post("/api/gateways/test", json={"url": "http://x"})
    assert bad.status_code == 400 and (await bad.get_json())["field"] == "url"
    bad = await admin.post("/api/gateways/test", json={"url": other.url, "token": 7})
    assert bad.status_code == 400 and (await bad.get_json())["field"] == "token"
    bad = await admin.post("/api/gateways/test", json={"url": other.url, "gatewayId": "nope"})
    assert bad.status_code == 404 and (await bad.get_json())["field"] == "gatewayId"

    # the stored token of a record, when none is given (the edit form's empty token field)
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN, enabled=False)
    stored = await (await admin.post("/api/gateways/test", json={"url": other.url,
                                                                 "gatewayId": created["id"]})).get_json()
    assert stored["ok"] is True and stored["version"] == "2026.10.1-other"
    assert other.live == []  # a test does not keep its connection

    # the page's button: a fragment with the version or the error
    html = await (await form_post(admin, "/admin/gateways/test", {"url": other.url, "token": TOKEN})).get_data(
        as_text=True)
    assert "2026.10.1-other" in html and "data-test-ok" in html
    html = await (await form_post(admin, "/admin/gateways/test", {"url": other.url, "token": "nope"})).get_data(
        as_text=True)
    assert "data-test-error" in html and "Could not connect" in html
    html = await (await form_post(admin, "/admin/gateways/test", {"url": other.url, "token": "",
                                                                  "gatewayId": created["id"]})).get_data(as_text=True)
    assert "2026.10.1-other" in html
    html = await (await form_post(admin, "/admin/gateways/test", {"url": "nonsense"})).get_data(as_text=True)
    assert "data-test-error" in html and "url:" in html


async def test_an_unreadable_stored_token_is_reported(app, admin, db, other):
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN, enabled=False)
    foreign = TokenBox("another-session-secret-of-enough-length-000000").seal(TOKEN)
    await db.changed("gateways.update", id=created["id"], name="gpu", url=other.url, token_encrypted=foreign,
                     enabled=False, user_id=None, label="test", now="2026-01-01T00:00:00.000Z")
    answer = await (await admin.post("/api/gateways/test", json={"url": other.url,
                                                                 "gatewayId": created["id"]})).get_json()
    assert answer["ok"] is False and "cannot be decrypted" in answer["error"]
    enabled = await (await admin.patch(f"/api/gateways/{created['id']}", json={"enabled": True})).get_json()
    assert enabled["connected"] is False and "cannot be decrypted" in enabled["lastError"]


# --- runtime: added, disabled and removed without a restart, approvals closed -------------------------------

async def raise_and_wait(admin, db, gateway: FakeGateway, gateway_id: str, command: str) -> dict:
    record = await gateway.raise_approval(command)

    async def check():
        row = await db.one("approvals.get", gateway_id=gateway_id, id=record["id"])
        return row if row is not None and row["status"] == "pending" else None
    await eventually(check)
    return record


async def closed_as_removed(db, gateway_id: str, approval_id: str) -> dict:
    row = await db.one("approvals.get", gateway_id=gateway_id, id=approval_id)
    assert row["status"] == "closed" and row["close_reason"] == "gateway_removed", row
    [entry] = await audit.search(db, action="approval.closed", entity_id=approval_id)
    assert entry["details"]["reason"] == "gateway_removed" and entry["details"]["gatewayId"] == gateway_id
    return row


async def test_a_gateway_added_at_runtime_connects_and_removing_it_closes_its_approvals(connected, fake, other,
                                                                                         admin, db, app):
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN)
    gateway_id = created["id"]
    await until_connected(admin, gateway_id)
    await other.wait_for(lambda: bool(other.live))

    record = await raise_and_wait(admin, db, other, gateway_id, "nvidia-smi -r")
    kept = await raise_and_wait(admin, db, fake, "default", "make test")
    assert (await gateway_state(admin, gateway_id))["pendingApprovals"] == 1
    queue = await (await admin.get("/api/approvals")).get_json()
    assert {(a.get("gatewayId"), a["id"]) for a in queue["pending"]} == {(gateway_id, record["id"]),
                                                                        ("default", kept["id"])}

    response = await admin.delete(f"/api/gateways/{gateway_id}")
    assert await response.get_json() == {"success": True, "id": gateway_id, "closedApprovals": 1}
    await other.wait_for(lambda: not other.live)  # its connection stopped
    assert services_of(app).gateways.get(gateway_id) is None
    await closed_as_removed(db, gateway_id, record["id"])
    history = await (await admin.get("/api/approvals")).get_json()
    closed = next(a for a in history["resolved"] if a["id"] == record["id"])
    assert closed["status"] == "closed" and closed["closeReason"] == "gateway_removed"
    assert [a["id"] for a in history["pending"]] == [kept["id"]]  # the other gateway's is untouched
    assert (await gateway_state(admin, "default"))["connected"] is True


async def test_a_gateway_connects_with_info_logging_on(connected, other, admin, caplog):
    """As `clawtrol serve` logs (LOG_LEVEL=INFO): the registry's log lines must be valid LogRecords (an `extra`
    key such as "name" overwrites a LogRecord attribute and makes the reload fail, so no gateway connects)."""
    caplog.set_level(logging.INFO)
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN)
    problems = [r.getMessage() for r in caplog.records if "could not reload" in r.getMessage()]
    assert not problems, problems
    await until_connected(admin, created["id"])
    assert (await admin.delete(f"/api/gateways/{created['id']}")).status_code == 200
    assert not [r for r in caplog.records if "could not reload" in r.getMessage()]


async def test_disabling_a_gateway_stops_it_and_closes_its_approvals(connected, other, admin, db, app):
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN)
    gateway_id = created["id"]
    await until_connected(admin, gateway_id)
    await other.wait_for(lambda: bool(other.live))
    record = await raise_and_wait(admin, db, other, gateway_id, "rm -rf /tmp/cache")

    # the page's switch: Off
    response = await form_post(admin, f"/admin/gateways/{gateway_id}/toggle", {})
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert 'data-state="disabled"' in html and "disabled" in json.loads(response.headers["HX-Trigger"])[
        "clawtrol:toast"]["message"]
    await other.wait_for(lambda: not other.live)
    await closed_as_removed(db, gateway_id, record["id"])
    [entry] = [e for e in await audit.search(db, entity_type="gateway", action="gateway.updated")]
    assert entry["details"]["changes"] == {"enabled": False}

    # On again: connected again, without a restart
    await form_post(admin, f"/admin/gateways/{gateway_id}/toggle", {})
    await until_connected(admin, gateway_id)


# --- the admin page -------------------------------------------------------------------------------------------

async def test_the_admin_page_adds_edits_and_removes(connected, other, admin, db):
    page = await admin.get("/admin/gateways")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="gateway-list"' in html and "Test connection" in html
    assert "<script>" not in html and ' style="' not in html  # the CSP allows neither
    assert "/admin/gateways" in await (await admin.get("/status")).get_data(as_text=True)  # linked in the menu

    refused = await form_post(admin, "/admin/gateways", {"name": "gpu", "url": "http://nope", "token": TOKEN,
                                                         "enabled": "on"})
    html = await refused.get_data(as_text=True)
    assert refused.status_code == 400 and "url:" in html and 'aria-invalid="true"' in html
    assert TOKEN not in html and 'value="gpu"' in html  # kept what was typed, except the token

    added = await form_post(admin, "/admin/gateways", {"name": "gpu", "url": other.url, "token": TOKEN,
                                                       "enabled": "on"})
    html = await added.get_data(as_text=True)
    assert added.status_code == 200 and 'data-gateway-name="gpu"' in html and 'hx-swap-oob="true"' in html
    assert json.loads(added.headers["HX-Trigger"])["clawtrol:toast"]["message"] == "Gateway 'gpu' added."
    [row] = [g for g in await db.all("gateways.live") if g["name"] == "gpu"]
    await until_connected(admin, row["id"])
    listing = await (await admin.get("/admin/gateways/list")).get_data(as_text=True)
    assert 'data-state="connected"' in listing and "2026.10.1-other" in listing

    edit = await (await admin.get(f"/admin/gateways/{row['id']}/edit")).get_data(as_text=True)
    assert "leave empty to keep the stored token" in edit and f'value="{other.url}"' in edit
    saved = await form_post(admin, f"/admin/gateways/{row['id']}", {"name": "gpu box", "url": other.url,
                                                                    "token": "", "enabled": "on"})
    assert saved.status_code == 200 and 'data-gateway-name="gpu box"' in await saved.get_data(as_text=True)
    after = await db.one("gateways.get", id=row["id"])
    assert after["token_encrypted"] == row["token_encrypted"]  # the empty field kept the token
    duplicate = await form_post(admin, f"/admin/gateways/{row['id']}", {"name": "default", "url": other.url,
                                                                        "enabled": "on"})
    assert duplicate.status_code == 400 and "exists already" in await duplicate.get_data(as_text=True)

    removed = await form_post(admin, f"/admin/gateways/{row['id']}/delete", {})
    assert removed.status_code == 200 and 'data-gateway-name="gpu box"' not in await removed.get_data(as_text=True)
    assert "removed" in json.loads(removed.headers["HX-Trigger"])["clawtrol:toast"]["message"]
    assert (await form_post(admin, f"/admin/gateways/{row['id']}/delete", {})).status_code == 404
    fresh = await (await admin.get("/admin/gateways/new")).get_data(as_text=True)
    assert "Add gateway" in fresh


async def test_the_status_page_shows_each_gateway(connected, fake, other, admin):
    created = await add_gateway(admin, name="gpu", url=other.url, token=TOKEN)
    await until_connected(admin, created["id"])
    await add_gateway(admin, name="down", url=f"ws://127.0.0.1:{free_port()}")
    off = await add_gateway(admin, name="off", url=other.url, enabled=False)

    async def errored():
        return (await listed(admin))["down"]["lastError"]
    await eventually(errored)
    html = await (await admin.get("/status")).get_data(as_text=True)
    assert f'id="gateway-status-{created["id"]}" data-state="connected"' in html
    assert f'id="gateway-status-{off["id"]}" data-state="disabled"' in html
    assert "2026.10.1-other" in html and fake.version in html and "Round trip" in html
    assert 'data-state="disconnected"' in html and "2 of 3 connected" in html


async def test_the_status_page_without_any_gateway(app, admin, db, config):
    await admin.delete("/api/gateways/default")
    from clawtrol.gateways import bootstrap  # a restart with GATEWAY_URL still set does not bring it back
    await bootstrap.default_from_environment(db, services_of(app).gateway_tokens, config.gateway_url, "")
    assert await db.all("gateways.live") == []
    html = await (await admin.get("/status")).get_data(as_text=True)
    assert "No gateway is configured" in html and "/admin/gateways" in html
    assert (await (await admin.get("/api/gateways")).get_json()) == {"gateways": [], "count": 0}


async def test_a_stored_token_is_only_sent_to_the_url_it_was_entered_for(app, admin, db):
    """Whoever may edit a gateway must not be able to read its token by pointing the URL at a server of theirs."""
    created = await (await admin.post("/api/gateways", json={"name": "guarded", "url": "ws://127.0.0.1:9",
                                                             "token": "s3cret-token"})).get_json()
    moved = await admin.patch(f"/api/gateways/{created['id']}", json={"url": "ws://evil.example:443"})
    assert moved.status_code == 400 and (await moved.get_json())["field"] == "token"
    assert (await db.one("gateways.get", id=created["id"]))["url"] == "ws://127.0.0.1:9"  # nothing changed
    probe = await admin.post("/api/gateways/test", json={"url": "ws://evil.example:443", "gatewayId": created["id"]})
    assert probe.status_code == 400 and (await probe.get_json())["field"] == "token"
    with_token = await admin.patch(f"/api/gateways/{created['id']}", json={"url": "ws://127.0.0.1:10",
                                                                           "token": "new-token"})
    assert with_token.status_code == 200 and (await with_token.get_json())["url"] == "ws://127.0.0.1:10"


async def test_processes_starting_together_create_the_default_gateway_once(empty_database_url, config):
    """Several processes start at once (compose with CLAWTROL_WORKERS > 1) on a database that has no gateway yet:
    each inserts 'default' from GATEWAY_URL, exactly one wins, and none fails to start."""
    from clawtrol.db import Database
    from clawtrol.db.migrations import upgrade
    from clawtrol.gateways import bootstrap
    from clawtrol.paths import SQL_MIGRATIONS

    starts = [Database.open(empty_database_url) for _ in range(4)]
    for one in starts:
        await one.connect()
    try:
        await upgrade(starts[0], SQL_MIGRATIONS)
        box = TokenBox(config.session_secret)
        await asyncio.gather(*(bootstrap.default_from_environment(one, box, "ws://127.0.0.1:9", "t") for one in starts))
        assert [row["id"] for row in await starts[0].all("gateways.live")] == ["default"]
        assert len(await audit.search(starts[0], action="gateway.created", entity_id="default")) == 1
    finally:
        for one in starts:
            await one.disconnect()
