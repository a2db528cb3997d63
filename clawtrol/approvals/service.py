"""Deciding an approval: who may (agents/authority.py, DESIGN §4), the claim → gateway → confirm sequence, audit and live event.

The row is claimed (decision and decider recorded, status still pending) with a conditional update before
the gateway is asked, so of two people deciding at once exactly one gets through; the other is told who
decided and when (409). The gateway's acceptance makes it resolved, in the same transaction as the audit
entry. If the gateway is down, times out or refuses, the claim is released: the approval stays pending.
"""

from __future__ import annotations


from .. import audit
from ..agents.authority import Authority, over_session
from ..audit import Actor
from ..auth.principal import Principal
from ..clock import now_iso
from ..db import Database
from ..errors import ApiError, Conflict, Forbidden, GatewayUnreachable, InvalidInput, NotFound
from ..gateway import answers
from ..gateway.client import GatewayError
from ..services import Call
from .gate import STAYS_PENDING, publish, send_claimed, stale_before
from .model import DECISIONS, decisions_of, to_json

def authority(principal: Principal | None, row: dict) -> Authority:
    """May `principal` decide this approval, and why (from the start work record of its session)."""
    return over_session(principal, row, deciding=True)


async def _require_resolve(db: Database, principal: Principal, actor: Actor, row: dict) -> None:
    decision = authority(principal, row)
    if decision.allowed:
        return
    await audit.record_refusal(db, actor, "approval.resolve", "approval", row["id"], decision.reason,
                               {"command": row["command"][:200], "sessionKey": row.get("session_key"),
                                "gatewayId": row["gateway_id"]})
    raise Forbidden(decision.reason, code="FORBIDDEN")


def _conflict(row: dict) -> ApiError:
    if row["status"] == "pending" and row.get("decided_at"):
        message = f"This approval is already being resolved by {row.get('decided_by_label') or 'someone'} " \
                  f"(since {row['decided_at']})."
    elif row["status"] == "resolved":
        message = f"This approval was already resolved by {row.get('decided_by_label') or 'someone'} " \
                  f"at {row.get('decided_at')} ({row.get('decision')})."
    elif row["status"] == "expired" or (row.get("expires_at") and row["expires_at"] <= now_iso()):
        message = f"This approval expired at {row.get('expires_at')}."
    elif row.get("close_reason") == "gateway_removed":
        message = "This approval is closed: its gateway was disabled or removed."
    else:
        message = "This approval is closed: the gateway no longer lists it."
    return Conflict(message, code="ALREADY_RESOLVED", extra={"approval": to_json(row)})


def parse_decision(value: object) -> str:
    if value not in DECISIONS:
        raise InvalidInput(f"decision: must be one of {', '.join(DECISIONS)}", field="decision")
    return value  # type: ignore[return-value]


async def queue(db: Database, recent_limit: int, gateway_id: str | None = None) -> tuple[list[dict], list[dict]]:
    """(pending, most recently closed) approvals of every gateway, or of one."""
    now = now_iso()
    if gateway_id is None:
        return (await db.all("approvals.pending", now=now),
                await db.all("approvals.recent", limit=recent_limit))
    return (await db.all("approvals.pending_at", now=now, gateway_id=gateway_id),
            await db.all("approvals.recent_at", limit=recent_limit, gateway_id=gateway_id))


async def locate(db: Database, gateway_id: object, approval_id: str) -> dict:
    """An approval by (gateway, id); the gateway may be left out while only one gateway has this id."""
    if gateway_id not in (None, ""):
        row = await db.one("approvals.get", gateway_id=gateway_id, id=approval_id) \
            if isinstance(gateway_id, str) else None
        if row is None:
            raise NotFound("No approval with this id on this gateway.", code="NOT_FOUND")
        return row
    rows = await db.all("approvals.find", id=approval_id)
    if not rows:
        raise NotFound("No approval with this id.", code="NOT_FOUND")
    if len(rows) > 1:
        raise InvalidInput("gatewayId: required, approvals with this id exist on gateways "
                           f"{', '.join(row['gateway_id'] for row in rows)}", field="gatewayId")
    return rows[0]


async def resolve(call: Call, gateway_id: object, approval_id: str, decision: object) -> dict:
    """Decide an approval at its own gateway."""
    db, principal, actor = call.db, call.principal, call.actor
    decision = parse_decision(decision)
    row = await locate(db, gateway_id, approval_id)
    gateway_id = row["gateway_id"]
    await _require_resolve(db, principal, actor, row)
    now = now_iso()
    being_decided = row.get("decided_at") is not None and row["decided_at"] >= stale_before()
    if row["status"] != "pending" or being_decided or (row.get("expires_at") and row["expires_at"] <= now):
        raise _conflict(row)
    allowed = decisions_of(row)
    if decision not in allowed:
        raise InvalidInput(f"decision: this request only allows {', '.join(allowed) or 'no decision'}",
                           field="decision")
    connection = call.gateways.get(gateway_id)
    if connection is None or connection.client is None:
        raise GatewayUnreachable("This approval's gateway is disabled or cannot connect; " + STAYS_PENDING + ".",
                                 code="GATEWAY_UNAVAILABLE")
    gateway = connection.client
    answers.require_connected(gateway, STAYS_PENDING)

    claimed = await db.changed("approvals.claim", gateway_id=gateway_id, id=approval_id, decision=decision,
                               user_id=actor.user_id, token_id=actor.token_id, label=actor.label, now=now,
                               stale_before=stale_before())
    if not claimed:
        raise _conflict(await db.one("approvals.get", gateway_id=gateway_id, id=approval_id) or row)
    try:
        confirmed = await send_claimed(db, gateway, row, decision, now, actor, "approval.resolved")
    except GatewayError as error:
        call.services.approvals.schedule_resync(gateway_id)  # it may have decided anyway, or dropped it
        raise answers.failure(error, STAYS_PENDING, "refused the decision") from None
    if not confirmed:  # the claim went stale and someone else took over meanwhile
        raise _conflict(await db.one("approvals.get", gateway_id=gateway_id, id=approval_id) or row)
    await publish(db, call.hub, "approval.resolved", gateway_id, approval_id, actor)
    return {"success": True, "id": approval_id, "gatewayId": gateway_id, "decision": decision}
