"""Agents: the roster, each agent's sessions and a session's transcript (all from the gateway's API),
messages to a session, and the JSON API (the original's paths where they exist)."""

from __future__ import annotations

import json

from quart import Blueprint, current_app, render_template, request

from ..agents import control, lookup, roster, transcript, work
from ..agents.associations import agent_of
from ..agents.health import HealthTracker
from ..agents.authority import over_session, started_by
from ..auth.principal import current_actor, current_principal, require_principal
from ..db import current_db
from ..errors import ApiError
from ..gateway import answers
from ..gateway.client import GatewayClient, GatewayError
from ..live import current_hub
from ..payload import json_object, query_int
from ..tasks.model import to_json

blueprint = Blueprint("agents", __name__)


def _gateway() -> GatewayClient:
    return current_app.extensions["gateway"]


def _health() -> HealthTracker:
    return current_app.extensions["agent_health"]


async def _roster(gateway: GatewayClient) -> list[dict]:
    return _health().annotate_agents(await roster.roster(gateway))


async def _sessions(gateway: GatewayClient, agent_id: str | None, limit: int) -> list[dict]:
    return _health().annotate_sessions(await roster.list_sessions(gateway, agent_id, limit))


async def _from_gateway(call):
    """Run a gateway read; 503 when disconnected, 502 when the gateway refuses."""
    gateway = _gateway()
    answers.require_connected(gateway)
    try:
        return await call(gateway)
    except GatewayError as error:
        raise answers.failure(error) from None


async def _linked_tasks(sessions: list[dict]) -> dict[str, dict]:
    keys = [s["sessionKey"] for s in sessions if s["sessionKey"]]
    rows = await current_db().all("agents.tasks_for_sessions", keys=keys) if keys else []
    return {row["session_key"]: row for row in rows}


async def _page(template: str, load, **context):
    """Render a gateway-backed page; when the gateway is down or refuses, the page says so instead."""
    require_principal()
    try:
        context.update(await load())
        problem = None
    except ApiError as error:
        problem = error.message
    return await render_template(template, problem=problem, **context)


# --- pages -----------------------------------------------------------------------------------------------

@blueprint.get("/agents")
async def roster_page():
    async def load():
        return {"agents": await _from_gateway(_roster)}
    # while the gateway is down: the agents of the last poll, offline
    return await _page("agents/roster.html", load, agents=_health().last_roster(),
                       stall_minutes=current_app.config["CLAWTROL"].stall_minutes)


@blueprint.get("/agents/<agent_id>")
async def agent_page(agent_id: str):
    async def load():
        sessions = await _from_gateway(lambda gateway: _sessions(gateway, agent_id, roster.AGENT_SESSIONS))
        return {"sessions": sessions, "tasks": await _linked_tasks(sessions)}
    return await _page("agents/sessions.html", load, agent_id=agent_id, sessions=[], tasks={})


@blueprint.get("/sessions/<path:session_key>")
async def session_page(session_key: str):
    limit = query_int("limit", transcript.DEFAULT_LIMIT, 1, transcript.MAX_LIMIT)

    async def load():
        return {"history": await _from_gateway(lambda gateway: transcript.history(gateway, session_key, limit))}
    task = await current_db().one("agents.task_for_session", session_key=session_key)
    start = await current_db().one("agents.session_start", session_key=session_key)
    authority = over_session(current_principal(), start, deciding=False)
    parts = session_key.split(":")  # agent:<agentId>:<name>
    agent_id = parts[1] if len(parts) >= 3 and parts[0] == "agent" else None
    return await _page("agents/transcript.html", load, session_key=session_key, task=task, history=None,
                       authority=authority, started_by=started_by(start), agent_id=agent_id,
                       health=_health().session_state(session_key))


@blueprint.post("/sessions/<path:session_key>/message")
async def message_form(session_key: str):
    """Send, then answer with an empty form (or the draft kept, when it failed) and a toast."""
    form = await request.form
    draft = form.get("message")
    try:
        await work.message(current_db(), _gateway(), require_principal(), current_actor(), session_key, draft)
        toast, draft = {"message": "Message sent to the agent.", "level": "success"}, None
    except ApiError as error:
        if error.status == 401:
            raise
        toast = {"message": error.message, "level": "error"}
    html = await render_template("agents/_message_form.html", session_key=session_key, draft=draft)
    return html, 200, {"HX-Trigger": json.dumps({"clawtrol:toast": toast})}


# --- JSON API --------------------------------------------------------------------------------------------

@blueprint.get("/api/agents/roster")
async def api_roster():
    require_principal()
    return {"agents": await _from_gateway(_roster)}


@blueprint.get("/api/agents")
async def api_sessions_all():
    require_principal()
    sessions = await _from_gateway(lambda gateway: _sessions(gateway, None, roster.ROSTER_SESSIONS))
    return {"sessions": sessions, "count": len(sessions)}


