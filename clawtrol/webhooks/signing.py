"""What a delivery sends: the body (json or slack), its headers and the signature.

    X-Clawtrol-Signature: sha256=<hex HMAC-SHA256 of "<X-Clawtrol-Timestamp>.<raw body>" with the secret>

The body is the same on every attempt; the timestamp (Unix seconds) is the attempt's, so a receiver can
refuse old replays. README ("Webhooks") shows how to check it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote

USER_AGENT = "Mission-Clawtrol-Webhooks"
DECISION_WORDS = {"allow-once": "allowed once", "allow-always": "allowed always", "deny": "denied"}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """The receiver's check (also what README shows)."""
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def headers(event: str, delivery_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Clawtrol-Event": event,
            "X-Clawtrol-Delivery": delivery_id, "X-Clawtrol-Timestamp": str(timestamp),
            "X-Clawtrol-Signature": signature}


def link(public_url: str, event: str, data: dict) -> str:
    """The page of the app where the event can be seen."""
    if event.startswith("approval."):
        return f"{public_url}/approvals"
    if event == "agent.stalled" and isinstance(data.get("session"), dict):
        session = data["session"]
        on = f"?gatewayId={quote(str(session['gatewayId']))}" if session.get("gatewayId") else ""
        return f"{public_url}/sessions/{quote(str(session.get('sessionKey')), safe=':')}{on}"
    task = data.get("task") if isinstance(data.get("task"), dict) else None
    if task and task.get("id") and event != "task.deleted":
        return f"{public_url}/board/tasks/{task['id']}"
    if event == "ping":
        return f"{public_url}/admin/webhooks"
    return f"{public_url}/board"


def _short(text: object, limit: int = 200) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(event: str, payload: dict) -> str:
    """One line for a chat message."""
    data, who = payload.get("data") or {}, payload.get("actor") or "Someone"
    approval, task = data.get("approval") or {}, data.get("task") or {}
    title = _short(task.get("title"), 120)
    command = _short(approval.get("command"))
    if event == "approval.requested":
        return f"Approval requested by {approval.get('agentId') or 'an agent'}: {command}"
    if event == "approval.resolved":
        verb = DECISION_WORDS.get(approval.get("decision"), "decided")
        return f"{approval.get('resolvedBy') or who} {verb}: {command}"
    if event == "approval.expired":
        return f"Approval expired unanswered: {command}"
    if event == "task.created":
        return f"{who} created '{title}'"
    if event == "task.status_changed":
        return f"{who} moved '{title}' from {data.get('from')} to {data.get('to')}"
    if event == "task.done":
        return f"{who} finished '{title}'"
    if event == "task.assigned":
        return f"{who} {'assigned' if data.get('to') else 'unassigned'} '{title}'"
    if event == "task.deleted":
        return f"{who} deleted '{title}'"
    if event in ("comment.created", "task.comment_added"):
        return f"{who} commented on '{title}': {_short((data.get('comment') or {}).get('content'))}"
    if event == "agent.stalled":
        session = data.get("session") or {}
        minutes = round((session.get("quietMs") or 0) / 60_000)
        on_task = f" on '{title}'" if title else ""
        where = f" on gateway {session['gatewayName']}" if session.get("gatewayName") else ""
        return f"Agent {session.get('agentId') or 'session'}{where} stalled{on_task}: no activity for {minutes} min"
    if event == "ping":
        return "A test delivery from Mission Clawtrol: this webhook works."
    return f"{event} by {who}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(delivery_id: str, event: str, payload: dict, fmt: str, public_url: str) -> bytes:
    """The bytes posted (and signed) for a delivery."""
    data = payload.get("data") or {}
    url = link(public_url, event, data)
    if fmt == "slack":
        document: dict = {"text": f"{_slack_escape(summary(event, payload))}\n<{url}|Open in Mission Clawtrol>"}
    else:
        document = {"id": delivery_id, "event": event, "occurredAt": payload.get("occurredAt"),
                    "actor": payload.get("actor"), "url": url, "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
