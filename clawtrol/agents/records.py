"""What the app itself recorded about agent sessions: who started which session on which gateway (start work,
the fact authority comes from: agents/authority.py) and which task links to a session."""

from __future__ import annotations

from ..db import Database


async def session_start(db: Database, gateway_id: str, session_key: str) -> dict | None:
    """The start work record of the session on that gateway (who started it), or None."""
    return await db.one("agents.session_start", gateway_id=gateway_id, session_key=session_key)


async def task_for_session(db: Database, gateway_id: str, session_key: str) -> dict | None:
    return await db.one("agents.task_for_session", gateway_id=gateway_id, session_key=session_key)


async def tasks_for_sessions(db: Database, gateway_id: str, keys: list[str]) -> dict[str, dict]:
    """The tasks linked to these sessions of one gateway, by session key."""
    if not keys:
        return {}
    rows = await db.all("agents.tasks_for_sessions", gateway_id=gateway_id, keys=keys)
    return {row["session_key"]: row for row in rows}


async def session_gateways(db: Database, session_key: str) -> list[str]:
    """The gateways a session key is recorded on (task links and start work records), most specific first."""
    return [row["gateway_id"] for row in await db.all("agents.session_gateways", session_key=session_key)]
