"""Exec approvals: from the gateway's payload to a row, and from a row to the API's JSON (the original's
keys, plus the linked task and who decided)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..agents.authority import started_by
from ..clock import from_epoch_ms, now_iso, parse_iso

DECISIONS = ("allow-once", "allow-always", "deny")
DECISION_LABELS = {"allow-once": "Allow once", "allow-always": "Allow always", "deny": "Deny"}
MAX_COMMAND = 20_000
MAX_PAYLOAD = 64_000
MAX_TEXT = 2_000


class NotAnApproval(ValueError):
    """A gateway payload without the fields an approval needs (an id and a command)."""


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\x00", "")[:limit] or None


def _command(request: dict) -> str | None:
    command = request.get("command")
    if command is None and isinstance(request.get("commandArgv"), list):
        command = " ".join(str(part) for part in request["commandArgv"])
    return _text(command, MAX_COMMAND)


def allowed_decisions(request: dict) -> list[str]:
    """The decisions the request offers: `allowedDecisions` if the gateway sent it, else every decision
    not listed in `unavailableDecisions`."""
    allowed = request.get("allowedDecisions")
    if isinstance(allowed, list):
        return [decision for decision in DECISIONS if decision in allowed]
    unavailable = request.get("unavailableDecisions")
    unavailable = unavailable if isinstance(unavailable, list) else []
    return [decision for decision in DECISIONS if decision not in unavailable]


def from_gateway(payload: Any) -> dict:
    """An `exec.approval.requested` payload (or one `exec.approval.list` item) as an approvals row."""
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or not payload["id"].strip():
        raise NotAnApproval("no approval id")
    request = payload.get("request") if isinstance(payload.get("request"), dict) else {}
    command = _command(request)
    if not command:
        raise NotAnApproval("no command")
    now = now_iso()
    raw = json.dumps(payload, default=str)
    return {
        "id": payload["id"].strip()[:200],
        "command": command,
        "cwd": _text(request.get("cwd")),
        "host": _text(request.get("host"), 200),
        "agent_id": _text(request.get("agentId"), 200),
        "session_key": _text(request.get("sessionKey"), 500),
        "allowed_decisions": json.dumps(allowed_decisions(request)),
        "requested_at": from_epoch_ms(payload.get("createdAtMs")) or now,
        "expires_at": from_epoch_ms(payload.get("expiresAtMs")),
        "payload": raw if len(raw) <= MAX_PAYLOAD else None,
        "now": now,
    }


def decisions_of(row: dict) -> list[str]:
    try:
        stored = json.loads(row.get("allowed_decisions") or "[]")
    except ValueError:
        return list(DECISIONS)
    return [decision for decision in DECISIONS if decision in stored]


def seconds_left(row: dict, now: datetime) -> int | None:
    if not row.get("expires_at"):
        return None
    return max(0, int((parse_iso(row["expires_at"]) - now).total_seconds()))


def to_json(row: dict, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    expires_at = row.get("expires_at")
    task = None
    if row.get("linked_task_id"):
        task = {"id": row["linked_task_id"], "title": row.get("task_title"), "status": row.get("task_status"),
                "projectId": row.get("project_id"), "projectName": row.get("project_name")}
    deciding = row["status"] == "pending" and row.get("decided_at") is not None
    return {
        "id": row["id"],
        "gatewayId": row.get("gateway_id"),
        "gatewayName": row.get("gateway_name"),
        "command": row["command"],
        "cwd": row.get("cwd"),
        "host": row.get("host"),
        "agentId": row.get("agent_id"),
        "sessionKey": row.get("session_key"),
        "taskId": row.get("linked_task_id"),
        "task": task,
        "startedBy": started_by(row),
        "allowedDecisions": decisions_of(row),
        "status": row["status"],
        "requestedAt": row.get("requested_at"),
        "expiresAt": expires_at,
        "expiresAtMs": int(parse_iso(expires_at).timestamp() * 1000) if expires_at else None,
        "expiresInSec": seconds_left(row, now),
        "decision": row.get("decision"),
        "resolvedBy": row.get("decided_by_label"),
        "automatic": row.get("decided_by_rule") is not None,  # decided by an approval rule (resolvedBy names it)
        "ruleId": row.get("decided_by_rule"),
        "resolvedAt": row.get("decided_at") if not deciding else None,
        "deciding": deciding,
        "closeReason": row.get("close_reason"),  # vanished (no longer listed by the gateway) | gateway_removed
    }
