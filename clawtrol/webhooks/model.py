"""Webhooks as admins manage them: validation (4xx naming the field) and the JSON shapes. The secret is
returned once, when it is made; afterwards only its last characters are shown."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput
from .events import VALID_EVENTS

FORMATS = ("json", "slack")
MAX_URL = 2000
SECRET_BYTES = 32
MIN_SECRET = 16
MAX_SECRET = 200
FIELDS = frozenset({"url", "events", "format", "enabled", "secret"})


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(SECRET_BYTES)


def check_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("url: required (an http:// or https:// address)", field="url")
    url = value.strip()
    if len(url) > MAX_URL:
        raise InvalidInput(f"url: at most {MAX_URL} characters", field="url")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise InvalidInput("url: not a valid address", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("url: must start with http:// or https://", field="url")
    if not parts.hostname:
        raise InvalidInput("url: has no host", field="url")
    if parts.username or parts.password:
        raise InvalidInput("url: must not carry a user name or password (use the signature to authenticate)",
                           field="url")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput("url: must not contain spaces or control characters", field="url")
    return url


def check_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(event, str) for event in value):
        raise InvalidInput(f"events: a non-empty list of event names ({', '.join(VALID_EVENTS)})", field="events",
                           extra={"validEvents": list(VALID_EVENTS)})
    unknown = sorted(set(value) - set(VALID_EVENTS))
    if unknown:
        raise InvalidInput(f"events: unknown event(s) {', '.join(unknown)}; valid: {', '.join(VALID_EVENTS)}",
                           field="events", extra={"validEvents": list(VALID_EVENTS)})
    return [event for event in VALID_EVENTS if event in value]  # a stable order, no duplicates


def check_format(value: Any) -> str:
    if value not in FORMATS:
        raise InvalidInput(f"format: must be one of {', '.join(FORMATS)}", field="format")
    return value


def check_secret(value: Any) -> str:
    if not isinstance(value, str) or not MIN_SECRET <= len(value) <= MAX_SECRET or not value.isprintable():
        raise InvalidInput(f"secret: {MIN_SECRET} to {MAX_SECRET} printable characters (or leave it out: one is "
                           f"generated)", field="secret")
    return value


def validate(body: dict, current: dict | None = None) -> dict:
    """Column values for a new webhook (`current` None) or one after a partial change."""
    unknown = sorted(set(body) - FIELDS - {"rotateSecret"})
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(FIELDS))}",
                           field=unknown[0])
    values = {"url": current["url"], "events": current["events"], "format": current["format"],
              "secret": current["secret"], "enabled": bool(current["enabled"])} if current else {
        "url": None, "events": None, "format": "json", "secret": None, "enabled": True}
    if current is None or "url" in body:
        values["url"] = check_url(body.get("url"))
    if current is None or "events" in body:
        values["events"] = json.dumps(check_events(body.get("events")))
    if "format" in body:
        values["format"] = check_format(body["format"])
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise InvalidInput("enabled: must be true or false", field="enabled")
        values["enabled"] = body["enabled"]
    if "rotateSecret" in body and not isinstance(body["rotateSecret"], bool):
        raise InvalidInput("rotateSecret: must be true or false", field="rotateSecret")
    if "secret" in body:
        values["secret"] = check_secret(body["secret"])
    elif current is None or body.get("rotateSecret"):
        values["secret"] = new_secret()
    return values


def to_json(row: dict, *, secret: bool = False) -> dict:
    webhook = {"id": row["id"], "url": row["url"], "events": json.loads(row["events"]), "format": row["format"],
               "enabled": bool(row["enabled"]), "secretHint": "…" + row["secret"][-4:],
               "createdBy": row["created_by_label"], "createdAt": row["created_at"], "updatedAt": row["updated_at"]}
    if secret:
        webhook["secret"] = row["secret"]
    return webhook


def delivery_json(row: dict) -> dict:
    return {"id": row["id"], "webhookId": row["webhook_id"], "event": row["event"], "status": row["status"],
            "attempts": row["attempts"], "lastStatusCode": row["last_status_code"], "lastError": row["last_error"],
            "nextAttemptAt": row["next_attempt_at"] if row["status"] == "pending" else None,
            "lastAttemptAt": row["last_attempt_at"], "deliveredAt": row["delivered_at"],
            "createdAt": row["created_at"]}
