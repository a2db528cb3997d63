"""The cost figures of done tasks, read with the named queries in sql/queries/costs.sql.

Per task the figures come from the view done_task_figures (migration 0010, where the one rule is written;
clawtrol/tasks/rules.py stores the same values when a task enters done): lines are added + removed (the
total only when neither is known); the human cost is the stored one, or else the task's human minutes
(stored, or lines × 3, or 10× its runtime) priced here at the current `humanHourlyRate` setting. Runtime is
stored in milliseconds. Money and minutes are rounded to cents and hundredths here; savings are the rounded
human cost minus the rounded AI cost, so the figures shown always add up.
"""

from __future__ import annotations

from typing import Any

from ..db import Database
from ..tasks import rules
from .periods import Range


async def hourly_rate(db: Database) -> float:
    row = await db.one("settings.get", key="humanHourlyRate")
    return rules.hourly_rate(row["value"] if row else None)


def _round(value: Any, digits: int = 2) -> float:
    return round(float(value or 0), digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def _human_cost(row: dict, rate: float) -> float:
    """The stored human costs plus the unpriced minutes at the rate (sums of done_task_figures)."""
    return float(row["human_cost"] or 0) + rules.price(float(row["unpriced_minutes"] or 0), rate)


def _figures(row: dict, rate: float) -> dict[str, Any]:
    ai, human = _round(row["ai_cost"]), _round(_human_cost(row, rate))
    return {"tasks": int(row["tasks"]), "lines": int(row["lines"] or 0), "aiCost": ai, "humanCost": human,
            "savings": _round(human - ai)}


async def summary(db: Database, rate: float) -> dict[str, Any]:
    row = await db.one("costs.summary")
    ai, human = _round(row["ai_cost"]), _round(_human_cost(row, rate))
    runtime_ms = int(row["runtime_ms"] or 0)
    human_minutes = float(row["human_minutes"] or 0)
    return {
        "totalTasks": int(row["tasks"]),
        "totalLines": int(row["lines"] or 0),
        "totalAiCost": ai,
        "totalHumanCost": human,
        "totalAiSeconds": _round(runtime_ms / 1000, 3),
        "totalHumanMinutes": _round(human_minutes),
        "netSavings": _round(human - ai),
        "hoursSaved": _round(max(0.0, (human_minutes - runtime_ms / 1000 / 60) / 60)),
    }


def _by_savings(items: list[dict], key: str) -> list[dict]:
    return sorted(items, key=lambda item: (-item["savings"], str(item[key])))


async def by_agent(db: Database, rate: float) -> list[dict[str, Any]]:
    rows = await db.all("costs.by_agent")
    return _by_savings([{"agentId": row["agent_id"], **_figures(row, rate)} for row in rows], "agentId")


async def by_project(db: Database, rate: float) -> list[dict[str, Any]]:
    rows = await db.all("costs.by_project")
    return _by_savings([{"projectId": row["project_id"], "projectName": row["project_name"], **_figures(row, rate)}
                        for row in rows], "projectId")


async def over_time(db: Database, rate: float, span: Range) -> list[dict[str, Any]]:
    """One point per bucket of the range, empty buckets included (zeros), oldest first."""
    start, end = span.bounds
    totals = {bucket: {"tasks": 0, "lines": 0, "ai_cost": 0.0, "human_cost": 0.0, "unpriced_minutes": 0.0}
              for bucket in span.buckets()}
    for row in await db.all("costs.by_day", start=start, end=end):
        bucket = totals[span.bucket_of(row["day"])]
        for key in bucket:
            bucket[key] += float(row[key] or 0)
    return [{"date": bucket, **_figures(values, rate)} for bucket, values in totals.items()]


async def recent(db: Database, rate: float, limit: int) -> list[dict[str, Any]]:
    """The latest done tasks (rows with the effective, backfilled human figures and savings)."""
    rows = await db.all("costs.recent", limit=limit)
    for row in rows:
        if row["unpriced_minutes"] is not None:
            row["human_cost"] = rules.price(float(row["unpriced_minutes"]), rate)
        row["human_cost"] = _round(row["human_cost"]) if row["human_cost"] is not None else None
        row["human_minutes"] = _round(row["human_minutes"]) if row["human_minutes"] is not None else None
        row["lines"] = int(row["lines"] or 0)
        row["savings"] = _round((row["human_cost"] or 0) - _round(row["cost"]))
    return rows


def recent_json(row: dict) -> dict[str, Any]:
    return {
        "id": row["id"], "title": row["title"], "agentId": row["agent_id"], "projectId": row["project_id"],
        "model": row["model"], "cost": row["cost"], "runtime": row["runtime"], "humanCost": row["human_cost"],
        "estimatedHumanMinutes": row["human_minutes"], "linesAdded": row["lines_added"],
        "linesRemoved": row["lines_removed"], "linesTotal": row["lines_total"], "completedAt": row["completed_at"],
        "savings": row["savings"],
    }


RECENT_COLUMNS = ("id", "title", "agentId", "projectId", "model", "cost", "runtime", "humanCost",
                  "estimatedHumanMinutes", "linesAdded", "linesRemoved", "linesTotal", "completedAt", "savings")

# Sortable columns of the recent table: name in the URL → (row field, default direction).
SORTS = {
    "completedAt": ("completed_at", "desc"), "title": ("title", "asc"), "agentId": ("agent_id", "asc"),
    "projectId": ("project_label", "asc"), "lines": ("lines", "desc"), "runtime": ("runtime", "desc"),
    "cost": ("cost", "desc"), "humanCost": ("human_cost", "desc"), "savings": ("savings", "desc"),
}


def sort_rows(rows: list[dict], sort: str, direction: str) -> list[dict]:
    """Rows ordered by one column; rows without a value go last either way, ties keep recency order."""
    field = SORTS[sort][0]
    for row in rows:
        row["project_label"] = row.get("project_name") or row.get("project_id")

    def value(row: dict) -> Any:
        v = row[field]
        return v.lower() if isinstance(v, str) and field != "completed_at" else v

    present = [row for row in rows if row[field] is not None]
    missing = [row for row in rows if row[field] is None]
    present.sort(key=value, reverse=direction == "desc")
    return present + missing
