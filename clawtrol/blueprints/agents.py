"""Agents: the roster, each agent's sessions and a session's transcript (all from the gateways' API), messages
to a session, and the JSON API (the original's paths where they exist).

Several gateways: lists (the roster, sessions, subagents) ask every enabled gateway at once, each with a short
time limit, and group or tag what they find by gateway (`gatewayId`); a gateway that is down shows as offline
and never slows the others. Everything about one session or agent takes an optional `gatewayId` (query
parameter, or JSON body field): without it, the gateway of the session's task link, else the only enabled
gateway (400 naming the choices when there are several)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from quart import Blueprint, render_template, request

from ..agents import control, lookup, records, roster, transcript, work
from ..agents.associations import agent_of
from ..agents.health import HealthTracker
from ..agents.authority import over_session, started_by
from .. import htmx
from ..auth.principal import current_principal, require_principal
from ..errors import ApiError, Forbidden, GatewayTrouble, GatewayUnreachable, InvalidInput, NotFound, Refused
from ..gateway import answers
from ..gateway.client import GatewayClient, GatewayError
from ..gateways.registry import GatewayRegistry
from ..payload import json_object, query_int
from ..services import current_call, current_db, current_registry, services
from ..tasks.model import to_json

blueprint = Blueprint("agents", __name__)

PAGE_TIMEOUT = 5.0  # seconds a page waits for one connected gateway before showing it as not answering
API_TIMEOUT = 15.0  # the same for a list API (a disconnected gateway is never waited for)


def _registry() -> GatewayRegistry:
    return current_registry()


def _health() -> HealthTracker:
    return services().agent_health


def _requested(body: dict | None = None) -> str | None:
    """The gateway a request names: its JSON body's `gatewayId`, else the `gatewayId` query parameter."""
    value = body.get("gatewayId") if body else None
    if value in (None, ""):
        value = request.args.get("gatewayId") or None
    return value


async def _session_gateway(session_key: str, body: dict | None = None) -> str:
    return await work.pick_for_session(current_db(), _registry(), _requested(body), session_key)


async def _target_gateway(ident: str, body: dict | None = None) -> str:
    """For `/api/agents/:id`: a session key defaults like any session; an agent id to the only gateway."""
    if ":" in ident:
        return await _session_gateway(ident, body)
    return _registry().pick(_requested(body))


async def _from_gateway(gateway_id: str, call: Callable[[GatewayClient], Awaitable[Any]]):
    """Run a read on one gateway; 404 for an unknown one, 503 when disconnected, 502 when it refuses."""
    gateway = _registry().client(gateway_id)
    answers.require_connected(gateway)
    try:
        return await call(gateway)
    except GatewayError as error:
        raise answers.failure(error) from None


@dataclass
class Answer:
    """What one gateway answered to a list read (or why it did not)."""

    id: str
    name: str
    connected: bool
    result: Any = None
    error: ApiError | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "connected": self.connected,
                "error": self.error.message if self.error else None}


async def _each_gateway(call: Callable[[str, GatewayClient], Awaitable[Any]],
                        timeout: float = API_TIMEOUT) -> list[Answer]:
    """Run a read on every enabled gateway (or the one `gatewayId` names) concurrently, each within `timeout`;
    a gateway that is down or slow gets its error, the others their result."""
    registry = _registry()
    requested = _requested()
    connections = [registry.get(registry.pick(requested))] if requested else registry.connections()

    async def one(connection) -> Answer:
        answer = Answer(connection.id, connection.name, connection.connected)
        try:
            if connection.client is None:
                registry.client(connection.id)  # raises why there is none
            answers.require_connected(connection.client)
            async with asyncio.timeout(timeout):
                answer.result = await call(connection.id, connection.client)
        except GatewayTrouble as error:
            answer.error = error
        except GatewayError as error:
            answer.error = answers.failure(error)
        except TimeoutError:
            answer.error = GatewayUnreachable(f"The OpenClaw gateway {connection.name} did not answer in time.",
                                              code="GATEWAY_UNAVAILABLE")
        return answer
    return list(await asyncio.gather(*(one(connection) for connection in connections)))


def _require_some(found: list[Answer]) -> None:
    """A list API answers when at least one gateway did; when none did, the first one's error (503/502)."""
    if not found:
        raise GatewayUnreachable("No OpenClaw gateway is configured; an admin adds one on Admin › Gateways.",
                                 code="GATEWAY_UNAVAILABLE")
    if all(answer.error is not None for answer in found):
        raise found[0].error  # type: ignore[misc]


