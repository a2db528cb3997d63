"""The kanban board: the page, its columns and cards as htmx fragments, the task detail dialog, the new-task
dialog, drag-and-drop moves and comments. Every fragment is rendered with the viewer's own permissions."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from quart import Blueprint, render_template, request
from werkzeug.datastructures import MultiDict

from .. import audit, htmx
from ..agents import work
from ..auth.principal import current_principal, require_principal
from ..errors import Forbidden, InvalidInput, NotFound, Refused
from ..payload import form_int, query_int
from ..services import current_call, current_db, current_registry
from ..tasks import access, board, comments, service
from ..tasks.filters import TaskFilters
from ..tasks.model import PRIORITIES, PRIORITY_LABELS, STATUS_LABELS, STATUSES

blueprint = Blueprint("board", __name__)

COLUMN_PAGE = {"done": 20}
OPEN_COLUMN_PAGE = 30
FORM_FIELDS = ("title", "description", "status", "priority", "projectId", "agentId", "assignedTo", "dueDate",
               "handoffNotes", "commitHash")


def _page_size(status: str) -> int:
    return COLUMN_PAGE.get(status, OPEN_COLUMN_PAGE)


FILTER_KEYS = ("q", "assignee", "project")


def _board_filters() -> TaskFilters:
    """Filters of the board the request came from: its own query string when it carries them (full page,
    "show more"), otherwise the page's address (HX-Current-URL) for moves, edits and live refreshes."""
    if any(key in request.args for key in FILTER_KEYS):
        return TaskFilters.from_args(request.args, project_key="project")
    current = htmx.current_url()
    if current:
        return TaskFilters.from_args(MultiDict(parse_qsl(urlsplit(current).query)), project_key="project")
    return TaskFilters()


def _params(filters: TaskFilters) -> dict:
    return filters.params(current_principal(), with_status=False, with_agent=False)


async def _column(status: str, filters: TaskFilters, offset: int = 0) -> dict:
    tasks = await board.column(current_db(), status, _params(filters), _page_size(status), offset)
    return {"status": status, "label": STATUS_LABELS[status], "tasks": tasks, "offset": offset + len(tasks)}


async def _counts(filters: TaskFilters) -> dict[str, int]:
    return await board.counts(current_db(), _params(filters))


async def _render_columns(statuses, filters: TaskFilters, oob: bool) -> str:
    counts = await _counts(filters)
    parts = []
    for status in dict.fromkeys(statuses):
        column = await _column(status, filters)
        parts.append(await render_template("board/_column.html", column=column, count=counts[status],
                                           filters=filters, oob=oob))
    return "".join(parts)


async def _choices() -> dict:
    return {**await board.form_choices(current_db()), "statuses": STATUSES, "status_labels": STATUS_LABELS,
            "priorities": PRIORITIES, "priority_labels": PRIORITY_LABELS}


# --- the board -------------------------------------------------------------------------------------

@blueprint.get("/board")
async def board_page():
    principal = require_principal()
    filters = TaskFilters.from_args(request.args, project_key="project")
    counts = await _counts(filters)
    columns = [await _column(status, filters) for status in STATUSES]
    template = "board/_columns.html" if htmx.is_htmx() else "board/index.html"
    return await render_template(template, columns=columns, counts=counts, filters=filters,
                                 can_create=access.can_create(principal), **await _choices())


@blueprint.get("/board/columns")
async def columns_fragment():
    """Several columns at once, out of band, so a live refresh swaps them together (a card moving between
    two columns is never shown in both, or in neither)."""
    require_principal()
    statuses = [status for status in request.args.getlist("status") if status in STATUSES]
    if not statuses:
        raise InvalidInput(f"status: one or more of {', '.join(STATUSES)}", field="status")
    return await _render_columns(statuses, _board_filters(), oob=True), 200, htmx.no_swap()


@blueprint.get("/board/columns/<status>")
async def column_fragment(status: str):
    require_principal()
    if status not in STATUSES:
        raise NotFound("No such column")
    filters = _board_filters()
    offset = query_int("offset", 0, 0, 10**9)
    column = await _column(status, filters, offset)
    counts = await _counts(filters)
    template = "board/_more_cards.html" if offset else "board/_column.html"
    return await render_template(template, column=column, count=counts[status], filters=filters, oob=False)


@blueprint.post("/board/tasks/<task_id>/move")
async def move_task(task_id: str):
    """Drag-and-drop: the columns involved come back out of band (server truth, so a refused move snaps
    back), with a toast saying why when it was refused."""
    call = current_call()
    before = await service.get(call.db, task_id)
    status = request.args.get("status", "")
    version = request.args.get("version", "")
    headers: dict = {}
    try:
        await service.update(call, task_id, {"status": status, "version": form_int(version)})
    except (Refused, Forbidden) as error:  # the card stays where it was; a toast says why
        headers = htmx.toast(error.message, "error")
    statuses = [before["status"]] + ([status] if status in STATUSES else [])
    html = await _render_columns(statuses, _board_filters(), oob=True)
    return html, 200, htmx.no_swap() | headers


# --- task detail and editing -----------------------------------------------------------------------

