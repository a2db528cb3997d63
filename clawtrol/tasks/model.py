"""The task's JSON shape (the original's camelCase) and strict validation of incoming fields."""

from __future__ import annotations

import math
from datetime import datetime, time, timezone
from typing import Any, Callable

from ..clock import iso, parse_iso
from ..errors import InvalidInput

STATUSES = ("backlog", "todo", "in-progress", "review", "done")
STATUS_LABELS = {"backlog": "Backlog", "todo": "To do", "in-progress": "In progress", "review": "Review",
                 "done": "Done"}
PRIORITIES = ("P0", "P1", "P2", "P3")
PRIORITY_LABELS = {"P0": "Critical", "P1": "High", "P2": "Medium", "P3": "Low"}


def _text(max_length: int, required: bool = False) -> Callable[[str, Any], Any]:
    def check(field: str, value: Any) -> Any:
        if value is None:
            if required:
                raise InvalidInput(f"{field}: required, cannot be null", field=field)
            return None
        if not isinstance(value, str):
            raise InvalidInput(f"{field}: must be a string", field=field)
        if "\x00" in value:
            raise InvalidInput(f"{field}: must not contain NUL characters", field=field)
        value = value.strip()
        if required and not value:
            raise InvalidInput(f"{field}: must not be blank", field=field)
        if len(value) > max_length:
            raise InvalidInput(f"{field}: at most {max_length} characters", field=field)
        return value or None
    return check


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], Any]:
    def check(field: str, value: Any) -> Any:
        if value not in options:
            raise InvalidInput(f"{field}: must be one of {', '.join(options)}", field=field)
        return value
    return check


INT32_MAX = 2**31 - 1
SAFE_INT_MAX = 2**53  # exact in JSON clients' floats, and within BIGINT
FLOAT_MAX = 1e12


def _number(integer: bool = False, maximum: float = FLOAT_MAX) -> Callable[[str, Any], Any]:
    def check(field: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"{field}: must be a {'whole ' if integer else ''}number or null", field=field)
        if isinstance(value, int) and abs(value) > maximum:  # before any float conversion can overflow
            raise InvalidInput(f"{field}: at most {maximum:.0f}", field=field)
        if not math.isfinite(value):
            raise InvalidInput(f"{field}: must be a finite number", field=field)
        if integer and value != int(value):
            raise InvalidInput(f"{field}: must be a whole number", field=field)
        if value < 0:
            raise InvalidInput(f"{field}: must not be negative", field=field)
        if value > maximum:
            raise InvalidInput(f"{field}: at most {maximum:.0f}", field=field)
        return int(value) if integer else float(value)
    return check


def _due_date(field: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be an ISO-8601 date or null", field=field)
    try:
        if len(value) == 10:  # a plain date means the end of that day, UTC
            return iso(datetime.combine(datetime.fromisoformat(value).date(), time(23, 59, 59), timezone.utc))
        return iso(parse_iso(value))
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field}: not a valid ISO-8601 date, e.g. 2026-03-31", field=field) from None


