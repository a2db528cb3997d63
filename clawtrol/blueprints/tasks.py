"""The tasks JSON API (the original's paths and shapes): /api/tasks and their comments."""

from __future__ import annotations

from quart import Blueprint, request

from ..auth.principal import require_principal
from ..payload import json_object, query_int
from ..services import current_call, current_db
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
    rows, total = await service.search(current_db(), filters.params(principal), limit, offset)
    return {"tasks": [to_json(row) for row in rows], "count": len(rows), "total": total, "limit": limit,
            "offset": offset}


@blueprint.post("/api/tasks")
async def create_task():
    call = current_call()
    body = await json_object(set(WRITABLE) | set(READ_ONLY))  # read-only ones are refused by name
    return to_json(await service.create(call, body)), 201


@blueprint.get("/api/tasks/<task_id>")
async def get_task(task_id: str):
    require_principal()
    return to_json(await service.get(current_db(), task_id))


@blueprint.patch("/api/tasks/<task_id>")
async def update_task(task_id: str):
    call = current_call()
    body = await json_object(set(WRITABLE) | set(READ_ONLY) | {"version"})
    return to_json(await service.update(call, task_id, body))


@blueprint.delete("/api/tasks/<task_id>")
async def delete_task(task_id: str):
    await service.delete(current_call(), task_id)
    return {"success": True, "id": task_id}


@blueprint.get("/api/tasks/<task_id>/comments")
async def list_comments(task_id: str):
    require_principal()
    rows = await comments.list_for_task(current_db(), task_id)
    return {"comments": [comments.to_json(row) for row in rows], "count": len(rows)}


@blueprint.post("/api/tasks/<task_id>/comments")
async def create_comment(task_id: str):
    call = current_call()
    body = await json_object({"content", "userId", "userName", "userAvatar"})  # author fields are ignored
    return comments.to_json(await comments.create(call, task_id, body.get("content"))), 201


@blueprint.patch("/api/tasks/<task_id>/comments/<comment_id>")
async def update_comment(task_id: str, comment_id: str):
    call = current_call()
    body = await json_object({"content"})
    return comments.to_json(await comments.update(call, task_id, comment_id, body.get("content")))


@blueprint.delete("/api/tasks/<task_id>/comments/<comment_id>")
async def delete_comment(task_id: str, comment_id: str):
    await comments.delete(current_call(), task_id, comment_id)
    return {"success": True}