async def _detail(task_id: str, error: str | None = None, status: int = 200, notice: str | None = None):
    db = current_db()
    task = await service.get(db, task_id)
    history = await audit.search(db, 50, entity_type="task", entity_id=task_id)
    thread = await comments.list_for_task(db, task_id)
    principal = current_principal()
    return await render_template(
        "board/_detail.html", task=task, history=history, comments=thread, error=error, notice=notice,
        can_edit=access.can_edit(principal, task), can_comment=access.can_create(principal),
        can_moderate=lambda c: access.can_moderate_comment(principal, c), describe=audit.describe,
        **await _start_choices(task), **await _choices()), status


async def _start_choices(task: dict) -> dict:
    """Which gateway start work would use (the project's default, else the only one), the gateways to choose
    from when there are several, and whether start work can run now."""
    registry = current_registry()
    connections = registry.connections()
    try:
        start_gateway = registry.pick(None, await work.default_gateway_for(current_db(), task))
    except Refused:
        start_gateway = None  # several and no default: the form asks
    connected = registry.is_connected(start_gateway) if start_gateway else registry.any_connected
    return {"gateway_connected": connected, "start_gateway": start_gateway,
            "gateway_choices": connections if len(connections) > 1 else [],
            "session_gateway_name": registry.name(task.get("session_gateway_id"))}


@blueprint.get("/board/tasks/<task_id>")
async def task_detail(task_id: str):
    require_principal()
    html, status = await _detail(task_id)
    if htmx.is_htmx():
        return html, status
    return await render_template("board/task_page.html", detail=html), status


@blueprint.post("/board/tasks/<task_id>/start")
async def start_work(task_id: str):
    """"Start work" in the task dialog: send the task to an agent; the dialog shows the outcome."""
    form = await request.form
    try:
        result = await work.start_work(current_call(), task_id, form.get("agentId") or None,
                                       gateway_id=form.get("gatewayId") or None)
    except Refused as error:
        html, _ = await _detail(task_id, error=error.message)
        return html
    notice = f"Sent to agent {result['agentId']} in session {result['childSessionKey']}"
    notice += f" on gateway {result['gatewayName']}." if result.get("gatewayName") else "."
    html, _ = await _detail(task_id, notice=notice)
    return html


def _form_changes(form) -> dict:
    """Form fields → API fields (empty optional inputs clear the value)."""
    body: dict = {}
    for name in FORM_FIELDS:
        if name in form:
            value = form[name]
            body[name] = value if value.strip() or name in ("title",) else None
    return body


@blueprint.post("/board/tasks/<task_id>")
async def update_task(task_id: str):
    call = current_call()
    form = await request.form
    before = await service.get(call.db, task_id)
    body = _form_changes(form)
    body["version"] = form_int(form.get("version", ""))
    try:
        task = await service.update(call, task_id, body)
    except Refused as error:
        html, status = await _detail(task_id, error=error.message, status=error.status)
        return html, status
    html, status = await _detail(task_id, notice="Saved.")
    columns = await _render_columns([before["status"], task["status"]], _board_filters(), oob=True)
    return html + columns, status


@blueprint.delete("/board/tasks/<task_id>")
async def delete_task(task_id: str):
    task = await service.delete(current_call(), task_id)
    columns = await _render_columns([task["status"]], _board_filters(), oob=True)
    return columns, 200, htmx.no_swap() | htmx.close_dialog()


@blueprint.get("/board/new")
async def new_task_form():
    principal = require_principal()
    access.require_create(principal)
    return await render_template("board/_new.html", form={}, error=None, **await _choices())


@blueprint.post("/board/tasks")
async def create_task():
    call = current_call()
    form = await request.form
    body = {k: v for k, v in _form_changes(form).items() if v is not None}
    try:
        task = await service.create(call, body)
    except Refused as error:
        return await render_template("board/_new.html", form=form, error=error.message, **await _choices()), 400
    columns = await _render_columns([task["status"]], _board_filters(), oob=True)
    return columns, 200, htmx.no_swap() | htmx.close_dialog()


# --- comments --------------------------------------------------------------------------------------

async def _thread(task_id: str, error: str | None = None, status: int = 200):
    principal = current_principal()
    thread = await comments.list_for_task(current_db(), task_id)
    return await render_template("board/_comments.html", task_id=task_id, comments=thread, error=error,
                                 can_comment=access.can_create(principal),
                                 can_moderate=lambda c: access.can_moderate_comment(principal, c)), status


@blueprint.get("/board/tasks/<task_id>/comments")
async def comment_thread(task_id: str):
    require_principal()
    return await _thread(task_id)


@blueprint.post("/board/tasks/<task_id>/comments")
async def add_comment(task_id: str):
    call = current_call()
    form = await request.form
    try:
        await comments.create(call, task_id, form.get("content"))
    except Refused as error:
        return await _thread(task_id, error.message, error.status)
    return await _thread(task_id)


@blueprint.post("/board/tasks/<task_id>/comments/<comment_id>")
async def edit_comment(task_id: str, comment_id: str):
    call = current_call()
    form = await request.form
    try:
        await comments.update(call, task_id, comment_id, form.get("content"))
    except Refused as error:
        return await _thread(task_id, error.message, error.status)
    return await _thread(task_id)


@blueprint.delete("/board/tasks/<task_id>/comments/<comment_id>")
async def delete_comment(task_id: str, comment_id: str):
    await comments.delete(current_call(), task_id, comment_id)
    return await _thread(task_id)
