"""Changing gateway records, each change with its audit entry in one transaction (never the token), and the
"test connection" handshake. Disabling or removing a gateway closes its pending approvals as `gateway_removed`
in the same transaction; every process then stops its connection (registry.py, on `gateway.changed`)."""

from __future__ import annotations

import asyncio
import logging

from .. import audit
from ..approvals.gate import publish
from ..audit import Actor
from ..clock import new_id, now_iso
from ..db import Database, UniqueViolation
from ..errors import ApiError, Conflict, InvalidInput, NotFound
from ..gateway.client import GatewayClient
from ..services import Services
from .model import described, parse_url, to_json, validate
from .registry import CHANGED_EVENT, GatewayRegistry
from .secrets import TokenBox, UnreadableToken

log = logging.getLogger(__name__)

TEST_TIMEOUT = 8.0


# A stored token is write-only, and only ever sent to the URL it was entered for: otherwise whoever may edit the
# URL (or test one) could have it sent to a server of theirs and read it there.
def _token_needed_for_new_url() -> ApiError:
    return InvalidInput("token: required when the URL changes (the stored token is only sent to the URL it was entered "
                        "for)", field="token")


def _taken(name: str) -> ApiError:
    return Conflict(f"name: a gateway named {name!r} exists already", field="name", code="CONFLICT")


async def get(db: Database, gateway_id: str) -> dict:
    row = await db.one("gateways.get", id=gateway_id)
    if row is None:
        raise NotFound("No gateway with this id.", code="NOT_FOUND")
    return row


async def records(db: Database) -> list[dict]:
    """The gateways not removed, by name (the database rows)."""
    return await db.all("gateways.live")


async def listing(db: Database, registry: GatewayRegistry) -> list[dict]:
    """Every gateway not removed, by name, as the API shows it: with its connection's state and its pending
    approvals."""
    counts = await pending_counts(db)
    return [to_json(row, registry.get(row["id"]), counts.get(row["id"], 0)) for row in await db.all("gateways.live")]


async def one(db: Database, registry: GatewayRegistry, gateway_id: str) -> dict:
    row = await get(db, gateway_id)
    return to_json(row, registry.get(gateway_id), (await pending_counts(db)).get(gateway_id, 0))


async def pending_counts(db: Database) -> dict[str, int]:
    return {row["gateway_id"]: int(row["pending"]) for row in await db.all("gateways.pending_counts", now=now_iso())}


async def _announce(app: Services, actor: Actor, row: dict, closed: list[dict]) -> None:
    """After the commit: this process reconnects at once (the answer shows the new state), the others on the
    live event (or their periodic reload); the closed approvals leave every open queue."""
    try:
        await app.gateways.reload()
    except Exception as exc:  # committed all the same; the periodic reload catches up
        log.warning("could not reload the gateways after a change: %s", exc, extra={"gateway": row["id"]})
    await app.hub.publish(CHANGED_EVENT, {"gateway": {"id": row["id"], "name": row["name"]}})
    for approval in closed:
        await publish(app.db, app.hub, "approval.closed", row["id"], approval["id"], actor)


async def _close_approvals(db: Database, actor: Actor, row: dict, why: str) -> list[dict]:
    closed = await db.all("approvals.close_for_gateway", gateway_id=row["id"], now=now_iso())
    for approval in closed:
        await audit.record(db, actor, "approval.closed", "approval", approval["id"],
                           {"command": approval["command"][:500], "gatewayId": row["id"], "reason": "gateway_removed",
                            "why": f"gateway {row['name']} {why}"})
    return closed


async def create(app: Services, actor: Actor, body: dict) -> dict:
    db, values = app.db, validate(body)
    try:
        async with db.transaction():
            row = await db.one("gateways.insert", id=new_id(), name=values["name"], url=values["url"],
                               token_encrypted=app.gateway_tokens.seal(values["token"]), enabled=values["enabled"],
                               user_id=actor.user_id, label=actor.label, now=now_iso())
            await audit.record(db, actor, "gateway.created", "gateway", row["id"], described(row))
    except UniqueViolation:
        raise _taken(values["name"]) from None
    await _announce(app, actor, row, [])
    return row


