"""The events a webhook can subscribe to, and which audit entries raise them."""

from __future__ import annotations

EVENTS = ("approval.requested", "approval.resolved", "approval.expired", "task.created", "task.status_changed",
          "task.done", "task.assigned", "task.deleted", "comment.created", "agent.stalled")
# The original's name for a new comment; a webhook subscribed to it receives comment.created under this name.
ALIASES = {"task.comment_added": "comment.created"}
VALID_EVENTS = EVENTS + tuple(ALIASES)
PING = "ping"  # sent by POST /api/webhooks/:id/test only

# audit action → the event it raises (see raised_by for the conditional ones)
_BY_ACTION = {
    "task.created": ("task.created",),
    "task.status_changed": ("task.status_changed",),
    "task.assigned": ("task.assigned",),
    "task.deleted": ("task.deleted",),
    "comment.created": ("comment.created",),
    "approval.requested": ("approval.requested",),
    "approval.resolved": ("approval.resolved",),
    "approval.auto_resolved": ("approval.resolved",),
    "approval.expired": ("approval.expired",),
}
ACTIONS = frozenset(_BY_ACTION)


def raised_by(action: str, details: dict | None) -> tuple[str, ...]:
    """The events an audit entry raises. A task moved to done raises task.done too. An approval a rule claimed
    as it arrived raises no approval.requested: nobody needs to act on it, and its approval.resolved follows."""
    events = _BY_ACTION.get(action, ())
    details = details or {}
    if action == "task.status_changed" and details.get("to") == "done":
        return events + ("task.done",)
    if action == "approval.requested" and details.get("ruleId"):
        return ()
    return events


def names_for(subscribed: list[str], event: str) -> list[str]:
    """The names under which a webhook subscribed to `subscribed` receives `event` (its alias too)."""
    names = [event] if event in subscribed else []
    names += [alias for alias, target in ALIASES.items() if target == event and alias in subscribed]
    return names
