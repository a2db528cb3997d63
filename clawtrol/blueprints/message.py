"""/api/message: talking to the main agent session (MAIN_SESSION_KEY), the original's paths and shapes, on the
gateway a `gatewayId` (JSON body field, or query parameter for the history) names, else the only one."""

from __future__ import annotations

from quart import Blueprint, request

from ..agents import main_session
from ..auth.principal import require_principal
from ..gateway import answers
from ..gateway.client import GatewayError
from ..payload import json_object, query_int
from ..services import current_call, current_registry, services

blueprint = Blueprint("message", __name__)


def _main_session() -> str:
    return services().config.main_session_key


@blueprint.post("/api/message")
async def api_message():
    call = current_call()
    body = await json_object({"message", "projectId", "gatewayId"})
    requested = body.get("gatewayId") or request.args.get("gatewayId")
    return await main_session.send(call, requested, _main_session(), body.get("message"), body.get("projectId"))


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
