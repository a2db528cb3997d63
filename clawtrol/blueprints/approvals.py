"""Approvals: the live queue page and its fragments, and the JSON API (the original's paths and shapes)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from quart import Blueprint, current_app, render_template, request

from ..approvals import service
from ..approvals.model import DECISION_LABELS, to_json
from ..approvals.service import authority
from ..auth.principal import current_actor, current_principal, require_principal
from ..clock import now_iso
from ..db import current_db
from ..errors import Forbidden, GatewayTrouble, InvalidInput, NotFound, Refused
from ..gateways.registry import current_registry
from ..live import current_hub
from ..payload import json_object, query_int

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


async def _resolve(gateway_id: object, approval_id: str, decision: object) -> dict:
    return await service.resolve(current_db(), current_hub(), _registry(), current_app.extensions["approvals"],
                                 require_principal(), current_actor(), gateway_id, approval_id, decision)


async def _queue(recent_limit: int = RECENT_LIMIT, gateway_id: str | None = None) -> dict:
    """Pending and recent approvals of every gateway, or of one."""
    db = current_db()
    now = now_iso()
    if gateway_id is None:
        pending = await db.all("approvals.pending", now=now)
        recent = await db.all("approvals.recent", limit=recent_limit)
    else:
        pending = await db.all("approvals.pending_at", now=now, gateway_id=gateway_id)
        recent = await db.all("approvals.recent_at", limit=recent_limit, gateway_id=gateway_id)
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
    try:
        result = await _resolve(gateway_id, approval_id, form.get("decision"))
        toast = {"message": f"{DECISION_LABELS[result['decision']]}: decision sent to the gateway.", "level": "success"}
    except (Refused, Forbidden, NotFound, GatewayTrouble) as error:  # the queue re-renders; a toast says why
        toast = {"message": error.message, "level": "error"}
    html = await _render_queue("approvals/_queue.html", _gateway_filter(form.get("gatewayFilter")))
    return html, 200, {"HX-Trigger": json.dumps({"clawtrol:toast": toast})}


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
    return {"connected": _registry().connected, "pendingCount": await service.pending_count(current_db())}


@blueprint.get("/api/approvals/<approval_id>")
async def get_approval(approval_id: str):
    require_principal()
    return _for_caller(await service.locate(current_db(), request.args.get("gatewayId"), approval_id))


@blueprint.post("/api/approvals/<approval_id>/resolve")
async def resolve_approval(approval_id: str):
    body = await json_object({"decision", "gatewayId"})
    return await _resolve(body.get("gatewayId", request.args.get("gatewayId")), approval_id, body.get("decision"))
