"""When API tokens and browser sessions were last used, written in the background.

A request only notes the time in memory; a background task writes what was noted once a minute (so at most
once a minute per token or session), in one transaction, and once more when the app stops. Reading through
the API therefore never writes to the database. A session's idle timeout (auth/sessions.py) reads the stored
time, which is at most one flush interval behind: negligible against hours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from .. import background
from ..clock import iso
from ..db import Database

log = logging.getLogger(__name__)

FLUSH_EVERY = 60.0  # seconds


class Activity:
    def __init__(self, db: Database, interval: float = FLUSH_EVERY):
        self._db = db
        self.interval = interval
        # noted as Unix times (cheap on every request), written as ISO times
        self._tokens: dict[str, float] = {}  # token id → last use
        self._sessions: dict[str, float] = {}  # auth_sessions.id (the hash) → last request
        self._task: asyncio.Task | None = None

    def token_used(self, token_id: str) -> None:
        self._tokens[token_id] = time.time()

    def session_seen(self, session_id: str) -> None:
        self._sessions[session_id] = time.time()

    @property
    def pending(self) -> int:
        return len(self._tokens) + len(self._sessions)

    async def flush(self) -> int:
        """Write what was noted since the last flush; return how many rows that touched."""
        tokens, self._tokens = self._tokens, {}
        sessions, self._sessions = self._sessions, {}
        if not tokens and not sessions:
            return 0
        written = 0
        try:
            async with self._db.transaction():
                for token_id, when in tokens.items():
                    written += await self._db.changed("tokens.touch", id=token_id, now=_iso(when),
                                                      stale_before=_iso(when))
                for session_id, when in sessions.items():
                    written += await self._db.changed("sessions.touch", id=session_id, now=_iso(when))
        except Exception:
            # keep them for the next flush (uses noted meanwhile are newer and win)
            self._tokens = {**tokens, **self._tokens}
            self._sessions = {**sessions, **self._sessions}
            raise
        return written

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception as exc:  # the database is down, say: the next interval tries again
                log.warning("could not record token and session activity: %s", exc)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="clawtrol-activity")

    async def stop(self) -> None:
        await background.stop(self._task)
        self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.warning("could not record token and session activity at shutdown: %s", exc)


def _iso(unix_time: float) -> str:
    return iso(datetime.fromtimestamp(unix_time, timezone.utc))
