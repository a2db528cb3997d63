"""The overview: headline cards, the status breakdown, what needs attention, and recent activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

from . import audit
from .activity import feed
from .agents import records
from .agents.health import HealthTracker
from .approvals.gate import pending_count
from .costs import report
from .clock import iso, now_iso, utcnow
from .db import Database
from .tasks.model import STATUS_LABELS, STATUSES

ATTENTION_LIMIT = 15
ACTIVITY_LIMIT = 15


def reasons(task: dict, now: str) -> list[str]:
    """Why a task is on the needs-attention list."""
    found = []
    if task["status"] == "review":
        found.append("waiting for review")
    if task["status"] in ("todo", "in-progress") and not task["assigned_to"] and not task["agent_id"]:
        found.append("nobody on it")
    if task["priority"] in ("P0", "P1"):
        found.append(f"{task['priority']} and not done")
    if task["due_date"] and task["due_date"] < now:
        found.append("overdue")
    return found


async def build(db: Database, health: HealthTracker | None = None,
                names: Callable[[str], str | None] | None = None) -> dict:
    """`names`: a gateway's name by id (default: the app's registry), for the stalled sessions."""
    now = now_iso()
    totals = await db.one("overview.totals", since=iso(utcnow() - timedelta(days=7)))
    counts = {row["status"]: row["n"] for row in await db.all(
        "tasks.board_counts", project_id=None, assigned_to=None, unassigned=0, q=None)}
    attention = await db.all("overview.needs_attention", now=now, limit=ATTENTION_LIMIT)
    summary = await report.summary(db, await report.hourly_rate(db))
    return {
        "total": totals["total"] or 0,
        "done_this_week": totals["done_recently"] or 0,
        "active_agents": totals["active_agents"] or 0,
        "pending_approvals": await pending_count(db),
        "net_savings": summary["netSavings"],
        "breakdown": [{"status": s, "label": STATUS_LABELS[s], "count": counts.get(s, 0)} for s in STATUSES],
        "peak": max(counts.values(), default=0),
        "attention": [{**task, "reasons": reasons(task, now)} for task in attention],
        "activity": await recent_activity(db),
        "stalled": await stalled_sessions(db, health, names) if health is not None else [],
        "several_gateways": _several_gateways(),
    }


def _gateway_names() -> Callable[[str], str | None]:
    try:
        from .services import current_registry

        return current_registry().name
    except (RuntimeError, KeyError):  # outside the app
        return lambda _gateway_id: None


def _several_gateways() -> bool:
    try:
        from .services import current_registry

        return len(current_registry().connections()) > 1
    except (RuntimeError, KeyError):
        return False


async def stalled_sessions(db: Database, health: HealthTracker,
                           names: Callable[[str], str | None] | None = None) -> list[dict]:
    """Stalled agent sessions of every gateway (from the health cache), each with its gateway's name and the
    task linked to it, if any."""
    names = names or _gateway_names()
    stalled = health.stalled()[:ATTENTION_LIMIT]
    tasks: dict[tuple[str, str], dict] = {}
    for gateway_id in {session["gatewayId"] for session in stalled}:
        keys = [session["sessionKey"] for session in stalled if session["gatewayId"] == gateway_id]
        for key, row in (await records.tasks_for_sessions(db, gateway_id, keys)).items():
            tasks[(gateway_id, key)] = row
    return [{**session, "gatewayName": names(session["gatewayId"]),
             "task": tasks.get((session["gatewayId"], session["sessionKey"]))} for session in stalled]


async def recent_activity(db: Database, limit: int = ACTIVITY_LIMIT) -> list[dict]:
    """The audit trail's latest entries and the latest posted activity events, newest first, as
    {created_at, text, event (the posted event's type and severity, or None)}."""
    entries = [{"created_at": entry["created_at"], "text": audit.describe(entry), "event": None}
               for entry in await audit.search(db, limit * 2)
               if entry["action"] != "activity.posted"][:limit]  # the posted event itself is listed
    events = [{"created_at": event["created_at"], "text": feed.describe(event),
               "event": {"type": event["type"], "severity": event["severity"]}}
              for event in await feed.recent(db, limit)]
    return sorted(entries + events, key=lambda item: item["created_at"], reverse=True)[:limit]
