"""Reactions inside this process to what the app did, after it committed: a task reached done (pull its usage
from the agent's session), and later whatever else needs to follow a change without being part of it.

This is not the browser's event stream (clawtrol/live.py): that one is shaped for pages and fans out to every
process; a domain event runs its handlers once, in the process that made the change, in the background — an
emit never waits for a handler and a failing handler is logged, not raised."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

TASK_UPDATED = "task.updated"  # {"task": the row after, "old": the row before}

Handler = Callable[[dict], Awaitable[None]]


class DomainEvents:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._running: set[asyncio.Task] = set()

    def on(self, name: str, handler: Handler) -> None:
        """Run `await handler(payload)` after every `name` event."""
        self._handlers.setdefault(name, []).append(handler)

    def emit(self, name: str, payload: dict) -> None:
        for handler in self._handlers.get(name, ()):
            task = asyncio.create_task(self._run(name, handler, payload), name=f"domain-event {name}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    @staticmethod
    async def _run(name: str, handler: Handler, payload: dict) -> None:
        try:
            await handler(payload)
        except Exception:
            log.exception("a %s handler failed", name)

    async def drain(self) -> None:
        """Wait for the handlers still running (at shutdown, and in tests)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
