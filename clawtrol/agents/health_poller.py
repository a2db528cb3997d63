"""Keeps the health tracker (health.py) current: polls agents.list and sessions.list at most every 30 s while
the gateway is connected (and soon after it connects), applies the gateway's chat/agent/session events as they
arrive, and announces each session that becomes stalled.

Announcing a stall is a conditional insert into `agent_stalls` keyed by the session and the gateway's own last
activity time for it: with several app processes (PostgreSQL), each keeps its own tracker and each finds the
stall, but only the process whose insert wins publishes the live event `agent.stalled`; a restart does not
repeat it either. A stall that ends (activity again) and comes back later is a new quiet period: announced again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .. import background
from ..clock import now_iso
from ..db import Database
from ..gateway.client import GatewayClient, GatewayError, GatewayEvent
from ..live import Hub
from ..webhooks import outbox
from .health import ACTIVITY_EVENTS, HealthTracker, Observed, as_json
from .roster import ROSTER_SESSIONS, list_agents

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0


class HealthPoller:
    def __init__(self, db: Database, hub: Hub, gateway: GatewayClient, tracker: HealthTracker,
                 interval: float = POLL_SECONDS):
        self.db = db
        self.hub = hub
        self.gateway = gateway
        self.tracker = tracker
        self.interval = interval
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._polled_at = float("-inf")  # time.monotonic() of the last poll
        self._subscribed_connection: int | None = None
        self._undo: list = []

    async def start(self) -> None:
        if self._task is not None:
            return
        self._undo = [self.gateway.on_event(name, self._on_event) for name in ACTIVITY_EVENTS]
        self._undo.append(self.gateway.on_connect(lambda _hello: self._wake.set()))
        self._task = asyncio.create_task(self._run(), name="agent-health")

    async def stop(self) -> None:
        for undo in self._undo:
            undo()
        self._undo = []
        await background.stop(self._task)
        self._task = None

    def _on_event(self, event: GatewayEvent) -> None:
        self.tracker.observe_event(event.event, event.payload)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            due = self._polled_at + self.interval - time.monotonic()
            if due <= 0 and self.gateway.connected:
                try:
                    await self.poll()
                except GatewayError as error:  # disconnected meanwhile, or refused: the next round retries
                    log.info("agent health poll failed: %s", error)
                except Exception:
                    log.exception("agent health poll failed")
                continue
            try:
                async with asyncio.timeout(due if due > 0 else self.interval):
                    await self._wake.wait()  # a (re)connect comes sooner than the timer
            except TimeoutError:
                pass

    async def poll(self) -> None:
        """One round: the agents and every session from the gateway, then announce new stalls."""
        self._polled_at = time.monotonic()
        await self._subscribe()
        listed = await list_agents(self.gateway)
        result = await self.gateway.request("sessions.list", {"limit": ROSTER_SESSIONS})
        rows = result.get("sessions") if isinstance(result, dict) else None
        rows = [row for row in rows or [] if isinstance(row, dict) and row.get("key")]
        self.tracker.agents, self.tracker.default_agent = listed["agents"], listed["defaultId"]
        self.tracker.observe(rows, complete=len(rows) < ROSTER_SESSIONS)
        await self.check()

    async def _subscribe(self) -> None:
        """Ask for sessions.changed events once per connection, where the gateway offers them."""
        connection = self.gateway.state.connects
        if connection == self._subscribed_connection or not self.gateway.state.supports("sessions.subscribe"):
            return
        self._subscribed_connection = connection
        try:
            await self.gateway.request("sessions.subscribe", {"limit": 1})
        except GatewayError as error:
            log.info("sessions.subscribe refused; health relies on polling: %s", error)

    async def check(self) -> list[str]:
        """Announce the sessions that became stalled since the last check; returns the keys announced here."""
        announced = []
        for observed in self.tracker.newly_stalled():
            try:
                if await self.announce(observed):
                    announced.append(observed.key)
            except Exception:
                log.exception("could not announce the stall of %s", observed.key)
        return announced

    async def announce(self, observed: Observed) -> bool:
        """Publish `agent.stalled` if this process is the first to record this quiet period of the session."""
        async with self.db.transaction():  # the claim and the webhook deliveries commit together
            claimed = await self.db.changed("agent_health.claim_stall", session_key=observed.key,
                                            activity_ms=observed.stall_id, agent_id=observed.agent_id,
                                            detected_at=now_iso())
            if not claimed:
                return False
            payload = {**as_json(observed, "stalled", self.tracker.clock()),
                       "stallMinutes": self.tracker.stall_ms / 60_000}
            task = await self.db.one("agents.task_for_session", session_key=observed.key)
            payload["task"] = {"id": task["id"], "title": task["title"]} if task else None

            async def data() -> dict:
                return {"session": {k: v for k, v in payload.items() if k != "task"}, "task": payload["task"]}
            await outbox.emit(self.db, ("agent.stalled",), "OpenClaw gateway", data)
        log.warning("agent session stalled", extra={"sessionKey": observed.key, "quietMs": payload["quietMs"]})
        await self.hub.publish("agent.stalled", payload)
        return True
