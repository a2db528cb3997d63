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
Filter = Callable[[dict], bool]


class DomainEvents:
    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Handler, Filter | None]]] = {}
        self._running: set[asyncio.Task] = set()

    def on(self, name: str, handler: Handler, *, when: Filter | None = None) -> None:
        """Run `await handler(payload)` after every `name` event (for which `when(payload)` is true: a cheap
        check made in the emitter, so the events a handler ignores start no background task)."""
        self._handlers.setdefault(name, []).append((handler, when))

    def emit(self, name: str, payload: dict) -> None:
        for handler, when in self._handlers.get(name, ()):
            if when is not None and not when(payload):
                continue
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
        """Wait for the handlers still running (tests)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def stop(self) -> None:
        """At shutdown: cancel the handlers still running (a usage pull can happen later) and wait for them."""
        for task in list(self._running):
            task.cancel()
        await self.drain()
