"""Creating, editing, archiving and deleting projects, and their rollups (permissions and audit included)."""

from __future__ import annotations

import re

from ..audit import record
from ..auth.principal import Principal
from ..clock import now_iso
from ..costs import report
from ..db import Database, UniqueViolation
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..services import Call
from ..tasks import service as tasks
from ..tasks.model import PRIORITIES, STATUSES

MAX_NAME = 100
MAX_DESCRIPTION = 5000
MAX_SUGGESTED = 100


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]


def can_manage(principal: Principal | None, project: dict) -> bool:
    """Owners and admins edit, archive and delete a project."""
    if principal is None or not principal.has_role("member"):
        return False
    return principal.is_admin or (principal.kind == "user" and project.get("owner_id") == principal.id)


def require_manage(principal: Principal, project: dict) -> None:
    if not can_manage(principal, project):
        raise Forbidden("Only the project's owner or an admin can change it.", code="FORBIDDEN")


def stats(project: dict) -> dict:
    """Progress and the cost rollup (the Costs area's per-project figures, so both pages agree)."""
    total, done = project["total"] or 0, project["done"] or 0
    costs = project.get("costs") or {}
    return {
        "total": total, "done": done, "completionPercent": round(done * 100 / total) if total else 0,
        "aiCost": costs.get("aiCost", 0.0), "humanCost": costs.get("humanCost", 0.0),
        "savings": costs.get("savings", 0.0),
    }


async def _with_costs(db: Database, projects: list[dict]) -> list[dict]:
    figures = {row["projectId"]: row for row in await report.by_project(db, await report.hourly_rate(db))}
    return [{**project, "costs": figures.get(project["id"])} for project in projects]


async def list_all(db: Database, include_archived: bool) -> list[dict]:
    rows = await db.all("projects.list_with_stats", include_archived=1 if include_archived else 0)
    return await _with_costs(db, rows)


def to_json(project: dict) -> dict:
    return {
        "id": project["id"], "name": project["name"], "description": project["description"],
        "ownerId": project["owner_id"], "owner": project.get("owner_login"), "archived": bool(project["archived"]),
        "defaultGatewayId": project.get("default_gateway_id"),
        "createdAt": project["created_at"], "updatedAt": project["updated_at"], "taskStats": stats(project),
    }


def _text(body: dict, field: str, limit: int, required: bool = False) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{field}: {'required, ' if required else ''}a string", field=field)
    if len(value.strip()) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters", field=field)
    return value.strip() or None


async def _gateway(db: Database, body: dict) -> str | None:
    """`defaultGatewayId`: the gateway start work uses for the project's tasks (an existing gateway), or null."""
    value = body.get("defaultGatewayId")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or await db.one("gateways.get", id=value) is None:
        raise InvalidInput(f"defaultGatewayId: no gateway {value!r}", field="defaultGatewayId")
    return value


async def get(db: Database, project_id: str) -> dict:
    project = await db.one("projects.get_with_stats", id=project_id)
    if project is None:
        raise NotFound("Project not found")
    return (await _with_costs(db, [project]))[0]


async def options(db: Database) -> list[dict]:
    """The projects a form offers to choose from (a task's project, a rule's scope)."""
    return await db.all("projects.options")


async def find(db: Database, project_id: str, with_stats: bool = False) -> dict:
    """The project's row (task counts with `with_stats`, no cost rollup); 404 if there is none."""
    project = await db.one("projects.get_with_stats" if with_stats else "projects.get", id=project_id)
    if project is None:
        raise NotFound("Project not found")
    return project


async def tasks_by_status(db: Database, project_id: str, limit: int) -> dict[str, list[dict]]:
    """The project's tasks (at most `limit`), in board order, under each status."""
    found = await db.all("projects.tasks", id=project_id, limit=limit)
    return {status: [task for task in found if task["status"] == status] for status in STATUSES}


async def task_list(db: Database, project_id: str, limit: int) -> tuple[list[dict], dict[str, int]]:
    """The project's tasks, newest first (at most `limit`), and how many it has in each status."""
    rows = await db.all("tasks.search", project_id=project_id, agent_id=None, status=None, assigned_to=None,
                        unassigned=0, q=None, limit=limit, offset=0)
    counts = {row["status"]: row["n"] for row in await db.all("projects.status_counts", id=project_id)}
    return rows, {status: counts.get(status, 0) for status in STATUSES}


