"""Timestamps and ids in the one format stored everywhere: ISO-8601 UTC text with milliseconds and a Z,
as the original app wrote them, so text order equals time order on both databases."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(utcnow())


def iso_in(delta: timedelta) -> str:
    return iso(utcnow() + delta)


def parse_iso(value: str) -> datetime:
    """Parse a stored or client-sent ISO-8601 time; naive values are taken as UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())
