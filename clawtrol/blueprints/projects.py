"""Projects: the list and detail pages (htmx), suggestions from PROJECT.md, and /api/projects."""

from __future__ import annotations

from quart import Blueprint, redirect, render_template, request, url_for

from .. import htmx
from ..auth.principal import current_principal, require_principal
from ..errors import InvalidInput, Refused
from ..payload import json_object
from ..agents import associations
from ..projects import documents, parser, service
from ..tasks import access
from ..tasks import service as task_service
from ..tasks.model import PRIORITIES, PRIORITY_LABELS, STATUS_LABELS, STATUSES
from ..tasks.model import to_json as task_json
from ..gateways import service as gateways
from ..services import current_call, current_db, current_registry

blueprint = Blueprint("projects", __name__)

TASK_LIST_LIMIT = 500
MAX_MARKDOWN = 100_000


def _markdown(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("markdown: paste the PROJECT.md text", field="markdown")
    if len(value) > MAX_MARKDOWN:
        raise InvalidInput(f"markdown: at most {MAX_MARKDOWN} characters", field="markdown")
    return value


# --- pages -----------------------------------------------------------------------------------------

@blueprint.get("/projects")
async def projects_page():
    principal = require_principal()
    show_archived = request.args.get("archived") == "1"
    rows = await service.list_all(current_db(), show_archived)
    return await render_template("projects/index.html", projects=rows, stats=service.stats,
                                 show_archived=show_archived, can_create=principal.has_role("member"),
                                 error=None, form={})


@blueprint.post("/projects")
async def create_project_form():
    call = current_call()
    form = await request.form
    try:
        project = await service.create(call, dict(form))
    except Refused as error:
        rows = await service.list_all(current_db(), False)
        return await render_template("projects/index.html", projects=rows, stats=service.stats, show_archived=False,
                                     can_create=True, error=error.message, form=form), error.status
    return redirect(url_for("projects.project_page", project_id=project["id"]), 303)


async def _detail(project_id: str, **extra):
    db = current_db()
    project = await service.get(db, project_id)
    principal = current_principal()
    by_status = await service.tasks_by_status(db, project_id, TASK_LIST_LIMIT)
    return await render_template(
        "projects/detail.html", project=project, stats=service.stats(project), by_status=by_status,
        status_labels=STATUS_LABELS, priorities=PRIORITIES, priority_labels=PRIORITY_LABELS, statuses=STATUSES,
        can_manage=service.can_manage(principal, project), can_add=access.can_create(principal),
        gateways=await gateways.records(db), gateway_name=current_registry().name, **extra)


@blueprint.get("/projects/<project_id>")
async def project_page(project_id: str):
    require_principal()
    return await _detail(project_id)


@blueprint.post("/projects/<project_id>")
async def update_project_form(project_id: str):
    call = current_call()
    form = await request.form
    body = {k: form[k] for k in ("name", "description", "defaultGatewayId") if k in form}
    if "archived" in form:
        body["archived"] = form["archived"] == "true"
    try:
        await service.update(call, project_id, body)
    except Refused as error:
        return await _detail(project_id, error=error.message), error.status
    return redirect(url_for("projects.project_page", project_id=project_id), 303)


@blueprint.delete("/projects/<project_id>")
async def delete_project_form(project_id: str):
    await service.delete(current_call(), project_id)
    return "", 200, htmx.redirect(url_for("projects.projects_page"))


@blueprint.post("/projects/<project_id>/tasks")
async def add_task_form(project_id: str):
    call = current_call()
    form = await request.form
    body = {"title": form.get("title", ""), "priority": form.get("priority") or "P2",
            "status": form.get("status") or "todo", "projectId": project_id}
    if form.get("description", "").strip():
        body["description"] = form["description"]
    try:
        await service.get(call.db, project_id)
        await task_service.create(call, body)
    except Refused as error:
        return await _detail(project_id, add_error=error.message, add_form=form), error.status
    return redirect(url_for("projects.project_page", project_id=project_id), 303)


@blueprint.post("/projects/<project_id>/suggest")
async def suggest_fragment(project_id: str):
    principal = require_principal()
    await service.get(current_db(), project_id)
    form = await request.form
    try:
        parsed = parser.parse(_markdown(form.get("markdown")))
    except Refused as error:
        return await render_template("projects/_suggestions.html", error=error.message, parsed=None,
                                     project_id=project_id, can_add=access.can_create(principal)), 400
    return await render_template("projects/_suggestions.html", parsed=parsed, error=None, project_id=project_id,
                                 priorities=PRIORITIES, can_add=access.can_create(principal))


@blueprint.post("/projects/<project_id>/suggestions")
async def create_suggested_form(project_id: str):
    """Create the suggestions the user kept ticked (fields pick, title-N, priority-N)."""
    call = current_call()
    form = await request.form
    picked = [{"title": form.get(f"title-{n}", ""), "priority": form.get(f"priority-{n}") or "P2"}
              for n in form.getlist("pick")]
    try:
        items = service.validate_suggested(picked)
        await service.create_tasks(call, project_id, items)
    except Refused as error:
        return await render_template("projects/_suggestions.html", error=error.message, parsed=None,
                                     project_id=project_id, can_add=True), error.status
    return "", 200, htmx.redirect(url_for("projects.project_page", project_id=project_id))


# --- JSON API --------------------------------------------------------------------------------------

@blueprint.get("/api/projects")
async def api_projects():
    require_principal()
    rows = await service.list_all(current_db(), request.args.get("archived") in ("1", "true"))
    return {"projects": [service.to_json(row) for row in rows], "count": len(rows)}


@blueprint.post("/api/projects")
async def api_create_project():
    call = current_call()
    body = await json_object({"id", "name", "description", "defaultGatewayId"})
    project = await service.create(call, body)
    return {"success": True, "project": service.to_json(project)}, 201


@blueprint.get("/api/projects/importable")
async def api_importable():
    """The original listed workspace folders without a PROJECT.md; projects here are database records and the
    server has no workspace, so there is never a folder to import (POST /api/projects/import still works)."""
    require_principal()
    return {"folders": [], "note": "Projects live in the database; import a folder by its name with "
                                   "POST /api/projects/import {folderId, description?}."}


@blueprint.post("/api/projects/import")
async def api_import_project():
    """The original's "import existing folder": a project named after the folder (id = the folder name)."""
    call = current_call()
    body = await json_object({"folderId", "description"})
    folder = body.get("folderId")
    if not isinstance(folder, str) or not service.slugify(folder):
        raise InvalidInput("folderId: required, the folder's name", field="folderId")
    name = " ".join(word.capitalize() for word in folder.strip().split("-") if word) or folder.strip()
    project = await service.create(call, {"id": folder.strip(), "name": name, "description": body.get("description")})
    return {"success": True, "project": service.to_json(project), "createdFiles": []}, 201


@blueprint.get("/api/projects/<project_id>")
async def api_project(project_id: str):
    require_principal()
    return service.to_json(await service.get(current_db(), project_id))


@blueprint.patch("/api/projects/<project_id>")
async def api_update_project(project_id: str):
    call = current_call()
    body = await json_object({"name", "description", "archived", "defaultGatewayId"})
    if not body:
        raise InvalidInput("No updates provided: send name, description or archived")
    return service.to_json(await service.update(call, project_id, body))


@blueprint.delete("/api/projects/<project_id>")
async def api_delete_project(project_id: str):
    await service.delete(current_call(), project_id)
    return {"success": True, "id": project_id}


@blueprint.get("/api/projects/<project_id>/tasks")
async def api_project_tasks(project_id: str):
    require_principal()
    db = current_db()
    project = await service.get(db, project_id)
    rows, counts = await service.task_list(db, project_id, 1000)
    return {"projectId": project_id, "tasks": [task_json(row) for row in rows],
            "stats": {**service.stats(project), "byStatus": counts}}


@blueprint.post("/api/projects/<project_id>/parse-tasks")
async def api_parse_tasks(project_id: str):
    require_principal()
    await service.get(current_db(), project_id)
    body = await json_object({"markdown"})
    parsed = parser.parse(_markdown(body.get("markdown")))
    return {"projectId": project_id, "title": parsed.title, "description": parsed.description,
            "suggestedTasks": [s.as_json() for s in parsed.suggestions]}


@blueprint.post("/api/projects/<project_id>/create-tasks")
async def api_create_tasks(project_id: str):
    call = current_call()
    body = await json_object({"tasks"})
    items = service.validate_suggested(body.get("tasks"))
    created = await service.create_tasks(call, project_id, items)
    return {"success": True, "projectId": project_id, "created": len(created),
            "tasks": [task_json(task) for task in created]}, 201


@blueprint.get("/api/projects/<project_id>/status")
async def api_project_status(project_id: str):
    """The original's STATUS.md, written from the project's description and task counts."""
    require_principal()
    project = await service.find(current_db(), project_id, with_stats=True)
    counts = await documents.status_counts(current_db(), project_id)
    return {"content": documents.status_markdown(project, counts), "projectId": project_id,
            "stats": {**service.stats(project), "byStatus": counts}}


@blueprint.get("/api/projects/<project_id>/project")
async def api_project_markdown(project_id: str):
    """The original's PROJECT.md, written from the project's record."""
    require_principal()
    return {"content": documents.project_markdown(await service.find(current_db(), project_id, with_stats=True)),
            "projectId": project_id}


@blueprint.get("/api/projects/<project_id>/handoff")
async def api_project_handoff(project_id: str):
    """The original's HANDOFF.md, written from the latest handoff notes of the project's tasks."""
    require_principal()
    project = await service.find(current_db(), project_id)
    return {"content": documents.handoff_markdown(project, await documents.handoffs(current_db(), project_id)),
            "projectId": project_id}


@blueprint.get("/api/projects/<project_id>/agents")
async def api_project_agents_md(project_id: str):
    """The original's parsed AGENTS.md ({active, completed, total}), from the project's associations."""
    require_principal()
    await service.find(current_db(), project_id)
    return {"projectId": project_id, **documents.agents_json(await associations.list_all(current_db(), project_id))}


@blueprint.get("/api/projects/<project_id>/agent-summary")
async def api_project_agent_summary(project_id: str):
    """Per agent, the project's tasks: {agents: [{agentId, taskCount, doneTasks, inProgress, lastActive, models}]}."""
    require_principal()
    await service.find(current_db(), project_id)
    return {"projectId": project_id, "agents": await documents.agent_summary(current_db(), project_id)}