def _tag(items: list[dict], answer: Answer) -> list[dict]:
    for item in items:
        item["gatewayId"], item["gatewayName"] = answer.id, answer.name
    return items


async def _roster(gateway_id: str, gateway: GatewayClient) -> list[dict]:
    return _health().annotate_agents(gateway_id, await roster.roster(gateway))


async def _sessions(gateway_id: str, gateway: GatewayClient, agent_id: str | None, limit: int) -> list[dict]:
    return _health().annotate_sessions(gateway_id, await roster.list_sessions(gateway, agent_id, limit))


async def _linked_tasks(gateway_id: str, sessions: list[dict]) -> dict[str, dict]:
    return await records.tasks_for_sessions(current_db(), gateway_id,
                                            [s["sessionKey"] for s in sessions if s["sessionKey"]])


async def _all_sessions(agent_id: str | None, limit: int, timeout: float = API_TIMEOUT
                        ) -> tuple[list[dict], list[Answer]]:
    """Sessions of every gateway (of one agent, or all), newest first, each with its gateway and linked task."""
    found = await _each_gateway(lambda gateway_id, gateway: _sessions(gateway_id, gateway, agent_id, limit),
                                timeout)
    sessions = []
    for answer in found:
        if answer.error is None:
            own = _tag(answer.result, answer)
            tasks = await _linked_tasks(answer.id, own)
            for session in own:
                linked = tasks.get(session["sessionKey"])
                session["taskId"], session["task"] = (linked["id"], dict(linked)) if linked else (None, None)
            sessions += own
    sessions.sort(key=lambda s: s["updatedAt"] or 0, reverse=True)
    return sessions, found


def _problems(found: list[Answer]) -> str | None:
    problems = [f"{answer.name}: {answer.error.message}" for answer in found if answer.error is not None]
    if not found:
        return "No OpenClaw gateway is configured; an admin adds one on Admin › Gateways."
    if len(found) == 1 and problems:
        return found[0].error.message  # type: ignore[union-attr]
    return " · ".join(problems) or None


# --- pages -----------------------------------------------------------------------------------------------

@blueprint.get("/agents")
async def roster_page():
    """The roster, grouped by gateway; a gateway that is down shows its agents of the last poll, offline."""
    require_principal()
    try:
        found = await _each_gateway(_roster, PAGE_TIMEOUT)
    except (Refused, GatewayTrouble) as error:  # an unknown gatewayId, no gateway
        found, problem = [], error.message
    else:
        problem = _problems(found) if found else _problems([])
    groups = []
    for answer in found:
        agents = _tag(answer.result if answer.error is None else _health().last_roster(answer.id), answer)
        groups.append({**answer.to_json(), "agents": agents})
    return await render_template("agents/roster.html", groups=groups, problem=problem,
                                 agents=[agent for group in groups for agent in group["agents"]],
                                 several=len(_registry().connections()) > 1,
                                 stall_minutes=services().config.stall_minutes)


@blueprint.get("/agents/<agent_id>")
async def agent_page(agent_id: str):
    require_principal()
    try:
        sessions, found = await _all_sessions(agent_id, roster.AGENT_SESSIONS, PAGE_TIMEOUT)
        problem = _problems(found)
    except (Refused, GatewayTrouble) as error:
        sessions, problem = [], error.message
    return await render_template("agents/sessions.html", agent_id=agent_id, sessions=sessions, problem=problem,
                                 several=len(_registry().connections()) > 1, gateway_id=_requested())


@blueprint.get("/sessions/<path:session_key>")
async def session_page(session_key: str):
    require_principal()
    limit = query_int("limit", transcript.DEFAULT_LIMIT, 1, transcript.MAX_LIMIT)
    db, registry = current_db(), _registry()
    context: dict[str, Any] = {"session_key": session_key, "history": None, "task": None, "started_by": None,
                               "health": None, "gateway_id": None, "gateway_name": None, "problem": None,
                               "several": len(registry.connections()) > 1}
    parts = session_key.split(":")  # agent:<agentId>:<name>
    context["agent_id"] = parts[1] if len(parts) >= 3 and parts[0] == "agent" else None
    try:
        gateway_id = await _session_gateway(session_key)
    except (Refused, GatewayTrouble) as error:  # several gateways and nothing says which: the page offers them
        context.update(problem=error.message, authority=over_session(current_principal(), None, deciding=False),
                       choices=registry.connections())
        return await render_template("agents/transcript.html", **context)
    start = await records.session_start(db, gateway_id, session_key)
    context.update(gateway_id=gateway_id, gateway_name=registry.name(gateway_id), started_by=started_by(start),
                   task=await records.task_for_session(db, gateway_id, session_key),
                   authority=over_session(current_principal(), start, deciding=False),
                   health=_health().session_state(session_key, gateway_id))
    try:
        context["history"] = await _from_gateway(gateway_id,
                                                 lambda gateway: transcript.history(gateway, session_key, limit))
    except (Refused, NotFound, GatewayTrouble) as error:
        context["problem"] = error.message
    return await render_template("agents/transcript.html", **context)


