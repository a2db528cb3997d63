"""Creating, changing and deleting tasks: validation, permissions, the review gate, done enrichment, the
audit trail (same transaction) and live events (after commit)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..audit import Actor, record
from ..auth.principal import Principal
from ..clock import new_id, now_iso
from ..db import Database, UniqueViolation
from ..errors import Conflict, Forbidden, GatewayUnreachable, InvalidInput, NotFound
from ..domain_events import TASK_UPDATED
from ..services import Call
from . import access, rules
from .model import EDITABLE_COLUMNS, NESTED, COLUMN, parse_changes, to_json

# Columns the task_rows view joins names to (project name and owner, assignee's login, name and avatar).
JOINED_COLUMNS = frozenset({"project_id", "assigned_to"})
# Changes whose old and new values the audit trail keeps (who points a task at which session or project).
TRACED_COLUMNS = ("session_key", "project_id")
API_NAME = {column: name for name, column in COLUMN.items()}
API_NAME.update({column: name for name, parts in NESTED.items() for column in parts.values()})


async def get(db: Database, task_id: str) -> dict:
    task = await db.one("tasks.get", id=task_id)
    if task is None:
        raise NotFound("Task not found")
    return task


async def search(db: Database, params: dict[str, Any], limit: int, offset: int) -> tuple[list[dict], int]:
    """A page of tasks matching the filters (TaskFilters.params), and how many match in all."""
    rows = await db.all("tasks.search", limit=limit, offset=offset, **params)
    if any(params.values()):
        return rows, await db.value("tasks.search_count", **params)
    return rows, await db.value("tasks.count_all")


async def _check_references(db: Database, changes: dict[str, Any]) -> None:
    if changes.get("project_id") and await db.one("projects.get", id=changes["project_id"]) is None:
        raise InvalidInput(f"projectId: no project with id {changes['project_id']!r}", field="projectId")
    if changes.get("assigned_to"):
        user = await db.one("users.get", id=changes["assigned_to"])
        if user is None or not user["active"]:
            raise InvalidInput(f"assignedTo: no active user with id {changes['assigned_to']!r}", field="assignedTo")


async def _apply_transition(db: Database, old_status: str | None, task: dict[str, Any]) -> None:
    """Entering review passes the gate; entering done stamps completion and the human-equivalent numbers."""
    if task["status"] == old_status:
        return
    if task["status"] == "review":
        task["commit_hash"] = rules.review_gate(task.get("handoff_notes"), task.get("commit_hash"))
    elif task["status"] == "done":
        task["completed_at"] = now_iso()
        rate = rules.hourly_rate((await db.one("settings.get", key="humanHourlyRate") or {}).get("value"))
        task["estimated_human_minutes"], task["human_cost"] = rules.human_equivalent(task, rate)


async def _session_gateway(db: Database, task: dict[str, Any], changes: dict[str, Any],
                           current: dict[str, Any] | None) -> None:
    """Set `task["session_gateway_id"]`, the gateway of its session link: the one the change names (it must
    exist), else the link's own when the key stays, else the only enabled gateway; none without a link. With
    several gateways a new link by hand must name its gateway (400)."""
    if not task.get("session_key"):
        task["session_gateway_id"] = None
        return
    requested = changes.get("session_gateway_id")
    if requested is not None:
        if await db.one("gateways.get", id=requested) is None:
            raise InvalidInput(f"sessionGatewayId: no gateway {requested!r}", field="sessionGatewayId")
        return
    if current is not None and current["session_key"] == task["session_key"] and current["session_gateway_id"]:
        task["session_gateway_id"] = current["session_gateway_id"]
        return
    from ..services import current_registry

    try:
        task["session_gateway_id"] = current_registry().pick(None)
    except RuntimeError:  # outside the app (scripts): the link's gateway stays unknown
        task["session_gateway_id"] = None
    except GatewayUnreachable:  # no gateway configured: unknown
        task["session_gateway_id"] = None
    except InvalidInput as error:
        raise InvalidInput("sessionGatewayId: required with a sessionKey, several gateways are enabled: "
                           + error.message.split(": ", 2)[-1], field="sessionGatewayId") from None


def _require_session_link(principal: Principal, old: tuple, new: tuple) -> None:
    """Only admins link a task to an agent session by hand (start work links the sessions it starts): the
    link names the session's task on the pages, so a member must not point their task at someone else's.
    `old` and `new` are (session key, its gateway)."""
    if new != old and not principal.is_admin:
        raise Forbidden("sessionKey: only an admin can link a task to an agent session by hand; start work links "
                        "the sessions it starts", code="FORBIDDEN", field="sessionKey")


def _actor_payload(actor: Actor) -> dict:
    return {"actor": actor.label, "actorId": actor.user_id or actor.token_id}


async def create(call: Call, body: dict) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    access.require_create(principal)
    changes = parse_changes(body)
    if not changes.get("title"):
        raise InvalidInput("title: required", field="title")
    task: dict[str, Any] = {column: None for column in EDITABLE_COLUMNS}
    task.update({"status": "backlog", "priority": "P2", "completed_at": None})
    task.update(changes)
    await _session_gateway(db, task, changes, None)
    _require_session_link(principal, (None, None), (task["session_key"], task["session_gateway_id"]))
    await _check_references(db, task)
    await _apply_transition(db, None, task)  # created straight into review or done: same rules
    task_id, now = new_id(), now_iso()
    try:
        async with db.transaction():
            await db.changed("tasks.insert", id=task_id, created_by=principal.user_id,
                             created_by_token=principal.token_id, created_at=now, updated_at=now, **task)
            await record(db, actor, "task.created", "task", task_id,
                         {"title": task["title"], "priority": task["priority"], "status": task["status"],
                          "projectId": task["project_id"]})
            if task["assigned_to"]:
                await record(db, actor, "task.assigned", "task", task_id,
                             {"title": task["title"], "from": None, "to": task["assigned_to"]})
    except UniqueViolation:
        raise Conflict("sessionKey: already linked to another task", field="sessionKey") from None
    created = await get(db, task_id)
    await call.hub.publish("task.created", {"task": to_json(created), **_actor_payload(actor)})
    return created


def _version(body: dict) -> int | None:
    version = body.pop("version", None)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInput("version: must be the whole number from the task you edited", field="version")
    return version


class _Raced(Exception):
    """Another writer changed the task between this transaction's read and its write."""


