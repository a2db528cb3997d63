"""When a task linked to an agent session reaches done without reported usage, pull tokens, cost, model and
runtime from the session (sessions.describe) and store them.

It hangs on the task.updated domain event (clawtrol/domain_events.py), which every change of a task emits in
the process that made it, so moves from the board, the API and agents are all seen, once. The session is
asked of the gateway the task's session link records (else the only enabled gateway).
`agents.set_usage` is conditional, so a usage reported meanwhile is not overwritten.
"""

from __future__ import annotations

import logging

from .. import audit
from ..clock import now_iso
from ..db import Database
from ..domain_events import TASK_UPDATED, DomainEvents
from ..errors import GatewayTrouble, Refused
from ..gateways.registry import GatewayRegistry
from ..live import Hub
from ..tasks import service
from ..tasks.model import to_json
from .roster import describe_session

log = logging.getLogger(__name__)

GATEWAY = audit.Actor(kind="system", label="OpenClaw gateway")


def needs_usage(change: dict) -> str | None:
    """The task id if this change ({"task", "oldTask"} as JSON) took a task to done with a session and no
    reported usage."""
    task, old = change.get("task") or {}, change.get("oldTask") or {}
    if task.get("status") != "done" or old.get("status") == "done" or not task.get("sessionKey"):
        return None
    tokens = task.get("tokens") or {}
    if tokens.get("total") is not None or task.get("cost") is not None:
        return None
    return task.get("id")


class UsagePuller:
    def __init__(self, db: Database, hub: Hub, events: DomainEvents, gateways: GatewayRegistry):
        self.db = db
        self.hub = hub  # pages see the pulled usage
        self.events = events
        self.gateways = gateways
        self._listening = False

    async def start(self) -> None:
        if not self._listening:
            self.events.on(TASK_UPDATED, self.task_updated, when=lambda change: needs_usage(change) is not None)
            self._listening = True

    async def stop(self) -> None:
        pass  # a pull under way is cancelled with the domain events (DomainEvents.stop)

    async def task_updated(self, change: dict) -> None:
        task_id = needs_usage(change)
        if task_id is None or not self.gateways.any_connected:
            return
        try:
            await self.pull(task_id)
        except Exception as exc:  # best effort: usage can still be reported later
            log.warning("could not pull usage for task %s: %s", task_id, exc)

    async def pull(self, task_id: str) -> bool:
        """Fill the task's usage from its session; True if this call wrote it."""
        task = await service.get(self.db, task_id)
        if not task.get("session_key"):
            return False
        try:
            gateway_id = self.gateways.pick(None, task.get("session_gateway_id"))
        except (Refused, GatewayTrouble):
            return False  # none, or several gateways and the link names none of them
        if task.get("session_gateway_id") not in (None, gateway_id) or not self.gateways.is_connected(gateway_id):
            return False  # its gateway is disabled or down: the usage can still be reported later
        session = await describe_session(self.gateways.client(gateway_id), task["session_key"])
        if session is None or (session["totalTokens"] is None and session["estimatedCostUsd"] is None):
            return False
        usage = {"tokens_input": session["inputTokens"], "tokens_output": session["outputTokens"],
                 "tokens_total": session["totalTokens"], "cost": session["estimatedCostUsd"],
                 "model": session["model"], "runtime": session["runtimeMs"]}
        async with self.db.transaction():
            written = await self.db.changed("agents.set_usage", id=task_id, now=now_iso(), **usage)
            if written:
                await audit.record(self.db, GATEWAY, "task.usage_pulled", "task", task_id,
                                   {"title": task["title"], "sessionKey": task["session_key"],
                                    "gatewayId": gateway_id,
                                    "tokens": usage["tokens_total"], "cost": usage["cost"], "model": usage["model"]})
        if written:
            updated = await service.get(self.db, task_id)
            await self.hub.publish("task.updated", {"task": to_json(updated), "oldTask": to_json(task),
                                                    "updates": ["cost", "model", "runtime", "tokens"],
                                                    "actor": GATEWAY.label, "actorId": None})
        return bool(written)