async def update(app: Services, actor: Actor, gateway_id: str, body: dict) -> dict:
    db = app.db
    if not body:
        raise InvalidInput("No updates provided: send any of name, url, token, enabled")
    try:
        async with db.transaction():
            before = await db.one("gateways.lock", id=gateway_id)
            if before is None:
                raise NotFound("No gateway with this id.", code="NOT_FOUND")
            values = validate(body, before)
            if values["url"] != before["url"] and values["token"] is None and before["token_encrypted"]:
                raise _token_needed_for_new_url()
            sealed = before["token_encrypted"] if values["token"] is None else app.gateway_tokens.seal(values["token"])
            row = await db.one("gateways.update", id=gateway_id, name=values["name"], url=values["url"],
                               token_encrypted=sealed, enabled=values["enabled"], user_id=actor.user_id,
                               label=actor.label, now=now_iso())
            changes = {key: value for key, value in described(row).items() if described(before)[key] != value}
            if values["token"] is not None:
                changes["token"] = "replaced" if values["token"] else "cleared"
            await audit.record(db, actor, "gateway.updated", "gateway", gateway_id,
                               {"name": row["name"], "changes": changes})
            disabled = before["enabled"] and not row["enabled"]
            closed = await _close_approvals(db, actor, row, "was disabled") if disabled else []
    except UniqueViolation:
        raise _taken(values["name"]) from None
    await _announce(app, actor, row, closed)
    return row


async def remove(app: Services, actor: Actor, gateway_id: str) -> dict:
    """Remove a gateway: its connection stops and its pending approvals close; its history stays."""
    db = app.db
    async with db.transaction():
        row = await db.one("gateways.remove", id=gateway_id, user_id=actor.user_id, label=actor.label, now=now_iso())
        if row is None:
            raise NotFound("No gateway with this id.", code="NOT_FOUND")
        await audit.record(db, actor, "gateway.removed", "gateway", gateway_id, described(row))
        closed = await _close_approvals(db, actor, row, "was removed")
    await _announce(app, actor, row, closed)
    return {"success": True, "id": gateway_id, "closedApprovals": len(closed)}


async def test_connection(db: Database, box: TokenBox, url: object, token: object = None,
                          gateway_id: object = None, identity_path=None) -> dict:
    """Perform the handshake with a gateway (without keeping the connection): {ok, version} or {ok: false,
    error} with the gateway's (or the network's) reason. Without a token, the stored token of the record
    `gateway_id` is used (the edit form leaves the token empty to keep it)."""
    address = parse_url(url)
    if token is not None and not isinstance(token, str):
        raise InvalidInput("token: must be a string", field="token")
    if gateway_id is not None and not isinstance(gateway_id, str):
        raise InvalidInput("gatewayId: must be a string", field="gatewayId")
    if not token and gateway_id:
        row = await db.one("gateways.get", id=gateway_id)
        if row is None:
            raise NotFound(f"gatewayId: no gateway {gateway_id!r}", field="gatewayId", code="NOT_FOUND")
        if row["url"] != address and row["token_encrypted"]:
            raise _token_needed_for_new_url()
        try:
            token = box.open(row["token_encrypted"])
        except UnreadableToken as problem:
            return {"ok": False, "url": address, "error": str(problem)}
    client = GatewayClient(address, (token or "").strip(), identity_path=identity_path, backoff_initial=60,
                           backoff_max=60, handshake_timeout=TEST_TIMEOUT, probe=True)
    await client.start()
    try:
        async with asyncio.timeout(TEST_TIMEOUT + 1):
            while not client.connected and not client.state.last_error:
                await asyncio.sleep(0.05)
    except TimeoutError:
        pass
    finally:
        hello, error = (client.hello if client.connected else None), client.state.last_error
        await client.stop()
    if hello is None:
        return {"ok": False, "url": address, "error": error or f"no answer within {TEST_TIMEOUT:.0f} s"}
    return {"ok": True, "url": address, "version": (hello.get("server") or {}).get("version"),
            "protocol": hello.get("protocol")}