ATTEMPTS = 5  # a PATCH that keeps losing races to other writers gets 409 after this many tries


async def update(call: Call, task_id: str, body: dict, *,
                 also: Callable[[dict], Awaitable[None]] | None = None, links_session: bool = False) -> dict:
    """Apply a partial change. A stale `version` is refused with 409 and the current task.
    `also(task)` writes more in the same transaction, given the task before the change; `links_session`
    says the caller (start work) records the session it links, so the caller needs no admin role for it.

    Optimistic: the task is read, the change checked and merged, and the row written only if its version is
    still the one read (no lock statement first); a writer that lost the race starts over on the new row."""
    body = dict(body)
    expected_version = _version(body)
    changes = parse_changes(body)
    if not changes:
        raise InvalidInput("No updates provided")
    for _ in range(ATTEMPTS):
        try:
            return await _update_once(call, task_id, expected_version, changes, also, links_session)
        except _Raced:
            continue
    raise Conflict("This task is being changed by others right now; reload it and try again.",
                   code="VERSION_CONFLICT")


async def _update_once(call: Call, task_id: str, expected_version: int | None, changes: dict[str, Any],
                       also: Callable[[dict], Awaitable[None]] | None, links_session: bool) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    try:
        async with db.transaction():
            current = await get(db, task_id)
            access.require_edit(principal, current)
            if expected_version is not None and expected_version != current["version"]:
                raise Conflict("This task was changed by someone else since you loaded it; review the current "
                               "version and try again.", code="VERSION_CONFLICT",
                               extra={"task": to_json(current)})
            task = {column: current[column] for column in EDITABLE_COLUMNS}
            task["completed_at"] = current["completed_at"]
            task.update(changes)
            if "session_key" in changes or "session_gateway_id" in changes:
                await _session_gateway(db, task, changes, current)
                if not links_session:
                    _require_session_link(principal, (current["session_key"], current["session_gateway_id"]),
                                          (task["session_key"], task["session_gateway_id"]))
            await _check_references(db, {k: v for k, v in changes.items() if current.get(k) != v})
            await _apply_transition(db, current["status"], task)
            changed = [column for column in task if task[column] != current[column]]
            if not changed:
                return current
            now = now_iso()
            version = await db.value("tasks.update", id=task_id, version=current["version"], updated_at=now,
                                     **task)
            if version is None:
                raise _Raced()  # rolls this transaction back; the caller tries again on the new row
            await _audit_update(db, actor, current, task, changed)
            if also is not None:
                await also(current)
    except UniqueViolation:
        raise Conflict("sessionKey: already linked to another task", field="sessionKey") from None
    # The row as it is now, read again only when a name joined to it (project, assignee) changed with it.
    if JOINED_COLUMNS.isdisjoint(changed):
        updated = {**current, **task, "version": version, "updated_at": now}
    else:
        updated = await get(db, task_id)
    change = {"task": to_json(updated), "oldTask": to_json(current)}
    await call.hub.publish("task.updated", {**change, "updates": sorted({API_NAME.get(c, c) for c in changed}),
                                            **_actor_payload(actor)})
    call.services.events.emit(TASK_UPDATED, change)
    return updated


async def _audit_update(db: Database, actor: Actor, old: dict, new: dict, changed: list[str]) -> None:
    title = new["title"]
    if "status" in changed:
        await record(db, actor, "task.status_changed", "task", old["id"],
                     {"title": title, "from": old["status"], "to": new["status"]})
    if "assigned_to" in changed:
        await record(db, actor, "task.assigned", "task", old["id"],
                     {"title": title, "from": old["assigned_to"], "to": new["assigned_to"]})
    others = sorted({API_NAME[c] for c in changed if c in API_NAME and c not in ("status", "assigned_to")})
    if others:
        details: dict[str, Any] = {"title": title, "fields": others}
        traced = {API_NAME[c]: {"from": old[c], "to": new[c]} for c in TRACED_COLUMNS if c in changed}
        if traced:
            details["changes"] = traced
        await record(db, actor, "task.updated", "task", old["id"], details)


async def delete(call: Call, task_id: str) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    async with db.transaction():
        if not await db.changed("tasks.lock", id=task_id):
            raise NotFound("Task not found")
        task = await get(db, task_id)
        access.require_edit(principal, task)
        await db.changed("tasks.delete", id=task_id)
        await record(db, actor, "task.deleted", "task", task_id, {"title": task["title"], "status": task["status"]})
    await call.hub.publish("task.deleted", {"taskId": task_id, "task": to_json(task), **_actor_payload(actor)})
    return task
