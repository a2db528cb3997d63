"""/api/message: talking to the main agent session (MAIN_SESSION_KEY), the original's paths and shapes, on the
gateway a `gatewayId` (JSON body field, or query parameter for the history) names, else the only one."""

from __future__ import annotations

from quart import Blueprint, current_app, request

from ..agents import main_session
from ..auth.principal import current_actor, require_principal
from ..db import current_db
from ..gateway import answers
from ..gateway.client import GatewayError
from ..gateways.registry import current_registry
from ..payload import json_object, query_int

blueprint = Blueprint("message", __name__)


def _main_session() -> str:
    return current_app.config["CLAWTROL"].main_session_key


@blueprint.post("/api/message")
async def api_message():
    principal = require_principal()
    body = await json_object({"message", "projectId", "gatewayId"})
    requested = body.get("gatewayId") or request.args.get("gatewayId")
    return await main_session.send(current_db(), current_registry(), requested, principal,
                                   current_actor(), _main_session(), body.get("message"), body.get("projectId"))


@blueprint.get("/api/message/history")
async def api_message_history():
    require_principal()
    limit = query_int("limit", main_session.DEFAULT_HISTORY, 1, main_session.MAX_HISTORY)
    registry = current_registry()
    gateway_id = registry.pick(request.args.get("gatewayId"))
    gateway = registry.client(gateway_id)
    answers.require_connected(gateway)
    try:
        return {**await main_session.history(gateway, _main_session(), limit), "gatewayId": gateway_id}
    except GatewayError as error:
        raise answers.failure(error) from None