async def create(call: Call, body: dict) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    if not principal.has_role("member"):
        raise Forbidden(f"Your role ({principal.role}) cannot create projects.", code="FORBIDDEN")
    name = _text(body, "name", MAX_NAME, required=True)
    description = _text(body, "description", MAX_DESCRIPTION)
    project_id = slugify(_text(body, "id", 64) or name)
    if not project_id:
        raise InvalidInput("name: needs at least one letter or digit to make the project id", field="name")
    gateway_id = await _gateway(db, body)
    try:
        async with db.transaction():
            await db.changed("projects.insert", id=project_id, name=name, description=description,
                             owner_id=principal.user_id, default_gateway_id=gateway_id, now=now_iso())
            await record(db, actor, "project.created", "project", project_id,
                         {"name": name, **({"defaultGatewayId": gateway_id} if gateway_id else {})})
    except UniqueViolation:
        raise Conflict(f"A project with id {project_id!r} already exists", field="name") from None
    return await get(db, project_id)


async def update(call: Call, project_id: str, body: dict) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    async with db.transaction():
        if not await db.changed("projects.lock", id=project_id):
            raise NotFound("Project not found")
        current = await db.one("projects.get", id=project_id)
        require_manage(principal, current)
        changes = {"name": current["name"], "description": current["description"], "archived": bool(current["archived"]),
                   "default_gateway_id": current["default_gateway_id"]}
        if "name" in body:
            changes["name"] = _text(body, "name", MAX_NAME, required=True)
        if "description" in body:
            changes["description"] = _text(body, "description", MAX_DESCRIPTION)
        if "archived" in body:
            if not isinstance(body["archived"], bool):
                raise InvalidInput("archived: must be true or false", field="archived")
            changes["archived"] = body["archived"]
        if "defaultGatewayId" in body:
            changes["default_gateway_id"] = await _gateway(db, body)
        changed = sorted(k for k, v in changes.items() if v != (bool(current[k]) if k == "archived" else current[k]))
        if changed:
            await db.changed("projects.update", id=project_id, now=now_iso(), **changes)
            action = "project.updated"
            if changed == ["archived"]:
                action = "project.archived" if changes["archived"] else "project.unarchived"
            details = {"name": changes["name"],
                       "fields": ["defaultGatewayId" if field == "default_gateway_id" else field for field in changed]}
            if "default_gateway_id" in changed:
                details["defaultGatewayId"] = {"from": current["default_gateway_id"], "to": changes["default_gateway_id"]}
            await record(db, actor, action, "project", project_id, details)
    return await get(db, project_id)


async def delete(call: Call, project_id: str) -> None:
    """Delete a project; its tasks stay, without a project."""
    db, principal, actor = call.db, call.principal, call.actor
    async with db.transaction():
        if not await db.changed("projects.lock", id=project_id):
            raise NotFound("Project not found")
        project = await db.one("projects.get", id=project_id)
        require_manage(principal, project)
        await db.changed("projects.delete", id=project_id)
        await record(db, actor, "project.deleted", "project", project_id, {"name": project["name"]})


def validate_suggested(items: object) -> list[dict]:
    """The tasks a user picked from the suggestions: [{title, description?, priority?}]."""
    if not isinstance(items, list) or not items:
        raise InvalidInput("tasks: a non-empty list of {title, description, priority}", field="tasks")
    if len(items) > MAX_SUGGESTED:
        raise InvalidInput(f"tasks: at most {MAX_SUGGESTED} at once", field="tasks")
    picked = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("title"), str) or not item["title"].strip():
            raise InvalidInput(f"tasks[{n}].title: required", field="tasks")
        priority = item.get("priority") or "P2"
        if priority not in PRIORITIES:
            raise InvalidInput(f"tasks[{n}].priority: must be one of {', '.join(PRIORITIES)}", field="tasks")
        status = item.get("status") or "backlog"
        if status not in STATUSES:
            raise InvalidInput(f"tasks[{n}].status: must be one of {', '.join(STATUSES)}", field="tasks")
        picked.append({"title": item["title"], "description": item.get("description") or None,
                       "priority": priority, "status": status})
    return picked


async def create_tasks(call: Call, project_id: str, items: list[dict]) -> list[dict]:
    await get(call.db, project_id)
    created = []
    for item in items:  # each task is its own audited, published creation
        created.append(await tasks.create(call, {**item, "projectId": project_id}))
    return created
