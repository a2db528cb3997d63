"""Two REAL OpenClaw gateways on loopback at once (different ports and state directories), one app: an approval
raised on each arrives in the one queue, named by its gateway, and is resolved at its own gateway through the
app. PostgreSQL pass only (each gateway takes ~1.5 GB and 15-25 s to start; the SQLite pass covers the same
paths with two fake gateways in tests/test_approvals_multi_gateway.py)."""

from __future__ import annotations

import asyncio

import pytest

from clawtrol.app import create_app
from clawtrol.config import load_config
from clawtrol.services import services_of

from .conftest import BACKEND, make_environ, sign_in_as
from .real_gateway import running_gateway_or_skip
from .test_gateway_real import _client, raise_approval

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="two real gateways run in the PostgreSQL pass")


@pytest.fixture(scope="module")
def second_real_gateway(tmp_path_factory):
    with running_gateway_or_skip(tmp_path_factory.mktemp("openclaw-second")) as gateway:
        yield gateway


async def test_an_approval_on_each_of_two_real_gateways_is_resolved_through_the_app(
        real_gateway, second_real_gateway, database_url, tmp_path):
    environ = make_environ(database_url, tmp_path / "data", GATEWAY_URL=real_gateway.url,
                           GATEWAY_TOKEN=real_gateway.token)
    app = create_app(load_config(environ, env_file=None))
    async with app.test_app():
        registry = services_of(app).gateways
        admin = await sign_in_as(app, "ada", "admin")
        created = await admin.post("/api/gateways", json={"name": "second", "url": second_real_gateway.url,
                                                           "token": second_real_gateway.token})
        assert created.status_code == 201, await created.get_json()
        second_id = (await created.get_json())["id"]
        await registry.client("default").wait_connected(60)
        await registry.client(second_id).wait_connected(60)

        requesters = [_client(real_gateway, tmp_path / "one"), _client(second_real_gateway, tmp_path / "two")]
        for requester in requesters:
            await requester.start()
            await requester.wait_connected(30)
        try:
            db = services_of(app).db
            first_id, first_final = await raise_approval(requesters[0], db, "echo from-the-first")
            second_approval, second_final = await raise_approval(requesters[1], db, "echo from-the-second", second_id)

            async def both_listed():
                body = await (await admin.get("/api/approvals")).get_json()
                mine = {(a["gatewayId"], a["id"]): a for a in body["pending"]}
                return mine if {("default", first_id), (second_id, second_approval)} <= set(mine) else None

            listed = None
            for _ in range(200):
                listed = await both_listed()
                if listed:
                    break
                await asyncio.sleep(0.05)
            assert listed, "both approvals reach the one queue"
            assert listed[(second_id, second_approval)]["gatewayName"] == "second"
            assert listed[("default", first_id)]["command"] == "echo from-the-first"

            answer = await admin.post(f"/api/approvals/{second_approval}/resolve",
                                      json={"decision": "deny", "gatewayId": second_id})
            assert answer.status_code == 200, await answer.get_json()
            assert (await asyncio.wait_for(second_final, 30))["decision"] == "deny"
            assert not first_final.done()  # the other gateway's approval still waits
            answer = await admin.post(f"/api/approvals/{first_id}/resolve",
                                      json={"decision": "allow-once", "gatewayId": "default"})
            assert answer.status_code == 200, await answer.get_json()
            assert (await asyncio.wait_for(first_final, 30))["decision"] == "allow-once"
            health = await (await admin.get("/api/health")).get_json()
            assert health["gateway"]["connected"] is True
            assert {g["name"] for g in health["gateways"]} == {"default", "second"}
        finally:
            for requester in requesters:
                await requester.stop()
