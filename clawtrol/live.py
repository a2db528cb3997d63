"""Live events: an in-process hub that /ws clients subscribe to, fanned out across app processes with
PostgreSQL LISTEN/NOTIFY.

Events are the original's envelope `{type, payload, timestamp}`. On SQLite (one process) `publish`
delivers directly; on PostgreSQL it NOTIFYs, and every process — this one included — delivers what it
hears on its LISTEN connection, so all clients see the same events in the same order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import asyncpg

from .clock import now_iso
from .db import Database

log = logging.getLogger(__name__)

CHANNEL = "clawtrol_events"
NOTIFY_LIMIT = 7500  # PostgreSQL refuses NOTIFY payloads over 8000 bytes
QUEUE_SIZE = 256
LONG_FIELDS = ("description", "handoffNotes")


def shrink(event: dict) -> dict:
    """Fit an event under the NOTIFY limit: drop the previous task state, truncate long text fields."""
    payload = dict(event["payload"])
    payload.pop("oldTask", None)
    if isinstance(payload.get("task"), dict):
        task = dict(payload["task"])
        for field in LONG_FIELDS:
            if isinstance(task.get(field), str) and len(task[field]) > 500:
                task[field] = task[field][:500]
                task["truncated"] = True
        payload["task"] = task
    return {**event, "payload": payload}


class Hub:
    def __init__(self, db: Database, database_url: str):
        self._db = db
        self._url = database_url
        self._subscribers: set[asyncio.Queue] = set()
        self._listener: asyncio.Task | None = None
        self.fanout = not db.is_sqlite
        self.listening = asyncio.Event()

    # --- subscribers -------------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def deliver(self, event: dict) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("live client too slow; dropped an event", extra={"type": event.get("type")})

    # --- publishing --------------------------------------------------------------------------------

    async def publish(self, type_: str, payload: dict) -> None:
        """Send an event to every live client. Call it after the change has committed."""
        event = {"type": type_, "payload": payload, "timestamp": now_iso()}
        if not self.fanout:
            self.deliver(event)
            return
        text = json.dumps(event, default=str)
        if len(text.encode()) > NOTIFY_LIMIT:
            text = json.dumps(shrink(event), default=str)
        try:
            await self._db.value("events.notify", channel=CHANNEL, payload=text)
        except Exception as exc:  # the change itself is committed; live delivery is best effort
            log.warning("could not publish live event %s: %s", type_, exc)

    # --- the LISTEN side (PostgreSQL) --------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (PostgreSQL); wait briefly so events published right after start arrive."""
        if self.fanout and self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever(), name="clawtrol-live-listener")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.listening.wait(), 5)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        try:
            self.deliver(json.loads(payload))
        except ValueError:
            log.warning("ignored a malformed live event")

    async def _listen_forever(self) -> None:
        delay = 1.0
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._url, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                delay = 1.0
                log.info("listening for live events")
                await lost.wait()
                log.warning("live event connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live event listener cannot connect (%s); retrying in %.0f s", exc, delay)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def current_hub() -> Hub:
    from quart import current_app

    return current_app.extensions["hub"]
