"""Putting agents to work: "start work" on a task (members on tasks they may edit, admins all) and messages to
an agent's session (who may: agents/authority.py), each sent with chat.send and audited.

Everything is on one gateway: start work picks it (the request's gatewayId, else the task's project's default
gateway, else the only enabled one) and records it with the session (the task's link and the start work
record); a message goes to a session of one gateway, and authority over it is looked up on that gateway alone."""

from __future__ import annotations

import re
import secrets
import time

from .. import audit
from ..audit import Actor
from ..auth.principal import Principal
from ..clock import now_iso
from ..db import Database
from ..errors import ApiError, Conflict, Forbidden, InvalidInput
from ..gateway import answers
from ..gateway.client import GatewayClient, GatewayError
from ..gateways.registry import GatewayRegistry
from ..services import Call
from ..tasks import access, service
from . import records
from .authority import Authority, over_session
from .roster import list_agents

MAX_MESSAGE = 20_000
SESSION_NAME = re.compile(r"[^a-z0-9-]+")


async def send(gateway: GatewayClient, session_key: str, message: str, idempotency_key: str) -> dict:
    try:
        result = await gateway.request("chat.send", {"sessionKey": session_key, "message": message,
                                                     "idempotencyKey": idempotency_key})
    except GatewayError as error:
        raise answers.failure(error) from None
    return result if isinstance(result, dict) else {"result": result}


def parse_message(value: object, field: str = "message") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: required, a non-empty string", field=field)
    if len(value) > MAX_MESSAGE:
        raise InvalidInput(f"{field}: at most {MAX_MESSAGE} characters", field=field)
    return value.strip()


def briefing(task: dict, public_url: str, instructions: str | None = None) -> str:
    """The first message of a task's session: what to do, and how to report back through our API."""
    lines = [f"You are picking up a Mission Clawtrol task: {task['title']}",
             f"Task id: {task['id']} · priority {task['priority']}"]
    if task.get("project_name"):
        lines.append(f"Project: {task['project_name']} ({task['project_id']})")
    if task.get("description"):
        lines += ["", "Description:", task["description"]]
    if task.get("handoff_notes"):
        lines += ["", "Handoff notes so far:", task["handoff_notes"]]
    if instructions:
        lines += ["", "Instructions:", instructions]
    lines += ["", "When you are done, report through the Mission Clawtrol API: PATCH "
              f"{public_url.rstrip('/')}/api/tasks/{task['id']} with JSON such as "
              '{"status": "review", "handoffNotes": "what you did", "commitHash": "…", '
              '"linesChanged": {"added": 0, "removed": 0}}.']
    return "\n".join(lines)


def new_session_key(agent_id: str, task_id: str) -> str:
    name = SESSION_NAME.sub("-", task_id.lower())[-12:].strip("-") or "task"
    return f"agent:{agent_id}:clawtrol-{name}-{int(time.time() * 1000)}"


async def choose_agent(gateway: GatewayClient, requested: object, task: dict) -> str:
    """The requested agent, else the task's agent if the gateway knows it, else the gateway's default."""
    try:
        listed = await list_agents(gateway)
    except GatewayError as error:
        raise answers.failure(error) from None
    known = [agent["id"] for agent in listed["agents"]]
    if requested not in (None, ""):
        if requested not in known:
            raise InvalidInput(f"agentId: the gateway has no agent {requested!r} (it has {', '.join(known) or 'none'})",
                               field="agentId")
        return requested  # type: ignore[return-value]
    if task.get("agent_id") in known:
        return task["agent_id"]
    if listed["defaultId"] in known:
        return listed["defaultId"]
    if known:
        return known[0]
    raise Conflict("The gateway has no agents configured.", code="NO_AGENTS")


async def _refuse(db: Database, actor: Actor, action: str, entity_type: str, entity_id: str, error: ApiError):
    """Audit a refused attempt (403) and raise it."""
    await audit.record_refusal(db, actor, action, entity_type, entity_id, error.message)
    raise error


async def default_gateway_for(db: Database, task: dict) -> str | None:
    """The default gateway of the task's project (None when it has none)."""
    if not task.get("project_id"):
        return None
    project = await db.one("projects.get", id=task["project_id"])
    return project["default_gateway_id"] if project else None


