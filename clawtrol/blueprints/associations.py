"""Which agent sessions work for which project: /api/agents/associations and /api/agents/project/:projectId
(the original's paths and shapes, from our records: clawtrol/agents/associations.py)."""

from __future__ import annotations

from quart import Blueprint

from ..agents import associations
from ..auth.principal import require_principal, require_role
from ..payload import json_object
from ..projects import service as projects
from ..services import current_call, current_db

blueprint = Blueprint("associations", __name__)


@blueprint.get("/api/agents/associations")
async def api_associations():
    require_principal()
    rows = await associations.list_all(current_db())
    return {"associations": rows, "count": len(rows)}


@blueprint.post("/api/agents/associations")
async def api_register_association():
    require_role("member", "register agent sessions")
    body = await json_object({"sessionKey", "projectId", "task", "label", "model", "gatewayId"})
    stored, created = await associations.register(current_call(), body)
    return ({"success": True, "created": created, "sessionKey": stored["session_key"],
             "projectId": stored["project_id"], "gatewayId": stored.get("gateway_id")}, 201 if created else 200)


@blueprint.get("/api/agents/project/<project_id>")
async def api_project_agents(project_id: str):
    require_principal()
    db = current_db()
    await projects.find(db, project_id)
    rows = await associations.list_all(db, project_id)
    return {"projectId": project_id, "agents": rows, "count": len(rows)}
