"""GitHub sign-ins in flight. The OAuth `state` and the PKCE verifier live server-side (table oauth_states),
keyed by the state's SHA-256: usable once (a conditional DELETE ... RETURNING, so also across processes),
for at most 10 minutes, and only from the browser that started the sign-in (a random nonce kept in its
session cookie must match)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from ..clock import iso, utcnow
from ..db import Database

LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class PendingSignIn:
    verifier: str
    next_path: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_browser_nonce() -> str:
    return secrets.token_urlsafe(32)


async def remember(db: Database, state: str, verifier: str, next_path: str, browser_nonce: str) -> None:
    """Keep a sign-in that is about to go to GitHub (and drop the ones that expired)."""
    now = utcnow()
    async with db.transaction():
        await db.changed("oauth_states.delete_expired", now=iso(now))
        await db.changed("oauth_states.insert", id=_digest(state), browser=_digest(browser_nonce),
                         verifier=verifier, next_path=next_path, now=iso(now), expires_at=iso(now + LIFETIME))


async def consume(db: Database, state: str | None, browser_nonce: str | None) -> PendingSignIn | None:
    """The sign-in this callback belongs to, removed so it cannot be used again; None when the state is
    unknown, already used, expired, or was started in another browser."""
    if not state or not browser_nonce:
        return None
    async with db.transaction():
        rows = await db.all("oauth_states.consume", id=_digest(state), browser=_digest(browser_nonce),
                            now=iso(utcnow()))
    return PendingSignIn(rows[0]["verifier"], rows[0]["next_path"]) if rows else None
