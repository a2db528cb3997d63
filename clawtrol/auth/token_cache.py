"""Resolved API tokens, remembered for a second so an agent's stream of calls costs one lookup a second.

Revocation stays immediate: the live hub clears the whole cache whenever it applies a revocation (token
revoked, user deactivated or deleted, role changed, sign-out) — in this process at once, in the others when
the control message reaches them over NOTIFY — and when its listener reconnects (messages may have been
missed). A change made straight in the database is seen within TTL. A cached token is checked against its
expiry on every use, and a lookup that raced with a revocation is not stored (generation check). Keys are the
token's hash; failed lookups are never cached (guessing is rate-limited in the guard).
"""

from __future__ import annotations

import time

from ..db import Database
from . import tokens

TTL = 1.0  # seconds
MAX_ENTRIES = 1024


class TokenCache:
    def __init__(self, ttl: float = TTL):
        self.ttl = ttl
        self._rows: dict[str, tuple[dict, float]] = {}
        self._generation = 0

    def clear(self) -> None:
        self._generation += 1
        self._rows.clear()

    async def lookup(self, db: Database, raw: str) -> dict | None:
        """As tokens.lookup, answered from memory when the same token was resolved less than TTL ago."""
        key = tokens.token_hash(raw)
        cached = self._rows.get(key)
        if cached is not None and cached[1] > time.monotonic() and not _expired(cached[0]):
            return cached[0]
        generation = self._generation
        row = await tokens.lookup(db, raw)
        if row is None or generation != self._generation:
            self._rows.pop(key, None)
            return row
        if len(self._rows) >= MAX_ENTRIES:
            self._rows.clear()
        self._rows[key] = (row, time.monotonic() + self.ttl)
        return row


def _expired(row: dict) -> bool:
    """The same test as the `tokens.resolve` query, on the same clock."""
    return row["expires_at"] is not None and row["expires_at"] <= tokens.now_iso()
