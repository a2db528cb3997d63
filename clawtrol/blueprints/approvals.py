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
from ..errors import ApiError
from ..live import current_hub
from ..payload import json_object, query_int

blueprint = Blueprint("approvals", __name__)

RECENT_LIMIT = 20
MAX_RECENT = 200


def _gateway():
    return current_app.extensions["gateway"]


async def _resolve(approval_id: str, decision: object) -> dict:
    return await service.resolve(current_db(), current_hub(), _gateway(), current_app.extensions["approvals"],
                                 require_principal(), current_actor(), approval_id, decision)


async def _queue(recent_limit: int = RECENT_LIMIT) -> dict:
    db = current_db()
    now = now_iso()
    return {"pending": await db.all("approvals.pending", now=now),
            "recent": await db.all("approvals.recent", limit=recent_limit),
            "gateway_connected": _gateway().connected}


# --- pages and fragments -------------------------------------------------------------------------------

async def _render_queue(template: str, **extra) -> str:
    principal = current_principal()
    now = datetime.now(timezone.utc)
    queue = await _queue()
    pending = [{**to_json(row, now), "authority": authority(principal, row)} for row in queue["pending"]]
    recent = [to_json(row, now) for row in queue["recent"]]
    return await render_template(template, pending=pending, recent=recent, labels=DECISION_LABELS,
                                 gateway_connected=queue["gateway_connected"], **extra)


@blueprint.get("/approvals")
async def approvals_page():
    require_principal()
    return await _render_queue("approvals/index.html")


@blueprint.get("/approvals/queue")
async def queue_fragment():
    require_principal()
    return await _render_queue("approvals/_queue.html")


@blueprint.post("/approvals/<approval_id>/decide")
async def decide(approval_id: str):
    """The queue's buttons: decide, then answer with the refreshed queue and a toast saying what happened."""
    form = await request.form
    try:
        result = await _resolve(approval_id, form.get("decision"))
        toast = {"message": f"{DECISION_LABELS[result['decision']]}: decision sent to the gateway.", "level": "success"}
    except ApiError as error:
        if error.status == 401:
            raise
        toast = {"message": error.message, "level": "error"}
    html = await _render_queue("approvals/_queue.html")
    return html, 200, {"HX-Trigger": json.dumps({"clawtrol:toast": toast})}


# --- JSON API --------------------------------------------------------------------------------------------

def _for_caller(row: dict, now: datetime | None = None) -> dict:
    """An approval with whether the caller may decide it and why."""
    return {**to_json(row, now), "authority": authority(current_principal(), row).to_json("canDecide")}


@blueprint.get("/api/approvals")
async def list_approvals():
    require_principal()
    queue = await _queue(query_int("limit", RECENT_LIMIT, 1, MAX_RECENT))
    now = datetime.now(timezone.utc)
    return {"pending": [_for_caller(row, now) for row in queue["pending"]],
            "resolved": [to_json(row, now) for row in queue["recent"]],
            "gatewayConnected": queue["gateway_connected"]}


@blueprint.get("/api/approvals/status")
async def approvals_status():
    require_principal()
    return {"connected": _gateway().connected, "pendingCount": await service.pending_count(current_db())}


@blueprint.get("/api/approvals/<approval_id>")
async def get_approval(approval_id: str):
    require_principal()
    row = await current_db().one("approvals.get", id=approval_id)
    if row is None:
        raise ApiError("No approval with this id.", 404, code="NOT_FOUND")
    return _for_caller(row)


@blueprint.post("/api/approvals/<approval_id>/resolve")
async def resolve_approval(approval_id: str):
    body = await json_object({"decision"})
    return await _resolve(approval_id, body.get("decision"))
