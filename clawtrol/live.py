"""Live events: an in-process hub that /ws clients subscribe to, fanned out across app processes with
PostgreSQL LISTEN/NOTIFY.

Events are the original's envelope `{type, payload, timestamp}`. On SQLite (one process) `publish`
delivers directly; on PostgreSQL it NOTIFYs, and every process — this one included — delivers what it
hears on its LISTEN connection, so all clients see the same events in the same order.

Revocation rides the same channel. Each /ws socket is registered with the principal it holds (a
`Holder`); `revoke_access()` — called after a token revoke, sign-out, deactivation, deletion or role
change has committed — sends a control message that every process applies to its own sockets: the
matching ones stop receiving events at once and their handler closes them (4401, or 4403 for a role
change). Control messages are never forwarded to clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Callable

import asyncpg

from . import background
from .auth.principal import UserOrToken
from .clock import now_iso
from .db import Database
from .services import current_hub

log = logging.getLogger(__name__)

CHANNEL = "clawtrol_events"
NOTIFY_LIMIT = 7500  # PostgreSQL refuses NOTIFY payloads over 8000 bytes
QUEUE_SIZE = 256
SEND_BATCH = 100  # live events per NOTIFY round trip, at most
LONG_FIELDS = ("description", "handoffNotes")

CONTROL_TYPE = "principal.revoked"
# reason → (WebSocket close code, close reason). 4401: the credentials are gone; 4403: still valid but the
# role changed — the client may reconnect and gets the new role.
CLOSE_REASONS = {
    "token_revoked": (4401, "token revoked"),
    "signed_out": (4401, "session ended"),
    "deactivated": (4401, "account deactivated"),
    "deleted": (4401, "account deleted"),
    "expired": (4401, "credentials revoked or expired"),
    "role_changed": (4403, "role changed; reconnect"),
}


@dataclass(frozen=True)
class Holder(UserOrToken):
    """Who holds a live socket: a user (with the session key of their browser) or an API token."""

    kind: str  # "user" | "token"
    id: str
    role: str
    session_key: str | None = None  # SHA-256 of the raw cookie session id, as stored in auth_sessions


@dataclass(eq=False)
class Subscription:
    """One socket's registration: its event queue, its holder, and whether (and why) it was revoked."""

    holder: Holder
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE))
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # revoked, or a re-check was requested
    close_code: int | None = None
    close_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.close_code is not None

    def revoke(self, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = CLOSE_REASONS[reason]
        self.wake.set()


def matches(holder: Holder, control: dict) -> str | None:
    """The reason a control message revokes this holder's socket, or None."""
    reason = control.get("reason")
    if reason not in CLOSE_REASONS:
        return None
    if control.get("tokenId") and holder.token_id == control["tokenId"]:
        return reason
    if control.get("sessionKey") and holder.session_key == control["sessionKey"]:
        return reason
    if control.get("userId") and holder.user_id == control["userId"]:
        if reason == "role_changed" and control.get("role") == holder.role:
            return None  # already holds the new role (e.g. it reconnected before this arrived)
        return reason
    return None


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
        self._sockets: set[Subscription] = set()
        self._listener: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self.fanout = not db.is_sqlite
        self.listening = asyncio.Event()
        self._on_revocation: list[Callable[[], None]] = []
        self._watchers: dict[str, list[Callable[[dict], None]]] = {}

    def on_revocation(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a revocation is applied here, or may have been missed (listener
        reconnected): for caches of who may do what (auth/token_cache.py)."""
        self._on_revocation.append(callback)

    def on_event(self, type_: str, callback: Callable[[dict], None]) -> None:
        """Also call `callback(event)` in this process for every `type_` event, from any process (e.g. a
        gateway record changed: clawtrol/gateways/registry.py). It must not block."""
        self._watchers.setdefault(type_, []).append(callback)

    def _revocations_changed(self) -> None:
        for callback in self._on_revocation:
            callback()

    # --- subscribers -------------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    def attach(self, holder: Holder) -> Subscription:
        """Register a client socket held by `holder`; it receives events until detached or revoked."""
        subscription = Subscription(holder)
        self._sockets.add(subscription)
        self._subscribers.add(subscription.queue)
        return subscription

    def detach(self, subscription: Subscription) -> None:
        self._sockets.discard(subscription)
        self._subscribers.discard(subscription.queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def request_recheck(self) -> None:
        """Ask every socket to re-check its principal now (e.g. after control messages may have been missed)."""
        self._revocations_changed()
        for subscription in list(self._sockets):
            subscription.wake.set()

    def _apply_control(self, control: dict) -> None:
        self._revocations_changed()
        for subscription in list(self._sockets):
            reason = matches(subscription.holder, control)
            if reason is not None:
                self._subscribers.discard(subscription.queue)  # no further events, even before it closes
                subscription.revoke(reason)

    def deliver(self, event: dict) -> None:
        if event.get("type") == CONTROL_TYPE:
            if event.get("control") is True and isinstance(event.get("payload"), dict):
                self._apply_control(event["payload"])
            return  # control messages never reach clients
        for callback in self._watchers.get(event.get("type"), ()):
            callback(event)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("live client too slow; dropped an event", extra={"type": event.get("type")})

    # --- publishing --------------------------------------------------------------------------------

    async def publish(self, type_: str, payload: dict) -> None:
        """Send an event to every live client. Call it after the change has committed. It never waits for the
        database: on PostgreSQL the NOTIFY is queued for a background sender."""
        if type_ == CONTROL_TYPE:
            raise ValueError(f"{CONTROL_TYPE} is a control message; use revoke()")
        event = {"type": type_, "payload": payload, "timestamp": now_iso()}
        if not self.fanout:
            self.deliver(event)
            return
        text = json.dumps(event, default=str)
        if len(text.encode()) > NOTIFY_LIMIT:
            text = json.dumps(shrink(event), default=str)
        self._outbox.put_nowait(text)  # sent by _send_forever, in order, without holding up the response

    async def _send_forever(self) -> None:
        """NOTIFY the events publish() queued, in the order they were published: whatever has queued up
        while the previous round trip ran goes out together in the next one."""
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < SEND_BATCH:
                batch.append(self._outbox.get_nowait())
            try:
                await self._db.value("events.notify_many", channel=CHANNEL, payloads=batch)
            except Exception as exc:  # the change itself is committed; live delivery is best effort
                log.warning("could not publish %d live event(s): %s", len(batch), exc)
            finally:
                for _ in batch:
                    self._outbox.task_done()

    async def revoke(self, reason: str, *, user_id: str | None = None, token_id: str | None = None,
                     session_key: str | None = None, role: str | None = None) -> None:
        """Close the live sockets of a principal, in every process. Call it after the change has committed.

        Applied here at once, then (PostgreSQL) NOTIFYed so the other processes apply it too; applying it
        twice is harmless. A process that misses it (listener down) re-checks its sockets on reconnect."""
        if reason not in CLOSE_REASONS:
            raise ValueError(f"unknown revocation reason {reason!r}")
        control = {key: value for key, value in (("reason", reason), ("userId", user_id), ("tokenId", token_id),
                                                  ("sessionKey", session_key), ("role", role)) if value}
        self._apply_control(control)
        if not self.fanout:
            return
        message = {"type": CONTROL_TYPE, "control": True, "payload": control, "timestamp": now_iso()}
        try:
            await self._db.value("events.notify", channel=CHANNEL, payload=json.dumps(message))
        except Exception as exc:  # committed already; the periodic re-check closes the others' sockets
            log.warning("could not publish a revocation (%s): %s", reason, exc)

    # --- the LISTEN side (PostgreSQL) --------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (PostgreSQL); wait briefly so events published right after start arrive."""
        if self.fanout and self._listener is None:
            self._sender = asyncio.create_task(self._send_forever(), name="clawtrol-live-sender")
            self._listener = asyncio.create_task(self._listen_forever(), name="clawtrol-live-listener")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.listening.wait(), 5)

    async def stop(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._outbox.join(), 2)  # what was published before the stop goes out
        await background.stop(self._sender)
        await background.stop(self._listener)
        self._sender = self._listener = None

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
                self.request_recheck()  # revocations sent while we were not listening were missed
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


async def revoke_access(reason: str, *, user_id: str | None = None, token_id: str | None = None,
                        session_key: str | None = None, role: str | None = None) -> None:
    """The one place that cuts live sockets after a revoking change commits (see Hub.revoke for reasons)."""
    await current_hub().revoke(reason, user_id=user_id, token_id=token_id, session_key=session_key, role=role)


async def user_changed(before: dict, after: dict) -> None:
    """After an admin changed a user (role, active): close the sockets that no longer match."""
    if before["active"] and not after["active"]:
        await revoke_access("deactivated", user_id=after["id"])
    elif before["role"] != after["role"]:
        await revoke_access("role_changed", user_id=after["id"], role=after["role"])
