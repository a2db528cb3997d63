"""Talking to the main agent: the original's `POST /api/message` and `GET /api/message/history`.

The main session is configurable (MAIN_SESSION_KEY, default the original's `agent:cso:main`). A message is
an ordinary message to that session: the same roles and authority as messaging any session (authority.py,
through work.message). Nobody starts the main session through start work, so in practice only admins may
message it; should a start work record ever name it, its starter (and that project's owner) may too.
With a `projectId` the project's context from our records (its PROJECT.md and STATUS.md as the API renders
them, 500 characters each) goes before the message. History comes from the gateway's `chat.history`.

With several gateways the main session is that key on the gateway picked: the request's `gatewayId`, else the
only enabled gateway (400 naming the choices otherwise).
"""

from __future__ import annotations

from ..db import Database
from ..errors import InvalidInput
from ..gateway.client import GatewayClient
from ..projects import documents
from ..services import Call
from . import transcript, work

DEFAULT_HISTORY = 20
MAX_HISTORY = 200
CONVERSATION_ROLES = ("user", "assistant", "system")


async def project_context(db: Database, project_id: object) -> tuple[str | None, str | None]:
    """(project id, context text) for a message's `projectId`; (None, None) without one."""
    if project_id is None:
        return None, None
    if not isinstance(project_id, str) or not project_id.strip():
        raise InvalidInput("projectId: a project id", field="projectId")
    project = await db.one("projects.get_with_stats", id=project_id.strip())
    if project is None:
        raise InvalidInput(f"projectId: no project with id {project_id.strip()!r}", field="projectId")
    return project["id"], documents.context(project, await documents.status_counts(db, project["id"]))


async def send(call: Call, gateway_id: object, session_key: str, text: object, project_id: object) -> dict:
    work.parse_message(text)  # the message's own problems first
    project, context = await project_context(call.db, project_id)
    sent = await work.message(call, call.gateways.pick(gateway_id), session_key, text, context=context,
                              details={"projectId": project} if project else None)
    return {**sent, "sessionKey": session_key, "projectId": project}


async def history(gateway: GatewayClient, session_key: str, limit: int) -> dict:
    """The last `limit` non-empty user, assistant and system messages, oldest first, as the original's
    `{messages: [{role, timestamp, content}]}` (tool calls and their output left out)."""
    loaded = await transcript.history(gateway, session_key, min(limit * 3, transcript.MAX_LIMIT))
    messages = [{"role": m["role"], "timestamp": m["timestamp"], "content": m["content"]}
                for m in loaded["messages"] if m["role"] in CONVERSATION_ROLES and (m["content"] or "").strip()]
    return {"sessionKey": session_key, "messages": messages[-limit:]}
