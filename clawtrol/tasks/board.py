"""What the kanban board reads: one column's page of cards, the count per column, and the choices its forms
offer (active people, projects). Filters come as TaskFilters.params (without status and agent)."""

from __future__ import annotations

from typing import Any

from ..db import Database
from ..projects import service as projects
from .model import STATUSES


async def column(db: Database, status: str, params: dict[str, Any], limit: int, offset: int) -> list[dict]:
    """A page of one column's cards: open columns by priority, done by completion (newest first)."""
    if status == "done":
        return await db.all("tasks.board_done", limit=limit, offset=offset, **params)
    return await db.all("tasks.board_column", status=status, limit=limit, offset=offset, **params)


async def counts(db: Database, params: dict[str, Any]) -> dict[str, int]:
    found = {status: 0 for status in STATUSES}
    found.update({row["status"]: row["n"] for row in await db.all("tasks.board_counts", **params)})
    return found


async def form_choices(db: Database) -> dict[str, list[dict]]:
    """Whom a task can be assigned to (active people) and which projects it can belong to."""
    users = [user for user in await db.all("users.list") if user["active"]]
    return {"users": users, "projects": await projects.options(db)}