@blueprint.post("/sessions/<path:session_key>/message")
async def message_form(session_key: str):
    """Send, then answer with an empty form (or the draft kept, when it failed) and a toast."""
    form = await request.form
    draft = form.get("message")
    gateway_id = form.get("gatewayId") or None
    call = current_call()
    try:
        gateway_id = await _session_gateway(session_key, {"gatewayId": gateway_id})
        await work.message(call, gateway_id, session_key, draft)
        toast, draft = htmx.toast("Message sent to the agent.", "success"), None
    except (Refused, Forbidden, NotFound, GatewayTrouble) as error:  # the form stays; a toast says why
        toast = htmx.toast(error.message, "error")
    html = await render_template("agents/_message_form.html", session_key=session_key, draft=draft,
                                 gateway_id=gateway_id)
    return html, 200, toast


# --- JSON API --------------------------------------------------------------------------------------------

@blueprint.get("/api/agents/roster")
async def api_roster():
    """Every gateway's agents (each with gatewayId and gatewayName), and each gateway's state."""
    require_principal()
    found = await _each_gateway(_roster)
    _require_some(found)
    agents = [agent for answer in found if answer.error is None for agent in _tag(answer.result, answer)]
    return {"agents": agents, "gateways": [answer.to_json() for answer in found]}


@blueprint.get("/api/agents")
async def api_sessions_all():
    require_principal()
    sessions, found = await _all_sessions(None, roster.ROSTER_SESSIONS)
    _require_some(found)
    for session in sessions:
        session.pop("task")
    return {"sessions": sessions, "count": len(sessions), "gateways": [answer.to_json() for answer in found]}


@blueprint.get("/api/sessions/<agent_id>")
async def api_agent_sessions(agent_id: str):
    require_principal()
    limit = query_int("limit", roster.AGENT_SESSIONS, 1, roster.ROSTER_SESSIONS)
    sessions, found = await _all_sessions(agent_id, limit)
    _require_some(found)
    for session in sessions:
        session.pop("task")
    return {"agentId": agent_id, "sessions": sessions, "totalSessions": len(sessions),
            "gateways": [answer.to_json() for answer in found]}


@blueprint.get("/api/sessions/<agent_id>/<session_id>")
async def api_session(agent_id: str, session_id: str):
    """One session, by key or by session id (the original's shape, plus its gateway, its task and who started
    it)."""
    require_principal()
    gateway_id = await _session_gateway(session_id) if ":" in session_id else _registry().pick(_requested())
    session = await _from_gateway(gateway_id, lambda gateway: lookup.find_session(gateway, agent_id, session_id))
    linked = (await _linked_tasks(gateway_id, [session])).get(session["sessionKey"])
    start = await records.session_start(current_db(), gateway_id, session["sessionKey"])
    return {**session, "agentId": session["agentId"] or agent_id, "gatewayId": gateway_id,
            "gatewayName": _registry().name(gateway_id), "taskId": linked["id"] if linked else None,
            "startedBy": started_by(start), "health": _health().describe_session(gateway_id, session)}


@blueprint.get("/api/sessions/<agent_id>/<path:session_key>/transcript")
async def api_transcript(agent_id: str, session_key: str):
    """A session's transcript; the session by its key or (as the original allowed) by its session id."""
    require_principal()
    limit = query_int("limit", transcript.DEFAULT_LIMIT, 1, transcript.MAX_LIMIT)
    gateway_id = await _session_gateway(session_key) if ":" in session_key else _registry().pick(_requested())
    if ":" not in session_key:  # a session id, or a key such as "global"
        try:
            found = await _from_gateway(gateway_id, lambda gateway: lookup.find_session(gateway, agent_id, session_key))
            session_key = found["sessionKey"]
        except NotFound:
            pass  # not a session id: taken as the key itself
    history = await _from_gateway(gateway_id, lambda gateway: transcript.history(gateway, session_key, limit))
    start = await records.session_start(current_db(), gateway_id, session_key)
    return {"agentId": agent_id, **history, "gatewayId": gateway_id, "startedBy": started_by(start),
            "authority": over_session(current_principal(), start, deciding=False).to_json("canMessage")}


