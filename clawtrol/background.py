"""Background tasks the app starts and stops with it."""

from __future__ import annotations

import asyncio
import contextlib


async def stop(task: asyncio.Task | None) -> None:
    """Cancel a background task (if there is one) and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
