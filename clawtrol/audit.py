"""The append-only audit trail. `record` joins the caller's transaction, so a change and its audit row
commit or roll back together."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .clock import new_id, now_iso
from .db import Database


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


async def record(db: Database, actor: Actor, action: str, entity_type: str | None = None,
                 entity_id: str | None = None, details: dict | None = None) -> str:
    audit_id = new_id()
    await db.changed(
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
    return audit_id