def _id(field: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidInput(f"{field}: must be an id string or null", field=field)
    return value


def _counts(parts: tuple[str, ...], maximum: int) -> Callable[[str, Any], Any]:
    number = _number(integer=True, maximum=maximum)

    def check(field: str, value: Any) -> Any:
        if value is None:
            return {part: None for part in parts}
        if not isinstance(value, dict):
            raise InvalidInput(f"{field}: must be an object {{{', '.join(parts)}}} or null", field=field)
        unknown = sorted(set(value) - set(parts))
        if unknown:
            raise InvalidInput(f"{field}: unknown key(s) {', '.join(unknown)}", field=field)
        return {part: number(f"{field}.{part}", value.get(part)) for part in parts}
    return check


# camelCase API field → validator. Everything a client may set on a task.
WRITABLE: dict[str, Callable[[str, Any], Any]] = {
    "title": _text(500, required=True),
    "description": _text(20_000),
    "status": _choice(STATUSES),
    "priority": _choice(PRIORITIES),
    "projectId": _id,
    "agentId": _text(100),
    "assignedTo": _id,
    "sessionKey": _text(300),
    "sessionGatewayId": _id,  # the gateway of the session link (defaults: tasks/service.py)
    "handoffNotes": _text(50_000),
    "commitHash": _text(200),
    "linesChanged": _counts(("added", "removed", "total"), INT32_MAX),
    "estimatedHumanMinutes": _number(),
    "humanCost": _number(),
    "cost": _number(),
    "runtime": _number(integer=True, maximum=SAFE_INT_MAX),
    "model": _text(100),
    "tokens": _counts(("input", "output", "total"), SAFE_INT_MAX),
    "dueDate": _due_date,
}
READ_ONLY = ("id", "createdAt", "createdBy", "updatedAt", "completedAt", "userId", "createdByToken")

COLUMN = {
    "title": "title", "description": "description", "status": "status", "priority": "priority",
    "projectId": "project_id", "agentId": "agent_id", "assignedTo": "assigned_to", "sessionKey": "session_key",
    "sessionGatewayId": "session_gateway_id",
    "handoffNotes": "handoff_notes", "commitHash": "commit_hash",
    "estimatedHumanMinutes": "estimated_human_minutes", "humanCost": "human_cost", "cost": "cost",
    "runtime": "runtime", "model": "model", "dueDate": "due_date",
}
NESTED = {
    "linesChanged": {"added": "lines_added", "removed": "lines_removed", "total": "lines_total"},
    "tokens": {"input": "tokens_input", "output": "tokens_output", "total": "tokens_total"},
}
EDITABLE_COLUMNS = tuple(COLUMN.values()) + tuple(c for parts in NESTED.values() for c in parts.values())


def parse_changes(body: dict) -> dict[str, Any]:
    """Validate API fields and return {column: value}. Read-only fields are refused by name."""
    refused = [name for name in READ_ONLY if name in body]
    if refused:
        raise InvalidInput(f"{refused[0]}: cannot be set by clients", field=refused[0])
    changes: dict[str, Any] = {}
    for name, value in body.items():
        checked = WRITABLE[name](name, value)
        if name in NESTED:
            for part, column in NESTED[name].items():
                changes[column] = checked[part]
            if name == "linesChanged" and value is not None and checked["total"] is None:
                total = (checked["added"] or 0) + (checked["removed"] or 0)
                if total > INT32_MAX:
                    raise InvalidInput(f"linesChanged.total: at most {INT32_MAX}", field="linesChanged.total")
                changes["lines_total"] = total
        else:
            changes[COLUMN[name]] = checked
    return changes


def _nested(row: dict, parts: dict[str, str]) -> dict | None:
    values = {part: row.get(column) for part, column in parts.items()}
    return values if any(v is not None for v in values.values()) else None


def to_json(row: dict) -> dict:
    """The original's task shape: camelCase, lines and tokens nested, plus our version and assignee."""
    task = {
        "id": row["id"], "title": row["title"], "description": row["description"], "status": row["status"],
        "priority": row["priority"], "projectId": row["project_id"], "agentId": row["agent_id"],
        "sessionKey": row["session_key"], "sessionGatewayId": row.get("session_gateway_id"),
        "handoffNotes": row["handoff_notes"], "commitHash": row["commit_hash"],
        "estimatedHumanMinutes": row["estimated_human_minutes"], "humanCost": row["human_cost"],
        "cost": row["cost"], "runtime": row["runtime"], "model": row["model"],
        "createdAt": row["created_at"], "updatedAt": row["updated_at"], "completedAt": row["completed_at"],
        "createdBy": row["created_by"], "createdByToken": row["created_by_token"],
        "assignedTo": row["assigned_to"], "dueDate": row["due_date"], "version": row["version"],
    }
    for name, parts in NESTED.items():
        nested = _nested(row, parts)
        if nested is not None:
            task[name] = nested
    return task