async def start_work(call: Call, task_id: str, agent_id: object, *, instructions: object = None,
                     gateway_id: object = None) -> dict:
    """Send the task to a new session of an agent on a gateway (`gateway_id`, else the project's default, else
    the only one), then, in one transaction: link the session (and its gateway) to the task, move it to
    in-progress, record who started which session on which gateway (the fact that grants authority over it,
    agents/authority.py) and audit it."""
    db, gateways, principal, actor = call.db, call.gateways, call.principal, call.actor
    extra = parse_message(instructions, "task") if instructions not in (None, "") else None
    task = await service.get(db, task_id)
    try:
        access.require_edit(principal, task)
    except ApiError as error:
        await _refuse(db, actor, "agent.work_start", "task", task_id, error)
    if task["status"] == "done":
        raise Conflict("This task is done; reopen it before starting work on it.", code="TASK_DONE")
    chosen = gateways.pick(gateway_id, await default_gateway_for(db, task))
    gateway = gateways.client(chosen)
    answers.require_connected(gateway)
    agent = await choose_agent(gateway, agent_id, task)
    session_key = new_session_key(agent, task_id)
    sent = await send(gateway, session_key, briefing(task, call.services.config.public_url, extra),
                      f"clawtrol-start-{secrets.token_hex(8)}")
    run_id = sent.get("runId")

    async def record_start(before: dict) -> None:
        await db.changed("agents.record_start", gateway_id=chosen, session_key=session_key, task_id=task_id,
                         project_id=before["project_id"], agent_id=agent, started_by=principal.user_id,
                         started_by_token=principal.token_id, started_by_label=actor.label, run_id=run_id,
                         started_at=now_iso())
        await audit.record(db, actor, "agent.work_started", "task", task_id,
                           {"sessionKey": session_key, "gatewayId": chosen, "agentId": agent, "runId": run_id,
                            "previousSessionKey": before["session_key"],
                            "previousGatewayId": before.get("session_gateway_id")})

    updated = await service.update(call, task_id,
                                   {"sessionKey": session_key, "sessionGatewayId": chosen, "agentId": agent,
                                    "status": "in-progress"},
                                   also=record_start, links_session=True)
    return {"success": True, "task": updated, "childSessionKey": session_key, "agentId": agent,
            "gatewayId": chosen, "gatewayName": gateways.name(chosen), "runId": run_id, "status": "created"}


async def session_authority(db: Database, principal: Principal, gateway_id: str, session_key: str) -> Authority:
    """May `principal` message this session of this gateway, and why."""
    start = await records.session_start(db, gateway_id, session_key)
    return over_session(principal, start, deciding=False)


async def require_session_authority(call: Call, action: str, gateway_id: str, session_key: str) -> None:
    """Messaging a session, changing its model or deleting it: who may is who may message it (authority.py);
    a refusal is audited as `<action>_refused` and answered 403."""
    allowed = await session_authority(call.db, call.principal, gateway_id, session_key)
    if not allowed.allowed:
        await _refuse(call.db, call.actor, action, "session", session_key,
                      Forbidden(allowed.reason, code="FORBIDDEN"))


async def pick_for_session(db: Database, gateways: GatewayRegistry, requested: object, session_key: str) -> str:
    """The gateway a request about a session means when it may leave it out: the one it names, else the gateway
    the session's task link (or a start work record) names, else the only one. Only a default: authority is then
    looked up on the gateway picked."""
    if requested in (None, ""):
        for gateway_id in await records.session_gateways(db, session_key):
            if gateways.get(gateway_id) is not None:
                return gateway_id
    return gateways.pick(requested)


async def message(call: Call, gateway_id: str, session_key: str, text: object, *, context: str | None = None,
                  details: dict | None = None) -> dict:
    """Send `text` to the session of that gateway, after `context` when given (a prefix with its own separator,
    e.g. the project a message is about), and audit it as `agent.messaged` with a preview of `text` and
    `details`."""
    text = parse_message(text)
    await require_session_authority(call, "agent.message", gateway_id, session_key)
    gateway = call.gateways.client(gateway_id)
    answers.require_connected(gateway)
    result = await send(gateway, session_key, (context or "") + text, f"clawtrol-msg-{secrets.token_hex(8)}")
    async with call.db.transaction():
        await audit.record(call.db, call.actor, "agent.messaged", "session", session_key,
                           {"length": len(text), "preview": text[:200], "runId": result.get("runId"),
                            "gatewayId": gateway_id, **(details or {})})
    return {"success": True, "result": result, "gatewayId": gateway_id}
