"""The append-only audit trail. `record` joins the caller's transaction, so a change and its audit row
commit or roll back together."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from .clock import new_id, now_iso
from .db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who did something: a signed-in user, an API token, or the system itself."""

    kind: str  # "user" | "token" | "system"
    label: str
    user_id: str | None = None
    token_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Actor(kind="system", label="system")

@dataclass(frozen=True)
class Entry:
    """An audit entry as it was written, for the watchers."""

    actor: Actor
    action: str
    entity_type: str | None
    entity_id: str | None
    details: dict | None
    # How many webhooks were enabled, read by the INSERT itself: with none (the usual case) the webhook outbox
    # needs no read of its own, and a change costs one round trip less.
    enabled_webhooks: int


Watcher = Callable[[Database, Entry], Awaitable[None]]
_watchers: list[Watcher] = []


def watch(watcher: Watcher) -> None:
    """Also run `watcher(db, entry)` for every entry, inside the same transaction (the webhook outbox,
    clawtrol/webhooks/outbox.py). Registering one twice is harmless."""
    if watcher not in _watchers:
        _watchers.append(watcher)


async def record(db: Database, actor: Actor, action: str, entity_type: str | None = None,
                 entity_id: str | None = None, details: dict | None = None) -> str:
    audit_id = new_id()
    written = await db.one(
        "audit.insert",
        id=audit_id,
        user_id=actor.user_id,
        token_id=actor.token_id,
        actor_kind=actor.kind,
        actor_label=actor.label,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details=json.dumps(details, sort_keys=True) if details is not None else None,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:300] or None,
        created_at=now_iso(),
    )
    entry = Entry(actor, action, entity_type, entity_id, details, int(written["enabled_webhooks"]))
    for watcher in _watchers:
        await watcher(db, entry)
    return audit_id


async def record_refusal(db: Database, actor: Actor, action: str, entity_type: str | None, entity_id: str | None,
                         reason: str, details: dict | None = None) -> None:
    """A refused attempt at a sensitive action (`<action>_refused`, with the reason), logged and audited on
    its own: nothing else was written."""
    log.warning("refused", extra={"action": action, "actor": actor.label, "ip": actor.ip, "reason": reason,
                                  "entity": entity_id})
    await record(db, actor, f"{action}_refused", entity_type, entity_id, {**(details or {}), "reason": reason})


FILTERS = ("action", "entity_type", "entity_id", "user_id", "actor", "since", "before")


async def search(db: Database, limit: int = 100, **filters: str | None) -> list[dict]:
    """Audit entries, newest first; filters (see FILTERS) left out or None match anything."""
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise TypeError(f"unknown audit filters: {sorted(unknown)}")
    values = {name: (filters.get(name) or None) for name in FILTERS}
    return [_with_details(row) for row in await db.all("audit.search", limit=limit, **values)]


async def actions(db: Database) -> list[str]:
    """Every action the log holds, for the page's filter."""
    return [row["action"] for row in await db.all("audit.actions")]


def _with_details(row: dict) -> dict:
    raw = row.get("details")
    row["details"] = json.loads(raw) if isinstance(raw, str) and raw else raw
    return row


def to_json(entry: dict) -> dict:
    """The original's audit shape (parsed details), plus who acted and from where."""
    return {
        "id": entry["id"], "userId": entry["user_id"], "tokenId": entry["token_id"],
        "actorKind": entry["actor_kind"], "actor": entry["actor_label"], "action": entry["action"],
        "entityType": entry["entity_type"], "entityId": entry["entity_id"], "details": entry["details"],
        "ip": entry["ip"], "createdAt": entry["created_at"], "summary": describe(entry),
    }


def describe(entry: dict) -> str:
    """One human-readable line, e.g. "ada changed mel's role from member to viewer"."""
    who = entry["actor_label"] or entry["actor_kind"]
    d = entry["details"] or {}
    target = d.get("login") or d.get("name") or d.get("title") or entry["entity_id"] or ""
    action = entry["action"]
    sentences = {
        "auth.signed_in": lambda: f"{who} signed in" + (" (first admin)" if d.get("firstAdmin") else ""),
        "auth.signed_out": lambda: f"{who} signed out",
        "auth.refused": lambda: f"sign-in refused for {d.get('login') or 'an unknown account'} ({d.get('reason')})",
        "user.role_changed": lambda: f"{who} changed {target}'s role from {d.get('from')} to {d.get('to')}",
        "user.deactivated": lambda: f"{who} deactivated {target}",
        "user.reactivated": lambda: f"{who} reactivated {target}",
        "user.deleted": lambda: f"{who} deleted user {target}",
        "token.created": lambda: f"{who} created API token {target} ({d.get('role')})",
        "token.revoked": lambda: f"{who} revoked API token {target}",
        "task.created": lambda: f"{who} created '{target}'",
        # Entries imported from the original app say {oldStatus, newStatus}.
        "task.status_changed": lambda: f"{who} moved '{target}' from {d.get('from', d.get('oldStatus'))} to "
                                       f"{d.get('to', d.get('newStatus'))}",
        "task.assigned": lambda: f"{who} {'assigned' if d.get('to') else 'unassigned'} '{target}'",
        "task.updated": lambda: f"{who} edited {', '.join(d.get('fields') or [])} of '{target}'",
        "task.deleted": lambda: f"{who} deleted '{target}'",
        "comment.created": lambda: f"{who} commented on '{target}'" if d.get("title") else f"{who} commented",
        "comment.updated": lambda: f"{who} edited a comment",
        "comment.deleted": lambda: f"{who} deleted a comment",
        "activity.posted": lambda: f"{who} posted {d.get('type')} activity" + (f": {d['message']}" if d.get("message")
                                                                              else ""),
        "association.registered": lambda: f"{who} registered session {entry['entity_id']} for project "
                                          f"{d.get('projectId')}",
        "agent.model_changed": lambda: f"{who} changed the model of session {entry['entity_id']} from "
                                       f"{d.get('from') or 'the default'} to {d.get('to')}",
        "agent.session_deleted": lambda: f"{who} deleted session {entry['entity_id']}",
        "approval.auto_resolved": lambda: f"rule '{d.get('rule')}' decided {d.get('decision')}: {d.get('command')}",
        "approval_rule.reordered": lambda: f"{who} reordered the approval rules",
        "webhook.created": lambda: f"{who} added a webhook to {d.get('url')}",
        "webhook.updated": lambda: f"{who} changed the webhook to {d.get('url')}",
        "webhook.deleted": lambda: f"{who} deleted the webhook to {d.get('url')}",
        "webhook.tested": lambda: f"{who} sent a test event to {d.get('url')}",
        "webhook.redelivered": lambda: f"{who} queued {d.get('event')} delivery {d.get('deliveryId')} again",
    }
    if action in sentences:
        return sentences[action]()
    noun = (entry["entity_type"] or "").replace("_", " ")
    return f"{who} {action.split('.', 1)[-1].replace('_', ' ')} {noun} {target}".strip()
