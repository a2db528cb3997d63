"""One agent, one session, and the subagent sessions, from the gateway, in the original's shapes.

The original's `/api/agents/:id` took a session key (its agent list was main's sessions); this app's roster
has real agent ids. `resolve` accepts both: an id with a colon is a session key, any other id names an agent
of the roster, whose main session is `agent:<id>:<mainKey>` (mainKey from agents.list, usually "main").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import from_epoch_ms
from ..errors import ApiError, NotFound
from ..gateway.client import GatewayClient
from . import roster

MAX_SUBAGENTS = 50


@dataclass(frozen=True)
class Target:
    session_key: str
    agent: dict | None = None  # the roster entry when the id named an agent


def not_found(what: str) -> ApiError:
    return NotFound(f"{what} not found")


def _named(listed: dict, ident: str) -> dict:
    """The agents.list entry with this id; 404 when the gateway has no such agent."""
    found = next((agent for agent in listed["agents"] if agent["id"] == ident), None)
    if found is None:
        raise not_found("Agent")
    return found


async def resolve(gateway: GatewayClient, ident: str) -> Target:
    """The session an `/api/agents/:id` path means; 404 for an agent the gateway does not have."""
    if ":" in ident:
        return Target(ident)
    listed = await roster.list_agents(gateway)
    return Target(f"agent:{ident}:{listed['mainKey']}", _named(listed, ident))


async def session(gateway: GatewayClient, session_key: str) -> dict:
    """The session's sessions.describe row (this app's session shape); 404 when the gateway has none."""
    found = await roster.describe_session(gateway, session_key)
    if found is None:
        raise not_found("Session")
    return found


def name_and_role(session_key: str, main_key: str = "main") -> tuple[str, str]:
    """A readable name for a session key, as the original: agent:x:subagent:fix-login:1 → "Fix Login"."""
    parts = session_key.split(":")
    if parts[0] == "agent" and len(parts) >= 3:
        if parts[2] == "subagent":
            label = parts[3] if len(parts) > 3 and parts[3] else "subagent"
            return " ".join(word.capitalize() for word in label.split("-")), "Subagent"
        return parts[2].capitalize(), "Primary Assistant" if parts[2] == main_key else "Agent"
    if parts[0] == "voice" and len(parts) > 1:
        return f"Voice ({parts[1]})", "Voice Call Agent"
    return session_key, "Agent"


def working_status(session_row: dict) -> str:
    """The original's session status words: working (< 2 min), idle (< 60 min), offline."""
    status = roster.status_for(session_row["updatedAt"], session_row["running"])
    return "working" if status == "online" else status


def session_as_agent(session_row: dict) -> dict:
    """A session in the original's `/api/agents/:id` shape, plus this app's session fields."""
    name, role = name_and_role(session_row["sessionKey"])
    return {
        "id": session_row["sessionKey"], "name": session_row["label"] or name, "role": role,
        "status": working_status(session_row), "lastActive": from_epoch_ms(session_row["updatedAt"]),
        "model": session_row["model"], "provider": session_row["modelProvider"],
        "tokens": session_row["totalTokens"], "channel": session_row["lastChannel"],
        "sessionId": session_row["sessionId"], "session": session_row,
    }


async def agent(gateway: GatewayClient, ident: str) -> dict:
    """`/api/agents/:id`: a roster agent (with its main session's key), or a session by its key."""
    if ":" in ident:
        return session_as_agent(await session(gateway, ident))
    listed = await roster.list_agents(gateway)
    found = _named(listed, ident)
    own = [s for s in await roster.list_sessions(gateway, limit=roster.ROSTER_SESSIONS) if s["agentId"] == ident]
    return {**roster.member_json(found, listed["defaultId"], own), "mainSession": f"agent:{ident}:{listed['mainKey']}"}


async def find_session(gateway: GatewayClient, agent_id: str, ref: str) -> dict:
    """`/api/sessions/:agentId/:sessionId`: by session key or by session id, within that agent."""
    if ":" in ref:
        found = await session(gateway, ref)
    else:
        sessions = await roster.list_sessions(gateway, agent_id, roster.ROSTER_SESSIONS)
        found = next((s for s in sessions if s["sessionId"] == ref), None)
    if found is None or (found["agentId"] not in (None, agent_id)):
        raise not_found("Session")
    return found


def is_subagent(session_row: dict) -> bool:
    return ":subagent:" in (session_row["sessionKey"] or "") or bool(session_row.get("spawnedBy"))


async def subagents(gateway: GatewayClient) -> list[dict]:
    """Subagent sessions (spawned by another session), newest first, at most 50, in the original's shape."""
    sessions = await roster.list_sessions(gateway, None, roster.ROSTER_SESSIONS)
    return [{"id": s["sessionKey"], "sessionKey": s["sessionKey"], "agentId": s["agentId"], "label": s["label"],
             "status": working_status(s), "lastActive": from_epoch_ms(s["updatedAt"]), "model": s["model"],
             "tokens": s["totalTokens"], "spawnedBy": s["spawnedBy"]}
            for s in sessions if is_subagent(s)][:MAX_SUBAGENTS]
