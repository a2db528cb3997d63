"""Approvals: the live queue page and its fragments, and the JSON API (the original's paths and shapes)."""

from __future__ import annotations

from datetime import datetime, timezone

from quart import Blueprint, render_template, request

from ..approvals import service
from ..approvals.gate import pending_count
from ..approvals.model import DECISION_LABELS, to_json
from .. import htmx
from ..approvals.service import authority
from ..auth.principal import current_principal, require_principal
from ..errors import Forbidden, GatewayTrouble, InvalidInput, NotFound, Refused
from ..payload import json_object, query_int
from ..services import current_call, current_db, current_registry

blueprint = Blueprint("approvals", __name__)

RECENT_LIMIT = 20
MAX_RECENT = 200


def _registry():
    return current_registry()


def _gateway_filter(value: object) -> str | None:
    """The ?gatewayId= filter: any gateway ever recorded (a removed one still has history)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or _registry().name(value) is None:
        raise InvalidInput(f"gatewayId: no gateway {value!r}", field="gatewayId")
    return value


async def _queue(recent_limit: int = RECENT_LIMIT, gateway_id: str | None = None) -> dict:
    """Pending and recent approvals of every gateway, or of one."""
    pending, recent = await service.queue(current_db(), recent_limit, gateway_id)
    return {"pending": pending, "recent": recent, "gateway_connected": _registry().connected}


# --- pages and fragments -------------------------------------------------------------------------------

async def _render_queue(template: str, gateway_id: str | None = None, **extra) -> str:
    principal = current_principal()
    now = datetime.now(timezone.utc)
    registry = _registry()
    queue = await _queue(gateway_id=gateway_id)
    pending = [{**to_json(row, now), "authority": authority(principal, row),
                "gatewayConnected": registry.is_connected(row["gateway_id"])} for row in queue["pending"]]
    recent = [to_json(row, now) for row in queue["recent"]]
    gateways = registry.connections()
    return await render_template(template, pending=pending, recent=recent, labels=DECISION_LABELS,
                                 gateways=gateways, gateway_filter=gateway_id,
                                 disconnected=[c.name for c in gateways if not c.connected],
                                 no_gateway=not gateways, **extra)


@blueprint.get("/approvals")
async def approvals_page():
    require_principal()
    return await _render_queue("approvals/index.html", _gateway_filter(request.args.get("gatewayId")))


@blueprint.get("/approvals/queue")
async def queue_fragment():
    require_principal()
    return await _render_queue("approvals/_queue.html", _gateway_filter(request.args.get("gatewayId")))


@blueprint.post("/approvals/<gateway_id>/<approval_id>/decide")
async def decide(gateway_id: str, approval_id: str):
    """The queue's buttons: decide, then answer with the refreshed queue and a toast saying what happened."""
    form = await request.form
    call = current_call()
    try:
        result = await service.resolve(call, gateway_id, approval_id, form.get("decision"))
        toast = htmx.toast(f"{DECISION_LABELS[result['decision']]}: decision sent to the gateway.", "success")
    except (Refused, Forbidden, NotFound, GatewayTrouble) as error:  # the queue re-renders; a toast says why
        toast = htmx.toast(error.message, "error")
    html = await _render_queue("approvals/_queue.html", _gateway_filter(form.get("gatewayFilter")))
    return html, 200, toast


# --- JSON API --------------------------------------------------------------------------------------------

def _for_caller(row: dict, now: datetime | None = None) -> dict:
    """An approval with whether the caller may decide it and why."""
    return {**to_json(row, now), "authority": authority(current_principal(), row).to_json("canDecide")}


@blueprint.get("/api/approvals")
async def list_approvals():
    require_principal()
    queue = await _queue(query_int("limit", RECENT_LIMIT, 1, MAX_RECENT), _gateway_filter(request.args.get("gatewayId")))
    now = datetime.now(timezone.utc)
    return {"pending": [_for_caller(row, now) for row in queue["pending"]],
            "resolved": [to_json(row, now) for row in queue["recent"]],
            "gatewayConnected": queue["gateway_connected"],
            "gateways": [{"id": c.id, "name": c.name, "connected": c.connected} for c in _registry().connections()]}


@blueprint.get("/api/approvals/status")
async def approvals_status():
    require_principal()
    return {"connected": _registry().connected, "pendingCount": await pending_count(current_db())}


@blueprint.get("/api/approvals/<approval_id>")
async def get_approval(approval_id: str):
    require_principal()
    return _for_caller(await service.locate(current_db(), request.args.get("gatewayId"), approval_id))


@blueprint.post("/api/approvals/<approval_id>/resolve")
async def resolve_approval(approval_id: str):
    body = await json_object({"decision", "gatewayId"})
    return await service.resolve(current_call(), body.get("gatewayId", request.args.get("gatewayId")), approval_id,
                                 body.get("decision"))
