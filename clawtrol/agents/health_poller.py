"""Keeps the health tracker (health.py) current, per gateway: polls each connected gateway's agents.list and
sessions.list at most every 30 s (and soon after it connects), applies every gateway's chat/agent/session events
as they arrive, and announces each session that becomes stalled.

Each gateway is polled on its own task with a time limit: a gateway that is slow or down never holds up the
others.

Announcing a stall is a conditional insert into `agent_stalls` keyed by the gateway, the session and the
gateway's own last activity time for it: with several app processes (PostgreSQL), each keeps its own tracker and
each finds the stall, but only the process whose insert wins publishes the live event `agent.stalled`; a restart
does not repeat it either. A stall that ends (activity again) and comes back later is a new quiet period:
announced again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .. import background
from ..clock import now_iso
from ..db import Database
from ..gateway.client import GatewayClient, GatewayError, GatewayEvent
from ..gateways.registry import GatewayRegistry
from ..live import Hub
from ..webhooks import outbox
from . import records
from .health import ACTIVITY_EVENTS, HealthTracker, Observed, as_json
from .roster import ROSTER_SESSIONS, list_agents

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0
POLL_TIMEOUT = 20.0  # one gateway's round; a gateway that answers slower is tried again next round


class HealthPoller:
    def __init__(self, db: Database, hub: Hub, gateways: GatewayRegistry, tracker: HealthTracker,
                 interval: float = POLL_SECONDS):
        self.db = db
        self.hub = hub
        self.gateways = gateways
        self.tracker = tracker
        self.interval = interval
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._polled_at: dict[str, float] = {}  # gateway id → time.monotonic() of its last poll
        self._polling: dict[str, asyncio.Task] = {}
        self._subscribed: dict[str, tuple[int, int]] = {}  # gateway id → (client, connection) subscribed
        self._listening = False

    async def start(self) -> None:
        if self._task is not None:
            return
        if not self._listening:  # the registry keeps handlers for every gateway, present and future
            self._listening = True
            for name in ACTIVITY_EVENTS:
                self.gateways.on_event(name, self._on_event)
            self.gateways.on_connect(self._on_connect)
        self._task = asyncio.create_task(self._run(), name="agent-health")

    async def stop(self) -> None:
        await background.stop(self._task)
        self._task = None
        for task in list(self._polling.values()):
            await background.stop(task)
        self._polling.clear()

    def _on_event(self, gateway_id: str, event: GatewayEvent) -> None:
        self.tracker.observe_event(gateway_id, event.event, event.payload)

    def _on_connect(self, gateway_id: str, _hello: object) -> None:
        self._polled_at.pop(gateway_id, None)  # due now
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now, wait = time.monotonic(), self.interval
            connections = self.gateways.connections()
            self.tracker.forget_gateways({connection.id for connection in connections})
            for connection in connections:
                if not connection.connected or connection.id in self._polling:
                    continue
                due = self._polled_at.get(connection.id, float("-inf")) + self.interval - now
                if due <= 0:
                    task = asyncio.create_task(self._poll_quietly(connection.id), name=f"agent-health-{connection.id}")
                    self._polling[connection.id] = task
                else:
                    wait = min(wait, due)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()  # a (re)connect or a finished poll comes sooner than the timer
            except TimeoutError:
                pass

    async def _poll_quietly(self, gateway_id: str) -> None:
        try:
            async with asyncio.timeout(POLL_TIMEOUT):
                await self.poll(gateway_id)
        except (GatewayError, TimeoutError) as error:  # disconnected meanwhile, refused, slow: next round
            log.info("agent health poll failed", extra={"gateway": gateway_id, "error": str(error)})
        except Exception:
            log.exception("agent health poll failed", extra={"gateway": gateway_id})
        finally:
            self._polling.pop(gateway_id, None)
            self._wake.set()

    async def poll(self, gateway_id: str | None = None) -> None:
        """One round for one gateway (None: every connected one, concurrently): its agents and every session,
        then announce new stalls."""
        if gateway_id is None:
            ids = [connection.id for connection in self.gateways.connections() if connection.connected]
            await asyncio.gather(*(self._poll_one(one) for one in ids))
            await self.check()
            return
        await self._poll_one(gateway_id)
        await self.check()

    async def _poll_one(self, gateway_id: str) -> None:
        self._polled_at[gateway_id] = time.monotonic()
        gateway = self.gateways.client(gateway_id)
        await self._subscribe(gateway_id, gateway)
        listed = await list_agents(gateway)
        result = await gateway.request("sessions.list", {"limit": ROSTER_SESSIONS})
        rows = result.get("sessions") if isinstance(result, dict) else None
        rows = [row for row in rows or [] if isinstance(row, dict) and row.get("key")]
        self.tracker.set_agents(gateway_id, listed["agents"], listed["defaultId"])
        self.tracker.observe(gateway_id, rows, complete=len(rows) < ROSTER_SESSIONS)

    async def _subscribe(self, gateway_id: str, gateway: GatewayClient) -> None:
        """Ask for sessions.changed events once per connection, where the gateway offers them."""
        connection = (id(gateway), gateway.state.connects)
        if self._subscribed.get(gateway_id) == connection or not gateway.state.supports("sessions.subscribe"):
            return
        self._subscribed[gateway_id] = connection
        try:
            await gateway.request("sessions.subscribe", {"limit": 1})
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
            claimed = await self.db.changed("agent_health.claim_stall", gateway_id=observed.gateway_id,
                                            session_key=observed.key,
                                            activity_ms=observed.stall_id, agent_id=observed.agent_id,
                                            detected_at=now_iso())
            if not claimed:
                return False
            payload = {**as_json(observed, "stalled", self.tracker.clock()),
                       "gatewayName": self.gateways.name(observed.gateway_id),
                       "stallMinutes": self.tracker.stall_ms / 60_000}
            task = await records.task_for_session(self.db, observed.gateway_id, observed.key)
            payload["task"] = {"id": task["id"], "title": task["title"]} if task else None

            async def data() -> dict:
                return {"session": {k: v for k, v in payload.items() if k != "task"}, "task": payload["task"]}
            await outbox.emit(self.db, ("agent.stalled",), "OpenClaw gateway", data)
        log.warning("agent session stalled", extra={"gateway": observed.gateway_id, "sessionKey": observed.key,
                                                    "quietMs": payload["quietMs"]})
        await self.hub.publish("agent.stalled", payload)
        return True
