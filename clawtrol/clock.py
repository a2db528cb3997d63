"""Timestamps and ids in the one format stored everywhere: ISO-8601 UTC text with milliseconds and a Z,
as the original app wrote them, so text order equals time order on both databases."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "…T12:00:00.000+00:00" → "…T12:00:00.000Z"


def now_iso() -> str:
    return iso(utcnow())


def iso_in(delta: timedelta) -> str:
    return iso(utcnow() + delta)


def from_epoch_ms(value: object) -> str | None:
    """Milliseconds since the epoch (the OpenClaw gateway's times) as a stored ISO time; None if not a time."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return iso(datetime.fromtimestamp(value / 1000, timezone.utc))
    except (OverflowError, OSError, ValueError):
        return None


def parse_iso(value: str) -> datetime:
    """Parse a stored or client-sent ISO-8601 time; naive values are taken as UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_last_micros = 0
_id_lock = threading.Lock()


def new_id() -> str:
    """A UUIDv7: time-ordered, so rows created in the same millisecond still sort in creation order
    (ids break ties in every `ORDER BY created_at, id`). Strictly increasing within a process."""
    global _last_micros
    with _id_lock:
        micros = max(time.time_ns() // 1000, _last_micros + 1)
        _last_micros = micros
    millis, sub_millis = divmod(micros, 1000)
    value = ((millis & (2**48 - 1)) << 80) | (0x7 << 76) | (sub_millis << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))