@blueprint.get("/api/sessions/<agent_id>")
async def api_agent_sessions(agent_id: str):
    require_principal()
    limit = query_int("limit", roster.AGENT_SESSIONS, 1, roster.ROSTER_SESSIONS)
    sessions = await _from_gateway(lambda gateway: _sessions(gateway, agent_id, limit))
    tasks = await _linked_tasks(sessions)
    for session in sessions:
        linked = tasks.get(session["sessionKey"])
        session["taskId"] = linked["id"] if linked else None
    return {"agentId": agent_id, "sessions": sessions, "totalSessions": len(sessions)}


@blueprint.get("/api/sessions/<agent_id>/<session_id>")
async def api_session(agent_id: str, session_id: str):
    """One session, by key or by session id (the original's shape, plus its task and who started it)."""
    require_principal()
    session = await _from_gateway(lambda gateway: lookup.find_session(gateway, agent_id, session_id))
    linked = (await _linked_tasks([session])).get(session["sessionKey"])
    start = await current_db().one("agents.session_start", session_key=session["sessionKey"])
    return {**session, "agentId": session["agentId"] or agent_id, "taskId": linked["id"] if linked else None,
            "startedBy": started_by(start), "health": _health().describe_session(session)}


@blueprint.get("/api/sessions/<agent_id>/<path:session_key>/transcript")
async def api_transcript(agent_id: str, session_key: str):
    """A session's transcript; the session by its key or (as the original allowed) by its session id."""
    require_principal()
    limit = query_int("limit", transcript.DEFAULT_LIMIT, 1, transcript.MAX_LIMIT)
    if ":" not in session_key:  # a session id, or a key such as "global"
        try:
            found = await _from_gateway(lambda gateway: lookup.find_session(gateway, agent_id, session_key))
            session_key = found["sessionKey"]
        except ApiError as error:
            if error.status != 404:
                raise
    history = await _from_gateway(lambda gateway: transcript.history(gateway, session_key, limit))
    start = await current_db().one("agents.session_start", session_key=session_key)
    return {"agentId": agent_id, **history, "startedBy": started_by(start),
            "authority": over_session(current_principal(), start, deciding=False).to_json("canMessage")}


@blueprint.post("/api/agents/spawn")
async def api_start_work():
    """The original's spawn, for a task: {taskId, agentId?, task?} (`label` is taken as the agent id, `task` as
    extra instructions; the original's `model` and `projectId` are accepted and ignored: the agent's own model
    runs, and the project is the task's)."""
    body = await json_object({"taskId", "agentId", "label", "task", "model", "projectId"})
    if not isinstance(body.get("taskId"), str) or not body["taskId"]:
        raise ApiError("taskId: required; work is always started on a task", field="taskId")
    result = await work.start_work(current_db(), current_hub(), _gateway(), require_principal(), current_actor(),
                                   body["taskId"], body.get("agentId") or body.get("label"),
                                   current_app.config["CLAWTROL"].public_url, body.get("task"))
    return {**result, "task": to_json(result["task"])}, 201


@blueprint.post("/api/agents/<path:session_key>/message")
async def api_message(session_key: str):
    body = await json_object({"message"})
    return await work.message(current_db(), _gateway(), require_principal(), current_actor(), session_key,
                              body.get("message"))


@blueprint.get("/api/agents/subagents")
async def api_subagents():
    require_principal()
    subagents = await _from_gateway(lookup.subagents)
    return {"subagents": subagents, "count": len(subagents)}


@blueprint.get("/api/agents/<agent_id>")
async def api_agent(agent_id: str):
    """A roster agent by id, or (as the original) a session by its key."""
    require_principal()
    found = await _from_gateway(lambda gateway: lookup.agent(gateway, agent_id))
    if isinstance(found.get("session"), dict):  # a session by its key
        found["health"] = found["session"]["health"] = _health().describe_session(found["session"])
    else:
        found["health"] = _health().agent_state(found["id"])
    return found


@blueprint.get("/api/agents/<agent_id>/history")
async def api_agent_history(agent_id: str):
    """The recent messages of an agent's main session (or of the session a key names)."""
    require_principal()
    limit = query_int("limit", 20, 1, transcript.MAX_LIMIT)

    async def load(gateway: GatewayClient) -> dict:
        target = await lookup.resolve(gateway, agent_id)
        if target.agent is None:
            await lookup.session(gateway, target.session_key)  # 404 for a session the gateway does not have
        return {"agentId": target.agent["id"] if target.agent else agent_of(target.session_key),
                **await transcript.history(gateway, target.session_key, limit)}
    return await _from_gateway(load)


@blueprint.patch("/api/agents/<agent_id>/model")
async def api_agent_model(agent_id: str):
    """Change the model of a session (or of an agent's main session) through the gateway's sessions.patch."""
    principal = require_principal()
    body = await json_object({"model"})
    return await control.change_model(current_db(), _gateway(), principal, current_actor(), agent_id,
                                      body.get("model"))


@blueprint.delete("/api/agents/<agent_id>")
async def api_delete_session(agent_id: str):
    """Delete a session on the gateway (the original's DELETE /api/agents/:sessionKey)."""
    principal = require_principal()
    return await control.delete_session(current_db(), _gateway(), principal, current_actor(), agent_id)
