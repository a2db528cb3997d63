"""Changing webhooks, each change with its audit entry in one transaction (never the secret), and the
deliveries an admin asks for: a ping, "send again"."""

from __future__ import annotations

import json

from .. import audit
from ..audit import Actor
from ..clock import new_id, now_iso
from ..db import Database
from ..errors import Conflict, InvalidInput, NotFound
from . import outbox
from .model import validate


def _described(row: dict) -> dict:
    return {"url": row["url"], "events": json.loads(row["events"]), "format": row["format"],
            "enabled": bool(row["enabled"])}


async def list_all(db: Database) -> list[dict]:
    """Every webhook, oldest first."""
    return await db.all("webhooks.list")


async def get(db: Database, webhook_id: str) -> dict:
    row = await db.one("webhooks.get", id=webhook_id)
    if row is None:
        raise NotFound("No webhook with this id.", code="NOT_FOUND")
    return row


async def deliveries(db: Database, webhook_id: str, limit: int) -> list[dict]:
    """One webhook's latest deliveries, newest first (404 when there is no such webhook)."""
    await get(db, webhook_id)
    return await db.all("webhooks.deliveries", webhook_id=webhook_id, limit=limit)


async def recent_deliveries(db: Database, limit: int) -> list[dict]:
    """The latest deliveries of every webhook, newest first, each with its webhook's URL (the admin page)."""
    return await db.all("webhooks.recent_deliveries", limit=limit)


async def create(db: Database, actor: Actor, body: dict) -> dict:
    values = validate(body)
    async with db.transaction():
        row = await db.one("webhooks.insert", id=new_id(), **values, user_id=actor.user_id,
                           token_id=actor.token_id, label=actor.label, now=now_iso())
        await audit.record(db, actor, "webhook.created", "webhook", row["id"], _described(row))
    return row


async def update(db: Database, actor: Actor, webhook_id: str, body: dict) -> dict:
    if not body:
        raise InvalidInput("No updates provided: send any of url, events, format, enabled, secret, rotateSecret")
    async with db.transaction():
        before = await db.one("webhooks.lock", id=webhook_id)
        if before is None:
            raise NotFound("No webhook with this id.", code="NOT_FOUND")
        row = await db.one("webhooks.update", id=webhook_id, **validate(body, before), now=now_iso())
        changed = {key: value for key, value in _described(row).items() if _described(before)[key] != value}
        if row["secret"] != before["secret"]:
            changed["secret"] = "replaced"
        await audit.record(db, actor, "webhook.updated", "webhook", webhook_id, {"url": row["url"], "changes": changed})
    return row


async def delete(db: Database, actor: Actor, webhook_id: str) -> None:
    async with db.transaction():
        row = await db.one("webhooks.delete", id=webhook_id)
        if row is None:
            raise NotFound("No webhook with this id.", code="NOT_FOUND")
        await audit.record(db, actor, "webhook.deleted", "webhook", webhook_id, {"url": row["url"]})


async def test(db: Database, actor: Actor, webhook_id: str) -> dict:
    """Queue a `ping` for this webhook (whether or not it is enabled: it is sent once it is)."""
    async with db.transaction():
        webhook = await db.one("webhooks.lock", id=webhook_id)
        if webhook is None:
            raise NotFound("No webhook with this id.", code="NOT_FOUND")
        delivery = await outbox.ping(db, webhook, actor)
        await audit.record(db, actor, "webhook.tested", "webhook", webhook_id,
                           {"url": webhook["url"], "deliveryId": delivery["id"]})
    return delivery


async def redeliver(db: Database, actor: Actor, webhook_id: str, delivery_id: str) -> dict:
    async with db.transaction():
        delivery = await db.one("webhooks.redeliver", id=delivery_id, webhook_id=webhook_id, now=now_iso())
        if delivery is None:
            current = await db.one("webhooks.get_delivery", id=delivery_id)
            if current is None or current["webhook_id"] != webhook_id:
                raise NotFound("No delivery with this id for this webhook.", code="NOT_FOUND")
            raise Conflict("This delivery is still pending: it is sent (or retried) on its own.",
                           code="PENDING")
        await audit.record(db, actor, "webhook.redelivered", "webhook", webhook_id,
                           {"deliveryId": delivery_id, "event": delivery["event"]})
    outbox.wake()
    return delivery
