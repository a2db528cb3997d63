"""The tasks JSON API (the original's paths and shapes): /api/tasks and their comments."""

from __future__ import annotations

from quart import Blueprint, request

from ..auth.principal import current_actor, require_principal
from ..db import current_db
from ..live import current_hub
from ..payload import json_object, query_int
from ..tasks import comments, service
from ..tasks.filters import TaskFilters
from ..tasks.model import READ_ONLY, WRITABLE, to_json

blueprint = Blueprint("tasks", __name__)

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def _paging() -> tuple[int, int]:
    return query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), query_int("offset", 0, 0, 10**9)


@blueprint.get("/api/tasks")
async def list_tasks():
    principal = require_principal()
    filters = TaskFilters.from_args(request.args)
    limit, offset = _paging()
    db = current_db()
    params = filters.params(principal)
    rows = await db.all("tasks.search", limit=limit, offset=offset, **params)
    if any(params.values()):
        total = await db.value("tasks.search_count", **params)
    else:
        total = await db.value("tasks.count_all")
    return {"tasks": [to_json(row) for row in rows], "count": len(rows), "total": total, "limit": limit,
            "offset": offset}


@blueprint.post("/api/tasks")
async def create_task():
    principal = require_principal()
    body = await json_object(set(WRITABLE) | set(READ_ONLY))  # read-only ones are refused by name
    task = await service.create(current_db(), current_hub(), principal, current_actor(), body)
    return to_json(task), 201


@blueprint.get("/api/tasks/<task_id>")
async def get_task(task_id: str):
    require_principal()
    return to_json(await service.get(current_db(), task_id))


@blueprint.patch("/api/tasks/<task_id>")
async def update_task(task_id: str):
    principal = require_principal()
    body = await json_object(set(WRITABLE) | set(READ_ONLY) | {"version"})
    task = await service.update(current_db(), current_hub(), principal, current_actor(), task_id, body)
    return to_json(task)


@blueprint.delete("/api/tasks/<task_id>")
async def delete_task(task_id: str):
    principal = require_principal()
    await service.delete(current_db(), current_hub(), principal, current_actor(), task_id)
    return {"success": True, "id": task_id}


@blueprint.get("/api/tasks/<task_id>/comments")
async def list_comments(task_id: str):
    require_principal()
    rows = await comments.list_for_task(current_db(), task_id)
    return {"comments": [comments.to_json(row) for row in rows], "count": len(rows)}


@blueprint.post("/api/tasks/<task_id>/comments")
async def create_comment(task_id: str):
    principal = require_principal()
    body = await json_object({"content", "userId", "userName", "userAvatar"})  # author fields are ignored
    comment = await comments.create(current_db(), current_hub(), principal, current_actor(), task_id,
                                    body.get("content"))
    return comments.to_json(comment), 201


@blueprint.patch("/api/tasks/<task_id>/comments/<comment_id>")
async def update_comment(task_id: str, comment_id: str):
    principal = require_principal()
    body = await json_object({"content"})
    comment = await comments.update(current_db(), current_hub(), principal, current_actor(), task_id, comment_id,
                                    body.get("content"))
    return comments.to_json(comment)


@blueprint.delete("/api/tasks/<task_id>/comments/<comment_id>")
async def delete_comment(task_id: str, comment_id: str):
    principal = require_principal()
    await comments.delete(current_db(), current_hub(), principal, current_actor(), task_id, comment_id)
    return {"success": True}
