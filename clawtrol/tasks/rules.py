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


def human_equivalent(task: dict, hourly_rate: float) -> tuple[float | None, float | None]:
    """(estimated human minutes, human cost) for a task entering done, unless it already has them.

    Lines changed × 3 minutes; failing that, 10× the agent's runtime; priced at the hourly rate.
    """
    minutes = task.get("estimated_human_minutes")
    cost = task.get("human_cost")
    if cost is not None:
        return minutes, cost
    if minutes is None:
        lines = task.get("lines_total")
        if lines is None and (task.get("lines_added") is not None or task.get("lines_removed") is not None):
            lines = (task.get("lines_added") or 0) + (task.get("lines_removed") or 0)
        if lines:
            minutes = float(lines * MINUTES_PER_LINE)
        elif task.get("runtime"):
            minutes = float(math.ceil(task["runtime"] / 1000 * AI_SPEEDUP / 60))
    if minutes is None:
        return None, None
    return minutes, round(minutes / 60 * hourly_rate, 2)


def hourly_rate(setting: str | None) -> float:
    try:
        rate = float(setting) if setting is not None else DEFAULT_HOURLY_RATE
    except ValueError:
        return DEFAULT_HOURLY_RATE
    return rate if math.isfinite(rate) and rate >= 0 else DEFAULT_HOURLY_RATE
