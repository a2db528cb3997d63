"""Agents and their sessions, read from the gateway's API (agents.list, sessions.list, sessions.describe).

Status follows the original: an agent whose latest session was active less than 2 minutes ago is
online, less than 60 minutes idle, otherwise offline. A session with a run in progress counts as now.
"""

from __future__ import annotations

import time
from typing import Any

from ..gateway.client import GatewayClient

ONLINE_MS = 2 * 60 * 1000
IDLE_MS = 60 * 60 * 1000
ROSTER_SESSIONS = 500
AGENT_SESSIONS = 100


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def model_name(model: Any) -> str | None:
    """agents.list gives a model as a string or as {primary, fallbacks}."""
    if isinstance(model, dict):
        model = model.get("primary")
    return model if isinstance(model, str) and model else None


def status_for(last_active_ms: int | None, running: bool = False, now_ms: int | None = None) -> str:
    if running:
        return "online"
    if last_active_ms is None:
        return "offline"
    age = (now_ms if now_ms is not None else int(time.time() * 1000)) - last_active_ms
    return "online" if age < ONLINE_MS else "idle" if age < IDLE_MS else "offline"


def session_json(row: dict) -> dict:
    """One sessions.list row in the shape this app's API and pages use."""
    return {
        "sessionKey": row.get("key"),
        "sessionId": row.get("sessionId"),
        "agentId": row.get("agentId"),
        "label": row.get("label") or row.get("displayName"),
        "status": row.get("status"),
        "running": bool(row.get("hasActiveRun")),
        "model": row.get("model"),
        "modelProvider": row.get("modelProvider"),
        "inputTokens": _int(row.get("inputTokens")),
        "outputTokens": _int(row.get("outputTokens")),
        "totalTokens": _int(row.get("totalTokens")),
        "estimatedCostUsd": _number(row.get("estimatedCostUsd")),
        "runtimeMs": _int(row.get("runtimeMs")),
        "createdAt": _int(row.get("createdAt")),
        "updatedAt": _int(row.get("updatedAt")),
        "chatType": row.get("chatType"),
        "lastChannel": row.get("lastChannel"),
        "kind": row.get("kind"),
        "spawnedBy": row.get("spawnedBy"),
    }


async def list_sessions(gateway: GatewayClient, agent_id: str | None = None, limit: int = AGENT_SESSIONS) -> list[dict]:
    params: dict[str, Any] = {"limit": limit}
    if agent_id:
        params["agentId"] = agent_id
    result = await gateway.request("sessions.list", params)
    rows = result.get("sessions") if isinstance(result, dict) else None
    sessions = [session_json(row) for row in rows or [] if isinstance(row, dict) and row.get("key")]
    sessions.sort(key=lambda s: s["updatedAt"] or 0, reverse=True)
    return sessions


async def describe_session(gateway: GatewayClient, session_key: str) -> dict | None:
    result = await gateway.request("sessions.describe", {"key": session_key})
    session = result.get("session") if isinstance(result, dict) else None
    return session_json(session) if isinstance(session, dict) else None


async def list_agents(gateway: GatewayClient) -> dict:
    """{defaultId, mainKey, agents: [...]} from agents.list (mainKey names each agent's main session,
    `agent:<id>:<mainKey>`; "main" when the gateway does not say)."""
    result = await gateway.request("agents.list")
    result = result if isinstance(result, dict) else {}
    agents = [agent for agent in result.get("agents") or [] if isinstance(agent, dict) and agent.get("id")]
    main_key = result.get("mainKey") if isinstance(result.get("mainKey"), str) and result.get("mainKey") else "main"
    return {"defaultId": result.get("defaultId"), "mainKey": main_key, "agents": agents}


async def roster(gateway: GatewayClient) -> list[dict]:
    """Every configured agent with its status, last activity and most recent session."""
    listed = await list_agents(gateway)
    sessions = await list_sessions(gateway, limit=ROSTER_SESSIONS)
    now_ms = int(time.time() * 1000)
    return [member_json(agent, listed["defaultId"], [s for s in sessions if s["agentId"] == agent["id"]], now_ms)
            for agent in listed["agents"]]


def member_json(agent: dict, default_id: str | None, own: list[dict], now_ms: int | None = None) -> dict:
    """One roster entry from an agents.list agent and its sessions (newest first)."""
    latest = own[0] if own else None
    running = any(s["running"] for s in own)
    last_active = latest["updatedAt"] if latest else None
    identity = agent.get("identity") if isinstance(agent.get("identity"), dict) else {}
    return {
        "id": agent["id"],
        "name": identity.get("name") or agent.get("name") or agent["id"],
        "emoji": identity.get("emoji"),
        "fullName": agent.get("name"),
        "model": model_name(agent.get("model")),
        "workspace": agent.get("workspace"),
        "isDefault": agent["id"] == default_id,
        "status": status_for(last_active, running, now_ms),
        "lastActive": last_active,
        "activeSession": latest["sessionKey"] if latest else None,
        "sessionCount": len(own),
        "running": running,
    }
