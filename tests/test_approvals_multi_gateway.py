"""One approvals queue across several gateways (issue #15): approval identity is (gateway, id), each approval is
decided at its own gateway, a gateway that goes down does not hold up the others, and gateways come and go at
runtime without a restart."""

from __future__ import annotations

import asyncio

from clawtrol.audit import Actor
from clawtrol.gateways import service as gateways
from clawtrol.services import services_of

from .fake_gateway import FakeGateway
from .gateway_fixtures import config, connected, eventually, fake  # noqa: F401

ADMIN = Actor(kind="user", label="tests")


async def add_gateway(app, name: str, url: str, token: str = "gw-token", **fields) -> dict:
    return await gateways.create(services_of(app), ADMIN, {"name": name, "url": url, "token": token, **fields})


async def pending(browser, **params) -> list[dict]:
    body = await (await browser.get("/api/approvals", query_string=params)).get_json()
    return body["pending"]


async def test_approvals_of_two_gateways_share_one_queue_and_resolve_at_their_own(connected, fake, admin, db):
    async with FakeGateway(token="gw-token", version="2026.9.6-second") as second:
        row = await add_gateway(connected, "gpu box", second.url)
        await services_of(connected).gateways.client(row["id"]).wait_connected(5)
        # the same approval id on both gateways: two approvals, told apart by their gateway
        first_record = await fake.raise_approval("make build", approval_id="same-id")
        second_record = await second.raise_approval("nvidia-smi", approval_id="same-id")
        queue = await eventually(lambda: _two(pending(admin)))
        assert {(a["gatewayId"], a["gatewayName"], a["command"]) for a in queue} == {
            ("default", "default", "make build"), (row["id"], "gpu box", "nvidia-smi")}
        assert [a["command"] for a in await pending(admin, gatewayId=row["id"])] == ["nvidia-smi"]

        ambiguous = await admin.post("/api/approvals/same-id/resolve", json={"decision": "deny"})
        assert ambiguous.status_code == 400 and (await ambiguous.get_json())["field"] == "gatewayId"
        answer = await admin.post("/api/approvals/same-id/resolve", json={"decision": "deny", "gatewayId": row["id"]})
        assert answer.status_code == 200 and (await answer.get_json())["gatewayId"] == row["id"]
        assert ("exec.approval.resolve", {"id": second_record["id"], "decision": "deny"}) in second.requests
        assert not any(method == "exec.approval.resolve" for method, _ in fake.requests)  # not the other gateway
        [left] = await pending(admin)
        assert left["gatewayId"] == "default" and left["id"] == first_record["id"]

        page = await (await admin.get("/approvals")).get_data(as_text=True)
        assert 'id="gateway-filter"' in page and "gpu box" in page
        assert f'id="approval-default-{first_record["id"]}"' in page


async def _two(result):
    items = await result
    return items if len(items) == 2 else None


async def test_one_gateway_down_does_not_hold_up_the_other(connected, fake, admin):
    async with FakeGateway(token="gw-token") as second:
        row = await add_gateway(connected, "second", second.url)
        registry = services_of(connected).gateways
        await registry.client(row["id"]).wait_connected(5)
        await second.close()  # killed
        await eventually(lambda: _false(registry.is_connected(row["id"])))
        health = await (await admin.get("/api/health")).get_json()
        assert health["gateway"]["connected"] is False and health["status"] == "degraded"
        assert {g["name"]: g["connected"] for g in health["gateways"]} == {"default": True, "second": False}
        anonymous = await (await connected.test_client().get("/api/health")).get_json()  # a container probe
        assert anonymous["status"] == "degraded" and anonymous["gateway"]["connected"] is False
        assert sorted(anonymous["gateways"], key=lambda g: g["id"] != "default") == [
            {"id": "default", "connected": True}, {"id": row["id"], "connected": False}]  # no names

        record = await fake.raise_approval("still works")
        await eventually(lambda: _one(pending(admin)))
        answer = await admin.post(f"/api/approvals/{record['id']}/resolve", json={"decision": "allow-once"})
        assert answer.status_code == 200


async def _false(value):
    return not value


async def _one(result):
    items = await result
    return items if len(items) == 1 else None


async def test_a_gateway_added_and_removed_at_runtime(connected, fake, admin, db):
    registry = services_of(connected).gateways
    async with FakeGateway(token="other-token") as other:
        row = await add_gateway(connected, "runtime", other.url, token="other-token")
        await registry.client(row["id"]).wait_connected(5)  # no restart
        record = await other.raise_approval("echo hi")
        await eventually(lambda: _one(pending(admin, gatewayId=row["id"])))

        result = await gateways.remove(services_of(connected), ADMIN, row["id"])
        assert result["closedApprovals"] == 1
        assert registry.get(row["id"]) is None and not other.live  # the connection is gone
        assert await pending(admin) == []
        body = await (await admin.get("/api/approvals", query_string={"gatewayId": row["id"]})).get_json()
        [closed] = body["resolved"]  # history is kept, with the gateway's name
        assert closed["id"] == record["id"] and closed["status"] == "closed"
        assert closed["closeReason"] == "gateway_removed" and closed["gatewayName"] == "runtime"
        # a late event from the removed gateway (another process still connected) is not taken in
        assert not await services_of(connected).approvals.ingest(row["id"], {**record, "id": "late"})


async def test_a_second_process_follows_a_gateway_added_elsewhere(connected, fake, config):
    """Every process connects to a gateway another process added (a live event, or the periodic reload)."""
    from clawtrol.app import create_app

    other_app = create_app(config)
    async with other_app.test_app(), FakeGateway(token="gw-token") as second:
        row = await add_gateway(connected, "shared", second.url)
        other_registry = services_of(other_app).gateways
        await other_registry.reload()  # what the event or the periodic reload does
        await other_registry.client(row["id"]).wait_connected(5)
        await asyncio.sleep(0)
        assert len(second.live) == 2


async def test_a_rule_can_apply_to_one_gateways_approvals(connected, fake, admin, db):
    async with FakeGateway(token="gw-token") as sandbox:
        row = await add_gateway(connected, "sandbox", sandbox.url)
        await services_of(connected).gateways.client(row["id"]).wait_connected(5)
        bad = await admin.post("/api/approval-rules", json={"name": "x", "action": "deny", "gatewayId": "nope"})
        assert bad.status_code == 400 and (await bad.get_json())["field"] == "gatewayId"
        rule = await admin.post("/api/approval-rules", json={"name": "sandbox may test", "action": "allow-once",
                                                             "commandPattern": "make test*", "gatewayId": row["id"]})
        assert rule.status_code == 201 and (await rule.get_json())["gatewayId"] == row["id"]

        on_sandbox = await sandbox.raise_approval("make test")
        await sandbox.wait_for(lambda: ("exec.approval.resolve", {"id": on_sandbox["id"], "decision": "allow-once"})
                               in sandbox.requests)
        on_default = await fake.raise_approval("make test")
        [waiting] = await eventually(lambda: _one(pending(admin)))
        assert waiting["id"] == on_default["id"] and waiting["gatewayId"] == "default"  # the rule is not for it
        tried = await admin.post("/api/approval-rules/test", json={"command": "make test", "gatewayId": row["id"]})
        assert (await tried.get_json())["action"] == "allow-once"
        page = await (await admin.get("/admin/approval-rules")).get_data(as_text=True)
        assert "gateway <code>sandbox</code>" in page
