"""Which agent sessions work for which project (the original's project-agent associations), on our records.

Derived, not copied: sessions started through start work (in the project their task was in then), sessions
linked to a project's task by its `sessionKey`, and sessions registered from outside (`agent_associations`,
POST /api/agents/associations, e.g. helpers an agent spawned itself). An association is information only;
authority over a session comes from the start work record alone (agents/authority.py).

Status, as the original's P1: `completed` once the linked task is done; `unknown` when the task is gone or
now works in another session; otherwise `running`.
"""

from __future__ import annotations

import re

from .. import audit
from ..clock import now_iso, parse_iso
from ..db import Database
from ..errors import InvalidInput
from ..services import Call

MAX_LIST = 500
SESSION_KEY = re.compile(r"^[^\s/]{1,200}$")
TEXT_LIMITS = {"task": 2000, "label": 200, "model": 200}


def _ms(value: str | None) -> int | None:
    return int(parse_iso(value).timestamp() * 1000) if value else None


def agent_of(session_key: str) -> str | None:
    """`agent:<agentId>:<name>` → agentId."""
    parts = session_key.split(":")
    return parts[1] if len(parts) >= 3 and parts[0] == "agent" and parts[1] else None


def status_of(row: dict) -> str:
    if row["task_status"] == "done":
        return "completed"
    moved = (row["task_session_key"] != row["session_key"]
             or (row["task_session_gateway_id"] or row["gateway_id"]) != row["gateway_id"])
    if row["source"] == "start-work" and (row["task_id"] is None or moved):
        return "unknown"
    return "running"


def to_json(row: dict) -> dict:
    status = status_of(row)
    return {
        "sessionKey": row["session_key"], "gatewayId": row["gateway_id"], "projectId": row["project_id"],
        "projectName": row["project_name"],
        "task": row["task"] or "", "taskId": row["task_id"],
        "agentId": row["agent_id"] or agent_of(row["session_key"]), "label": row["label"], "model": row["model"],
        "spawnedAt": _ms(row["since"]), "status": status,
        "completedAt": _ms(row["completed_at"]) if status == "completed" else None,
        "source": row["source"], "registeredBy": row["registered_by"],
    }


async def list_all(db: Database, project_id: str | None = None) -> list[dict]:
    rows = await db.all("associations.list", project_id=project_id, limit=MAX_LIST)
    return [to_json(row) for row in rows]


def validate(body: dict) -> dict:
    """{sessionKey, projectId, task, label?, model?, gatewayId?}: the first three required (400 naming the
    field)."""
    values = {}
    for field in ("sessionKey", "projectId", "task"):
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{field}: required, a non-empty string", field=field)
        values[field] = value.strip()
    if not SESSION_KEY.match(values["sessionKey"]):
        raise InvalidInput("sessionKey: an OpenClaw session key such as agent:main:helper (no spaces or slashes, at "
                           "most 200 characters)", field="sessionKey")
    for field in ("label", "model"):
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{field}: a string", field=field)
        values[field] = (value.strip() or None) if value else None
    gateway_id = body.get("gatewayId")
    if gateway_id is not None and (not isinstance(gateway_id, str) or not gateway_id.strip()):
        raise InvalidInput("gatewayId: a gateway id", field="gatewayId")
    values["gatewayId"] = gateway_id.strip() if gateway_id else None
    for field, limit in TEXT_LIMITS.items():
        if values[field] and len(values[field]) > limit:
            raise InvalidInput(f"{field}: at most {limit} characters", field=field)
    return values


async def _gateway_of(call: Call, requested: str | None) -> str | None:
    """The gateway a registration names (it must exist); without one, the only enabled gateway, else unknown
    (None: the registration matches its session key on any gateway)."""
    if requested is not None:
        if await call.db.one("gateways.get", id=requested) is None:
            raise InvalidInput(f"gatewayId: no gateway {requested!r}", field="gatewayId")
        return requested
    connections = call.gateways.connections()
    return connections[0].id if len(connections) == 1 else None


async def register(call: Call, body: dict) -> tuple[dict, bool]:
    """Register a session as working for a project; (the registration, whether it is new). Registering a
    session again changes nothing (the original's add was idempotent per session key). The caller has
    checked the role (members and up)."""
    db, principal, actor = call.db, call.principal, call.actor
    values = validate(body)
    values["gatewayId"] = await _gateway_of(call, values["gatewayId"])
    async with db.transaction():
        if await db.one("projects.get", id=values["projectId"]) is None:
            raise InvalidInput(f"projectId: no project with id {values['projectId']!r}", field="projectId")
        created = await db.changed(
            "associations.register", session_key=values["sessionKey"], gateway_id=values["gatewayId"],
            project_id=values["projectId"],
            task=values["task"], label=values["label"], model=values["model"], registered_by=principal.user_id,
            registered_by_token=principal.token_id, registered_by_label=actor.label, created_at=now_iso())
        if created:
            await audit.record(db, actor, "association.registered", "session", values["sessionKey"],
                               {"projectId": values["projectId"], "gatewayId": values["gatewayId"],
                                "task": values["task"][:200],
                                "label": values["label"], "model": values["model"]})
        stored = await db.one("associations.get", session_key=values["sessionKey"])
    return stored, bool(created)
