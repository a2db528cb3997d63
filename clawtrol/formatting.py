"""Jinja filters and globals for money, durations, dates and task cards."""

from __future__ import annotations

from datetime import timedelta

from quart import Quart

from .clock import from_epoch_ms, parse_iso, utcnow
from .tasks import access

DUE_SOON = timedelta(hours=24)


def money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"


def minutes(value: float | None) -> str:
    if value is None:
        return "—"
    total = int(round(value))
    hours, mins = divmod(total, 60)
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def runtime(ms: int | None) -> str:
    return "—" if ms is None else minutes(ms / 60000)


def due_state(task: dict) -> str | None:
    """'overdue', 'soon' (within 24 h) or None, for tasks not done."""
    if not task.get("due_date") or task.get("status") == "done":
        return None
    left = parse_iso(task["due_date"]) - utcnow()
    if left < timedelta(0):
        return "overdue"
    return "soon" if left <= DUE_SOON else None


def savings(task: dict) -> dict:
    """Money and time a done task saved against the human estimate (never negative)."""
    human, ai = task.get("human_cost"), task.get("cost") or 0.0
    human_minutes = task.get("estimated_human_minutes")
    return {
        "money": max(human - ai, 0.0) if human is not None else None,
        "minutes": max(human_minutes - (task.get("runtime") or 0) / 60000, 0.0) if human_minutes is not None else None,
    }


def model_label(model: str | None) -> str | None:
    """A short, friendly model name: 'anthropic/claude-sonnet-4-5' → 'claude-sonnet-4-5'."""
    if not model:
        return None
    return model.rsplit("/", 1)[-1][:40]


def stamp(value: str | None) -> str:
    """A stored ISO time as "YYYY-MM-DD HH:MM:SS" (UTC) for tables and lists."""
    return value[:19].replace("T", " ") if value else ""


def epoch_ms(value: int | float | None) -> str:
    """Milliseconds since the epoch (the gateway's times) as "YYYY-MM-DD HH:MM:SS" UTC."""
    return stamp(from_epoch_ms(value))


def initials(name: str | None) -> str:
    parts = (name or "?").replace("-", " ").split()
    return "".join(part[0] for part in parts[:2]).upper() or "?"


def install(app: Quart) -> None:
    app.add_template_filter(money)
    app.add_template_filter(minutes)
    app.add_template_filter(runtime)
    app.add_template_filter(model_label)
    app.add_template_filter(initials)
    app.add_template_filter(stamp)
    app.add_template_filter(epoch_ms)
    app.add_template_global(due_state)
    app.add_template_global(savings)
    app.add_template_global(access.can_edit, "can_edit_task")
