"""/ws: the original's live channel, authenticated like every other route.

Server → client: `{type: "connected", timestamp, gatewayConnected}` on connect, `{type: "subscribed",
channels, gatewayConnected}` in reply to `{type: "subscribe", channels}`, then every event as
`{type, payload, timestamp}` (task.created, task.updated, task.deleted, comment.*, approval.*).
"""

from __future__ import annotations

import asyncio
import json
import logging

from quart import Blueprint, current_app, websocket

from ..clock import now_iso
from ..live import current_hub

log = logging.getLogger(__name__)
blueprint = Blueprint("live", __name__)


def _gateway_connected() -> bool:
    return current_app.extensions["gateway_state"].connected


async def _read_client_messages() -> None:
    while True:
        raw = await websocket.receive()
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if isinstance(message, dict) and message.get("type") == "subscribe":
            channels = message.get("channels") if isinstance(message.get("channels"), list) else []
            await websocket.send_json({"type": "subscribed", "channels": channels[:20],
                                       "gatewayConnected": _gateway_connected()})


async def _forward_events(queue: asyncio.Queue) -> None:
    while True:
        event = await queue.get()
        await websocket.send(json.dumps(event, default=str))


@blueprint.websocket("/ws")
async def live_channel():
    hub = current_hub()
    queue = hub.subscribe()
    try:
        await websocket.accept()
        await websocket.send_json({"type": "connected", "timestamp": now_iso(),
                                   "gatewayConnected": _gateway_connected()})
        tasks = [asyncio.create_task(_read_client_messages()), asyncio.create_task(_forward_events(queue))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        hub.unsubscribe(queue)
