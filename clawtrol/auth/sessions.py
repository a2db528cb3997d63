"""Server-side sign-in sessions. The browser's cookie carries a random id (signed by quart-auth); the
database keeps only its SHA-256, so deleting the row signs the browser out on its next request.

A session ends 7 days after sign-in, or earlier after SESSION_IDLE_HOURS (default 12) without a request:
idleness is read from last_seen_at, which auth/activity.py writes in the background about once a minute,
so it is exact to within that minute and a request costs no write.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from quart import current_app, has_app_context

from ..clock import iso_in, now_iso, parse_iso, utcnow
from ..db import Database, DatabaseUnavailable
from . import tokens

if TYPE_CHECKING:
    from ..live import Holder

log = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(days=7)
SESSION_IDLE = timedelta(hours=12)  # outside an app; in one, the app's SESSION_IDLE_HOURS


def idle_limit() -> timedelta:
    if has_app_context():
        return timedelta(hours=current_app.config["CLAWTROL"].session_idle_hours)
    return SESSION_IDLE


def _idle(row: dict) -> bool:
    return row["last_seen_at"] is not None and parse_iso(row["last_seen_at"]) <= utcnow() - idle_limit()


def session_key(raw_id: str) -> str:
    return hashlib.sha256(raw_id.encode()).hexdigest()


async def create(db: Database, user_id: str, ip: str | None, user_agent: str | None) -> str:
    raw_id = secrets.token_urlsafe(32)
    await db.changed("sessions.insert", id=session_key(raw_id), user_id=user_id, now=now_iso(),
                     expires_at=iso_in(SESSION_LIFETIME), ip=ip, user_agent=(user_agent or "")[:300] or None)
    return raw_id


async def lookup(db: Database, raw_id: str) -> dict | None:
    """The active user of a live session, or None (unknown, expired, idle too long, or the user is
    deactivated) — a pure read (the guard notes the activity for auth/activity.py; live sockets re-check
    with it)."""
    row = await db.one("sessions.resolve", id=session_key(raw_id), now=now_iso())
    return row if row is not None and row["active"] and not _idle(row) else None


async def end(db: Database, raw_id: str) -> str | None:
    """Delete a session; return its user id if it existed."""
    row = await db.one("sessions.delete", id=session_key(raw_id))
    return row["user_id"] if row else None


async def end_all_for_user(db: Database, user_id: str) -> int:
    return await db.changed("sessions.delete_for_user", user_id=user_id)


async def purge_expired(db: Database) -> int:
    return await db.changed("sessions.delete_expired", now=now_iso())


async def revocation(db: Database, holder: Holder, bearer: str | None, raw_session: str | None) -> str | None:
    """Why a live socket's credentials (its token, or its session) no longer hold — "expired" or
    "role_changed", a Hub close reason — or None. Reads only: a re-check writes no last-used/last-seen."""
    if holder.kind == "token":
        row = await tokens.lookup(db, bearer or "")
    elif raw_session:
        row = await lookup(db, raw_session)
    else:
        row = None
    if row is None or row["id"] != holder.id:
        return "expired"
    return "role_changed" if row["role"] != holder.role else None


async def recheck(db: Database, holder: Holder, bearer: str | None, raw_session: str | None) -> str | None:
    """As `revocation`, for the periodic re-check of an open socket: None (keep it, try again later) when
    the database cannot be reached."""
    try:
        return await revocation(db, holder, bearer, raw_session)
    except DatabaseUnavailable as exc:
        log.warning("live socket re-check failed: %s", exc)
        return None
