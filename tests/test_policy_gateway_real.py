"""An approval rule against the REAL OpenClaw gateway (tests/real_gateway.py): an exec approval the rule allows
is decided by the app before anyone sees it, and the requester on the gateway gets the rule's decision."""

from __future__ import annotations

import asyncio

from clawtrol import audit
from clawtrol.services import services_of

from .conftest import sign_in_as
from .test_gateway_real import _client, gateway_app, raise_approval  # noqa: F401  (gateway_app is a fixture)


async def test_a_rule_resolves_an_approval_on_the_real_gateway(real_gateway, gateway_app, tmp_path):  # noqa: F811
    db = services_of(gateway_app).db
    admin = await sign_in_as(gateway_app, "ada", "admin")
    created = await admin.post("/api/approval-rules", json={"name": "echo is harmless", "action": "allow-once",
                                                            "commandPattern": "echo clawtrol-policy *"})
    assert created.status_code == 201, await created.get_json()
    rule = await created.get_json()
    requester = _client(real_gateway, tmp_path / "requester")
    await requester.start()
    try:
        await requester.wait_connected(30)
        approval_id, final = await raise_approval(requester, db, "echo clawtrol-policy ok")
        assert (await asyncio.wait_for(final, 30))["decision"] == "allow-once"  # the gateway took the rule's word
        for _ in range(200):
            row = await db.one("approvals.get", gateway_id="default", id=approval_id)
            if row["status"] == "resolved":
                break
            await asyncio.sleep(0.05)
        assert row["status"] == "resolved" and row["decision"] == "allow-once"
        assert row["decided_by_label"] == "policy: echo is harmless" and row["decided_by_rule"] == rule["id"]
        [entry] = await audit.search(db, action="approval.auto_resolved", entity_id=approval_id)
        assert entry["details"]["ruleId"] == rule["id"]
        assert (await (await admin.get("/api/approvals")).get_json())["pending"] == []

        # a compound command under the same pattern is left to a person
        compound_id, compound = await raise_approval(requester, db, "echo clawtrol-policy ok && rm -rf /tmp/x")
        assert (await db.one("approvals.get", gateway_id="default", id=compound_id))["decided_at"] is None
        response = await admin.post(f"/api/approvals/{compound_id}/resolve", json={"decision": "deny"})
        assert response.status_code == 200, await response.get_json()
        assert (await asyncio.wait_for(compound, 30))["decision"] == "deny"
    finally:
        await requester.stop()
