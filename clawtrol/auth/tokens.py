"""API tokens for agents and scripts: shown once, stored as a SHA-256 hash with a visible prefix."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from ..audit import Actor, record
from ..clock import iso, new_id, now_iso, utcnow
from ..db import Database
from ..errors import Conflict, InvalidInput, NotFound
from .principal import ROLES

if TYPE_CHECKING:
    from ..services import Call

TOKEN_PREFIX = "mct_"
PREFIX_LENGTH = 12  # "mct_" + 8 characters, enough to recognise a token in a list
MAX_NAME_LENGTH = 100


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def to_json(token: dict) -> dict:
    """A token as the API shows it (never its hash; the raw value only once, at creation)."""
    return {
        "id": token["id"], "name": token["name"], "prefix": token["prefix"], "role": token["role"],
        "createdAt": token["created_at"], "createdBy": token["created_by_login"],
        "expiresAt": token["expires_at"], "lastUsedAt": token["last_used_at"], "revokedAt": token["revoked_at"],
    }


async def list_all(db: Database) -> list[dict]:
    return await db.all("tokens.list")


def validate(name: object, role: object, expires_in_days: object) -> tuple[str, str, int | None]:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name: required, a short label such as 'ci-agent'", field="name")
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name: at most {MAX_NAME_LENGTH} characters", field="name")
    if role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}", field="role")
    if expires_in_days in (None, ""):
        return name.strip(), role, None
    try:
        days = int(expires_in_days)
    except (TypeError, ValueError):
        days = 0
    if isinstance(expires_in_days, bool) or not 1 <= days <= 3650:
        raise InvalidInput("expiresInDays: a whole number of days between 1 and 3650, or empty for no expiry",
                           field="expiresInDays")
    return name.strip(), role, days


async def create(db: Database, actor: Actor, name: str, role: str, expires_in_days: int | None) -> tuple[dict, str]:
    """Create a token; return (its row, the raw token to show once)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    expires_at = iso(utcnow() + timedelta(days=expires_in_days)) if expires_in_days else None
    async with db.transaction():
        await db.changed("tokens.insert", id=token_id, name=name, prefix=raw[:PREFIX_LENGTH],
                         token_hash=token_hash(raw), role=role, created_by=actor.user_id, now=now_iso(),
                         expires_at=expires_at)
        await record(db, actor, "token.created", "api_token", token_id,
                     {"name": name, "role": role, "prefix": raw[:PREFIX_LENGTH], "expiresAt": expires_at})
    return await db.one("tokens.get", id=token_id), raw


async def lookup(db: Database, raw: str) -> dict | None:
    """The usable token (not revoked, not expired) for a raw value, or None — a pure read (its use is
    recorded in the background: auth/activity.py)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    return await db.one("tokens.resolve", token_hash=token_hash(raw), now=now_iso())


async def revoke(call: Call, token_id: str) -> dict:
    db = call.db
    async with db.transaction():
        token = await db.one("tokens.get", id=token_id)
        if token is None:
            raise NotFound("Token not found")
        if not await db.changed("tokens.revoke", id=token_id, now=now_iso()):
            raise Conflict(f"Token '{token['name']}' is already revoked")
        await record(db, call.actor, "token.revoked", "api_token", token_id, {"name": token["name"]})
    return await db.one("tokens.get", id=token_id)
