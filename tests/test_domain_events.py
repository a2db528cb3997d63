"""Domain events: handlers run after the emit returns, in the background; one failing handler is logged and
keeps neither the emitter nor the other handlers from going on."""

from __future__ import annotations

import asyncio
import logging

from clawtrol.domain_events import DomainEvents


async def test_handlers_run_in_the_background_and_a_failure_stays_with_its_handler(caplog):
    events = DomainEvents()
    seen: list[tuple[str, dict]] = []
    release = asyncio.Event()

    async def slow(payload: dict) -> None:
        await release.wait()
        seen.append(("slow", payload))

    async def broken(payload: dict) -> None:
        raise RuntimeError("boom")

    async def other(payload: dict) -> None:
        seen.append(("other", payload))

    for handler in (slow, broken, other):
        events.on("task.updated", handler)
    events.on("task.deleted", other)

    with caplog.at_level(logging.ERROR, logger="clawtrol.domain_events"):
        events.emit("task.updated", {"id": "t1"})  # returns at once: nothing has run yet
        assert seen == []
        await asyncio.sleep(0)
        assert seen == [("other", {"id": "t1"})]  # the slow one still waits; the broken one was logged
        release.set()
        await events.drain()
    assert seen == [("other", {"id": "t1"}), ("slow", {"id": "t1"})]
    assert "a task.updated handler failed" in caplog.text and "boom" in caplog.text


async def test_a_filter_keeps_the_events_a_handler_ignores_from_starting_anything():
    events = DomainEvents()
    seen: list[dict] = []

    async def handler(payload: dict) -> None:
        seen.append(payload)

    events.on("task.updated", handler, when=lambda payload: payload["status"] == "done")
    events.emit("task.updated", {"status": "todo"})
    assert not events._running  # nothing was scheduled
    events.emit("task.updated", {"status": "done"})
    await events.drain()
    assert seen == [{"status": "done"}]


async def test_stop_cancels_the_handlers_still_running():
    events = DomainEvents()
    cancelled = asyncio.Event()

    async def forever(payload: dict) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    events.on("task.updated", forever)
    events.emit("task.updated", {})
    await asyncio.sleep(0)
    await asyncio.wait_for(events.stop(), 1)
    assert cancelled.is_set() and not events._running


async def test_an_event_without_handlers_does_nothing():
    events = DomainEvents()
    events.emit("nobody.listens", {})
    await events.drain()
