"""The workflow rules agents rely on: the review gate, and the numbers filled in when a task is done."""

from __future__ import annotations

import math
import re

from ..errors import InvalidInput

REVIEW_HEADINGS = ("Files changed", "How tested", "Edge cases", "Rollback", "Commit hash")
NO_COMMIT = "NO_COMMIT"
_COMMIT_IN_NOTES = re.compile(r"commit(?:\s+hash)?\s*[:#=\-–]?\s*`?\b([0-9a-f]{7,40})\b", re.IGNORECASE)
MINUTES_PER_LINE = 3
AI_SPEEDUP = 10  # without line counts, a human is assumed to need 10× the agent's runtime
DEFAULT_HOURLY_RATE = 100.0


def extract_commit_hash(notes: str | None) -> str | None:
    match = _COMMIT_IN_NOTES.search(notes or "")
    return match.group(1).lower() if match else None


def review_gate(notes: str | None, commit_hash: str | None) -> str | None:
    """Refuse entry into review without the checklist; return the commit hash to store (or None).

    The handoff notes must contain the five checklist headings (case-sensitive, as the original) and either
    a commit hash (given, stored, or written in the notes) or the marker NO_COMMIT.
    """
    missing = [heading for heading in REVIEW_HEADINGS if heading not in (notes or "")]
    if missing:
        raise InvalidInput(f"Review checklist missing in handoffNotes: add {', '.join(missing)}",
                           field="handoffNotes", code="MISSING_REVIEW_CHECKLIST", extra={"missing": missing})
    found = commit_hash or extract_commit_hash(notes)
    if not found and NO_COMMIT not in (notes or ""):
        raise InvalidInput("Commit hash missing: set commitHash, write it under 'Commit hash' in handoffNotes, "
                           "or write NO_COMMIT", field="commitHash", code="MISSING_COMMIT_HASH")
    return found


def lines_changed(task: dict) -> int:
    """Lines added + removed (a missing one counts as 0); the total only when neither is known."""
    added, removed = task.get("lines_added"), task.get("lines_removed")
    if added is None and removed is None:
        return task.get("lines_total") or 0
    return (added or 0) + (removed or 0)


def estimated_minutes(task: dict) -> float | None:
    """Human minutes for a task without a stored estimate: lines × 3, else ceil(runtime seconds × 10 / 60)."""
    lines, runtime = lines_changed(task), task.get("runtime")
    if lines > 0:
        return float(lines * MINUTES_PER_LINE)
    if runtime is not None and runtime > 0:
        return float(math.ceil(runtime * AI_SPEEDUP / 60_000))  # runtime in ms; SQL: (runtime + 5999) / 6000
    return None


def price(minutes: float, hourly_rate: float) -> float:
    """Human minutes priced at the hourly rate (USD, not rounded)."""
    return minutes / 60 * hourly_rate


def human_equivalent(task: dict, hourly_rate: float) -> tuple[float | None, float | None]:
    """(estimated human minutes, human cost) for a task entering done, unless it already has them.

    The one rule of a done task's figures, also written as the view done_task_figures (migration 0010),
    which the Costs page, the costs API and the project rollups read (keep the two the same):
    a stored human cost wins and nothing is estimated (as in the original); otherwise the stored minutes, or
    else the estimate (`estimated_minutes`), priced at the hourly rate and rounded to cents.
    """
    minutes = task.get("estimated_human_minutes")
    cost = task.get("human_cost")
    if cost is not None:
        return minutes, cost
    if minutes is None:
        minutes = estimated_minutes(task)
    if minutes is None:
        return None, None
    return minutes, round(price(minutes, hourly_rate), 2)


def hourly_rate(setting: str | None) -> float:
    try:
        rate = float(setting) if setting is not None else DEFAULT_HOURLY_RATE
    except ValueError:
        return DEFAULT_HOURLY_RATE
    return rate if math.isfinite(rate) and rate >= 0 else DEFAULT_HOURLY_RATE
