"""Posting to and reading the activity feed (the original's /api/activity, persisted instead of in memory).

An event is `{id, timestamp, type, severity, agent?, from?, to?, message?, details?, project?, model?,
sessionKey?, postedBy}`. Members and member-or-better tokens post; the server sets the id, the time and who
posted it, audits the post in the same transaction and publishes it live as `activity`.
"""

from __future__ import annotations

import json

from .. import audit
from ..clock import new_id, now_iso
from ..db import Database
from ..errors import InvalidInput
from ..services import Call

TYPES = ("message", "status", "file", "approval", "task", "spawn", "complete", "error", "project", "system")
SEVERITIES = ("info", "warning", "error", "success")
# body field → (column, most characters)
TEXT_FIELDS = {"agent": ("agent", 200), "from": ("from_name", 200), "to": ("to_name", 200),
               "message": ("message", 5000), "project": ("project", 200), "model": ("model", 200),
               "sessionKey": ("session_key", 200)}
FIELDS = frozenset({"type", "severity", "details", *TEXT_FIELDS})
SERVER_FIELDS = ("id", "timestamp")  # the original's clients may send them; the server sets both
MAX_DETAILS = 10_000  # characters of details as JSON
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
LIVE_SIZE = 4000  # characters of a live event's JSON; PostgreSQL NOTIFY carries at most 8000 bytes
LIVE_MESSAGE = 300


def _choice(body: dict, field: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = body.get(field, default)
    if value not in choices:
        raise InvalidInput(f"{field}: {'required, ' if default is None else ''}one of {', '.join(choices)}",
                           field=field)
    return value


def validate(body: dict) -> dict:
    """The columns of a posted event, or a 400 naming the field."""
    for field in SERVER_FIELDS:
        if field in body:
            raise InvalidInput(f"{field}: set by the server; leave it out", field=field)
    row = {"type": _choice(body, "type", TYPES), "severity": _choice(body, "severity", SEVERITIES, "info")}
    for field, (column, limit) in TEXT_FIELDS.items():
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{field}: a string", field=field)
        if value is not None and len(value) > limit:
            raise InvalidInput(f"{field}: at most {limit} characters", field=field)
        row[column] = (value.strip() or None) if value is not None else None
    details = body.get("details")
    row["details"] = None if details is None else json.dumps(details, sort_keys=True)
    if row["details"] is not None and len(row["details"]) > MAX_DETAILS:
        raise InvalidInput(f"details: at most {MAX_DETAILS} characters as JSON", field="details")
    return row


def to_json(row: dict) -> dict:
    details = row.get("details")
    return {
        "id": row["id"], "timestamp": row["created_at"], "type": row["type"], "severity": row["severity"],
        "agent": row["agent"], "from": row["from_name"], "to": row["to_name"], "message": row["message"],
        "details": json.loads(details) if isinstance(details, str) else details, "project": row["project"],
        "model": row["model"], "sessionKey": row["session_key"],
        "postedBy": {"label": row["posted_by_label"], "userId": row["posted_by"], "tokenId": row["posted_by_token"]},
    }


def describe(event: dict) -> str:
    """One line for the Overview, e.g. "dev-agent: deployed to staging"."""
    who = event["agent"] or event["from_name"] or event["posted_by_label"]
    text = event["message"] or f"{event['type']} event"
    return f"{who}: {text}"


def live(event: dict) -> dict:
    """The event as broadcast: a large one without its details and with its message cut short, marked
    `truncated` (GET /api/activity has it whole)."""
    if len(json.dumps(event)) <= LIVE_SIZE:
        return event
    message = event["message"]
    return {**event, "details": None, "message": message[:LIVE_MESSAGE] if message else message, "truncated": True}


async def post(call: Call, body: dict) -> dict:
    """Store, audit and publish an event (the caller has checked the role: members and up)."""
    db, principal, actor = call.db, call.principal, call.actor
    row = validate(body)
    event_id = new_id()
    async with db.transaction():
        stored = await db.one("activity.insert", id=event_id, posted_by=principal.user_id,
                              posted_by_token=principal.token_id, posted_by_label=actor.label,
                              created_at=now_iso(), **row)
        await audit.record(db, actor, "activity.posted", "activity", event_id,
                           {"type": row["type"], "severity": row["severity"], "message": (row["message"] or "")[:200]})
    event = to_json(stored)
    await call.hub.publish("activity", {**live(event), "actor": actor.label, "actorId": principal.id})
    return event


async def page(db: Database, limit: int, offset: int) -> dict:
    rows = await db.all("activity.page", limit=limit, offset=offset)
    return {"events": [to_json(row) for row in rows], "total": await db.value("activity.count"),
            "limit": limit, "offset": offset}


async def recent(db: Database, limit: int) -> list[dict]:
    return await db.all("activity.page", limit=limit, offset=0)
