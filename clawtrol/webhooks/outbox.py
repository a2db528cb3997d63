"""Webhook events into the outbox (`webhook_deliveries`), written in the transaction of the change.

`from_audit` watches every audit entry (clawtrol/audit.py `watch`, registered by the app): an entry that raises
events (webhooks/events.py) adds one delivery row per subscribed, enabled webhook, with a snapshot of what
changed (the task, the comment, the approval as they are in that transaction). With no webhook enabled it costs
nothing: the audit INSERT itself says how many there are. Senders in this process are woken; the other processes find the rows on their next poll.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from ..approvals.model import to_json as approval_json
from ..audit import Actor, Entry
from ..clock import new_id, now_iso
from ..db import Database
from ..tasks.comments import to_json as comment_json
from ..tasks.model import to_json as task_json
from . import events

log = logging.getLogger(__name__)

_wakers: set[Callable[[], None]] = set()


def on_enqueue(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` when a delivery is queued in this process (the sender's wake-up); returns the undo."""
    _wakers.add(callback)
    return lambda: _wakers.discard(callback)


def wake() -> None:
    for callback in list(_wakers):
        callback()


def subscribed_events(webhook: dict) -> list[str]:
    try:
        names = json.loads(webhook["events"])
    except (TypeError, ValueError):
        return []
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


async def from_audit(db: Database, entry: Entry) -> None:
    if entry.action not in events.ACTIONS or not entry.enabled_webhooks:
        return  # no event, or nobody to send it to (the audit INSERT counted the enabled webhooks)
    raised = events.raised_by(entry.action, entry.details)
    if raised:
        await emit(db, raised, entry.actor.label,
                   lambda: snapshot(db, entry.action, entry.entity_id, entry.details or {}))


async def emit(db: Database, raised: tuple[str, ...], actor_label: str,
               load_data: Callable[[], Awaitable[dict]]) -> int:
    """Queue `raised` events for every enabled webhook subscribed to them; returns how many rows."""
    targets = []
    for webhook in await db.all("webhooks.subscribers"):
        subscribed = subscribed_events(webhook)
        for event in raised:
            targets += [(webhook["id"], name) for name in events.names_for(subscribed, event)]
    if not targets:
        return 0
    data = await load_data()
    now = now_iso()
    for webhook_id, name in targets:
        await enqueue(db, webhook_id, name, {"event": name, "occurredAt": now, "actor": actor_label, "data": data},
                      now)
    return len(targets)


async def enqueue(db: Database, webhook_id: str, event: str, payload: dict, now: str | None = None) -> dict:
    now = now or now_iso()
    row = await db.one("webhooks.insert_delivery", id=new_id(), webhook_id=webhook_id, event=event,
                       payload=json.dumps(payload, default=str), now=now)
    wake()
    return row


async def ping(db: Database, webhook: dict, actor: Actor) -> dict:
    """The test event of POST /api/webhooks/:id/test, for this webhook only."""
    return await enqueue(db, webhook["id"], events.PING, {
        "event": events.PING, "occurredAt": now_iso(), "actor": actor.label,
        "data": {"webhookId": webhook["id"], "message": "A test delivery from Mission Clawtrol."}})


async def approval_left_to_a_person(db: Database, gateway_id: str, approval_id: str) -> None:
    """approval.requested for an approval a rule claimed but could not get decided (the gateway refused):
    it now waits for a person like any other."""
    await emit(db, ("approval.requested",), "OpenClaw gateway",
               lambda: snapshot(db, "approval.requested", approval_id, {"gatewayId": gateway_id}))


async def snapshot(db: Database, action: str, entity_id: str | None, details: dict[str, Any]) -> dict:
    """The `data` of an event: the thing that changed, in its API shape, as it is in this transaction."""
    if action.startswith("approval."):
        gateway_id = details.get("gatewayId") or "default"  # every approval entry names its gateway
        row = await db.one("approvals.get", gateway_id=gateway_id, id=entity_id)
        return {"approval": approval_json(row) if row else {"id": entity_id, "gatewayId": gateway_id}}
    if action == "comment.created":
        row = await db.one("comments.get", id=details.get("commentId"), task_id=entity_id)
        return {"task": {"id": entity_id, "title": details.get("title")},
                "comment": comment_json(row) if row else {"id": details.get("commentId")}}
    if action == "task.deleted":
        return {"task": {"id": entity_id, "title": details.get("title"), "status": details.get("status")}}
    row = await db.one("tasks.get", id=entity_id)
    data: dict[str, Any] = {"task": task_json(row) if row else {"id": entity_id, "title": details.get("title")}}
    if action in ("task.status_changed", "task.assigned"):
        data.update({"from": details.get("from"), "to": details.get("to")})
    return data
