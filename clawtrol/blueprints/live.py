"""/ws: the original's live channel, authenticated like every other route.

Server → client: `{type: "connected", timestamp, gatewayConnected}` on connect, `{type: "subscribed",
channels, gatewayConnected}` in reply to `{type: "subscribe", channels}`, then every event as
`{type, payload, timestamp}` (task.created, task.updated, task.deleted, comment.*, approval.*, activity).

A socket lives only as long as its credentials: the hub closes it within a second of a token revoke,
sign-out, deactivation, deletion (close code 4401) or role change (4403: reconnect to get the new role),
in every process, and the handler re-checks the principal every LIVE_RECHECK_SECONDS (default 60) with a
read-only lookup, which also catches expiry and changes made straight in the database.
"""

from __future__ import annotations

import asyncio
import json
import logging

from quart import Blueprint, current_app, g, websocket

from ..auth import sessions
from ..auth.principal import Principal
from ..clock import now_iso
from ..errors import Unauthenticated
from ..live import Holder, Subscription
from ..services import current_db, current_hub, current_registry

log = logging.getLogger(__name__)
blueprint = Blueprint("live", __name__)

RECHECK_SECONDS = 60.0
RECHECK_CONFIG_KEY = "LIVE_RECHECK_SECONDS"  # an app.config key (tests shorten it), not an environment variable


def _gateway_connected() -> bool:
    return current_registry().connected


def _recheck_seconds() -> float:
    return float(current_app.config.get(RECHECK_CONFIG_KEY, RECHECK_SECONDS))


def _holder(principal: Principal) -> Holder:
    key = sessions.session_key(principal.session_id) if principal.session_id else None
    return Holder(kind=principal.kind, id=principal.id, role=principal.role, session_key=key)


def _bearer() -> str:
    return websocket.headers.get("Authorization", "").partition(" ")[2].strip()


async def _watch(subscription: Subscription, bearer: str | None, raw_session: str | None) -> None:
    """Return once the socket must close: revoked through the hub, or found invalid by a re-check."""
    interval = _recheck_seconds()
    while not subscription.revoked:
        try:
            await asyncio.wait_for(subscription.wake.wait(), interval)
        except asyncio.TimeoutError:
            pass
        subscription.wake.clear()
        if subscription.revoked:
            return
        # None too when the database is unreachable: keep the socket, try again at the next interval
        reason = await sessions.recheck(current_db(), subscription.holder, bearer, raw_session)
        if reason is not None:
            current_hub().detach(subscription)
            subscription.revoke(reason)


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


async def _forward_events(subscription: Subscription) -> None:
    while True:
        event = await subscription.queue.get()
        if subscription.revoked:
            return
        await websocket.send(json.dumps(event, default=str))


@blueprint.websocket("/ws")
async def live_channel():
    hub = current_hub()
    principal: Principal = g.principal
    bearer = _bearer() if g.via == "bearer" else None
    raw_session = principal.session_id
    subscription = hub.attach(_holder(principal))
    try:
        # Registered first, then checked once more: a revocation that committed after the guard read the
        # credentials is seen either here or by the hub.
        if await sessions.revocation(current_db(), subscription.holder, bearer, raw_session) is not None:
            raise Unauthenticated("Not authenticated")
        await websocket.accept()
        await websocket.send_json({"type": "connected", "timestamp": now_iso(),
                                   "gatewayConnected": _gateway_connected()})
        tasks = [asyncio.create_task(_read_client_messages()), asyncio.create_task(_forward_events(subscription)),
                 asyncio.create_task(_watch(subscription, bearer, raw_session))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if subscription.revoked:
            hub.detach(subscription)
            log.info("closed a live socket", extra={"kind": principal.kind, "principal": principal.label,
                                                    "reason": subscription.close_reason})
            await websocket.close(subscription.close_code, subscription.close_reason)
    finally:
        hub.detach(subscription)