@blueprint.post("/api/agents/spawn")
async def api_start_work():
    """The original's spawn, for a task: {taskId, agentId?, task?, gatewayId?} (`label` is taken as the agent id,
    `task` as extra instructions; the original's `model` and `projectId` are accepted and ignored: the agent's own
    model runs, and the project is the task's). The gateway: `gatewayId`, else the task's project's default
    gateway, else the only one."""
    body = await json_object({"taskId", "agentId", "label", "task", "model", "projectId", "gatewayId"})
    if not isinstance(body.get("taskId"), str) or not body["taskId"]:
        raise InvalidInput("taskId: required; work is always started on a task", field="taskId")
    result = await work.start_work(current_call(), body["taskId"], body.get("agentId") or body.get("label"),
                                   instructions=body.get("task"), gateway_id=_requested(body))
    return {**result, "task": to_json(result["task"])}, 201


@blueprint.post("/api/agents/<path:session_key>/message")
async def api_message(session_key: str):
    body = await json_object({"message", "gatewayId"})
    call = current_call()
    gateway_id = await _session_gateway(session_key, body)
    return await work.message(call, gateway_id, session_key, body.get("message"))


@blueprint.get("/api/agents/subagents")
async def api_subagents():
    require_principal()
    found = await _each_gateway(lambda _gateway_id, gateway: lookup.subagents(gateway))
    _require_some(found)
    subagents = [entry for answer in found if answer.error is None for entry in _tag(answer.result, answer)]
    subagents.sort(key=lambda s: s["lastActive"] or "", reverse=True)
    subagents = subagents[:lookup.MAX_SUBAGENTS]
    return {"subagents": subagents, "count": len(subagents)}


@blueprint.get("/api/agents/<agent_id>")
async def api_agent(agent_id: str):
    """A roster agent by id, or (as the original) a session by its key."""
    require_principal()
    gateway_id = await _target_gateway(agent_id)
    found = await _from_gateway(gateway_id, lambda gateway: lookup.agent(gateway, agent_id))
    if isinstance(found.get("session"), dict):  # a session by its key
        found["health"] = found["session"]["health"] = _health().describe_session(gateway_id, found["session"])
        found["session"]["gatewayId"] = gateway_id
    else:
        found["health"] = _health().agent_state(gateway_id, found["id"])
    return {**found, "gatewayId": gateway_id, "gatewayName": _registry().name(gateway_id)}


@blueprint.get("/api/agents/<agent_id>/history")
async def api_agent_history(agent_id: str):
    """The recent messages of an agent's main session (or of the session a key names)."""
    require_principal()
    limit = query_int("limit", 20, 1, transcript.MAX_LIMIT)
    gateway_id = await _target_gateway(agent_id)

    async def load(gateway: GatewayClient) -> dict:
        target = await lookup.resolve(gateway, agent_id)
        if target.agent is None:
            await lookup.session(gateway, target.session_key)  # 404 for a session the gateway does not have
        return {"agentId": target.agent["id"] if target.agent else agent_of(target.session_key),
                "gatewayId": gateway_id, **await transcript.history(gateway, target.session_key, limit)}
    return await _from_gateway(gateway_id, load)


@blueprint.patch("/api/agents/<agent_id>/model")
async def api_agent_model(agent_id: str):
    """Change the model of a session (or of an agent's main session) through the gateway's sessions.patch."""
    call = current_call()
    body = await json_object({"model", "gatewayId"})
    gateway_id = await _target_gateway(agent_id, body)
    return await control.change_model(call, gateway_id, agent_id, body.get("model"))


@blueprint.delete("/api/agents/<agent_id>")
async def api_delete_session(agent_id: str):
    """Delete a session on the gateway (the original's DELETE /api/agents/:sessionKey)."""
    call = current_call()
    gateway_id = await _target_gateway(agent_id)
    return await control.delete_session(call, gateway_id, agent_id)
