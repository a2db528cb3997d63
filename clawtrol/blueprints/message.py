"""/api/message: talking to the main agent session (MAIN_SESSION_KEY), the original's paths and shapes."""

from __future__ import annotations

from quart import Blueprint, current_app

from ..agents import main_session
from ..auth.principal import current_actor, require_principal
from ..db import current_db
from ..gateway import answers
from ..gateway.client import GatewayClient, GatewayError
from ..payload import json_object, query_int

blueprint = Blueprint("message", __name__)


def _gateway() -> GatewayClient:
    return current_app.extensions["gateway"]


def _main_session() -> str:
    return current_app.config["CLAWTROL"].main_session_key


@blueprint.post("/api/message")
async def api_message():
    principal = require_principal()
    body = await json_object({"message", "projectId"})
    return await main_session.send(current_db(), _gateway(), principal, current_actor(), _main_session(),
                                   body.get("message"), body.get("projectId"))


@blueprint.get("/api/message/history")
async def api_message_history():
    require_principal()
    limit = query_int("limit", main_session.DEFAULT_HISTORY, 1, main_session.MAX_HISTORY)
    gateway = _gateway()
    answers.require_connected(gateway)
    try:
        return await main_session.history(gateway, _main_session(), limit)
    except GatewayError as error:
        raise answers.failure(error) from None
