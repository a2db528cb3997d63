"""What deciding an approval takes, whoever decides (a person: approvals/service.py; a rule:
approvals/sync.py): the claim's staleness, sending a claimed decision to the gateway and confirming it with its
audit entry, and the live event with the new pending count."""

from __future__ import annotations

from datetime import timedelta

from .. import audit
from ..audit import Actor
from ..clock import iso, now_iso, utcnow
from ..db import Database
from ..gateway.client import GatewayClient, GatewayError
from ..live import Hub
from .model import to_json

RESOLVE_TIMEOUT = 15.0
STAYS_PENDING = "the approval stays pending"
CLAIM_STALE_AFTER = timedelta(seconds=60)  # a claim this old belongs to a process that died mid-decision


def stale_before() -> str:
    return iso(utcnow() - CLAIM_STALE_AFTER)


async def pending_count(db: Database) -> int:
    return await db.value("approvals.pending_count", now=now_iso()) or 0


async def publish(db: Database, hub: Hub, type_: str, gateway_id: str, approval_id: str, actor: Actor) -> dict | None:
    """Send approval.<what> to live clients with the approval as it is now and the new pending count."""
    row = await db.one("approvals.get", gateway_id=gateway_id, id=approval_id)
    if row is None:
        return None
    approval = to_json(row)
    await hub.publish(type_, {"approval": approval, "id": approval_id, "gatewayId": gateway_id,
                              "decision": approval["decision"],
                              "resolvedBy": approval["resolvedBy"], "pendingCount": await pending_count(db),
                              "actor": actor.label, "actorId": actor.user_id or actor.token_id})
    return approval


async def send_claimed(db: Database, gateway: GatewayClient, row: dict, decision: str, claimed_at: str,
                       actor: Actor, action: str, details: dict | None = None) -> bool:
    """Send a claimed decision to the gateway, then confirm it with its audit entry (`action`) in one
    transaction. If the gateway does not take it the claim is released and the GatewayError raised (the
    caller then asks the gateway what it still has: ApprovalSync.schedule_resync). False when the claim had
    gone stale and someone else took over meanwhile."""
    gateway_id, approval_id = row["gateway_id"], row["id"]
    try:
        await gateway.request("exec.approval.resolve", {"id": approval_id, "decision": decision},
                              timeout=RESOLVE_TIMEOUT)
    except GatewayError:
        await db.changed("approvals.release", gateway_id=gateway_id, id=approval_id, claimed_at=claimed_at,
                         now=now_iso())
        raise
    async with db.transaction():
        confirmed = await db.changed("approvals.confirm", gateway_id=gateway_id, id=approval_id,
                                     claimed_at=claimed_at, now=now_iso())
        if confirmed:
            await audit.record(db, actor, action, "approval", approval_id, {
                "gatewayId": gateway_id, "decision": decision, "command": row["command"][:500],
                "agentId": row.get("agent_id"), "sessionKey": row.get("session_key"),
                "taskId": row.get("linked_task_id"), **(details or {})})
    return bool(confirmed)
