"""Changing a session's model (gateway `sessions.patch {key, model}`) and deleting a session (`sessions.delete
{key}`). Who may: who may message the session (agents/authority.py, through work.require_session_authority).
Both are audited after the gateway has done them; a refusal is audited as `<action>_refused`. Both act on one
gateway's session: the caller picks the gateway (work.pick_for_session, or the registry for an agent id)."""

from __future__ import annotations

from .. import audit
from ..errors import InvalidInput
from ..gateway import answers
from ..gateway.client import GatewayClient, GatewayError
from ..services import Call
from . import lookup
from .work import require_session_authority

MAX_MODEL = 200


def parse_model(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("model: required, a model id such as anthropic/claude-sonnet-4-5", field="model")
    if len(value.strip()) > MAX_MODEL or any(ch.isspace() for ch in value.strip()):
        raise InvalidInput(f"model: a model id without spaces, at most {MAX_MODEL} characters", field="model")
    return value.strip()


async def _target(call: Call, gateway: GatewayClient, gateway_id: str, action: str, ident: str,
                  outcome: str) -> lookup.Target:
    """The session `ident` means, once `principal` is known to have authority over it on that gateway. A session
    key is checked before the gateway is asked anything (as a message is); an agent id needs the gateway to name
    its session."""
    if ":" in ident:
        await require_session_authority(call, action, gateway_id, ident)
        answers.require_connected(gateway, outcome)
        return lookup.Target(ident)
    answers.require_connected(gateway, outcome)
    target = await lookup.resolve(gateway, ident)
    await require_session_authority(call, action, gateway_id, target.session_key)
    return target


async def change_model(call: Call, gateway_id: str, ident: str, model: object) -> dict:
    """Set the model override of the session `ident` means (a session key, or an agent's main session)."""
    model = parse_model(model)
    gateway = call.gateways.client(gateway_id)
    outcome = "the model was not changed"
    try:
        target = await _target(call, gateway, gateway_id, "agent.model_change", ident, outcome)
        before = await lookup.session(gateway, target.session_key)
    except GatewayError as error:
        raise answers.failure(error, outcome) from None
    try:
        result = await gateway.request("sessions.patch", {"key": target.session_key, "model": model})
    except GatewayError as error:
        if error.code == "INVALID_REQUEST":  # the gateway's word on a model it does not know
            raise InvalidInput(f"model: the gateway refused it: {error.message}", field="model") from None
        raise answers.failure(error, "the model was not changed") from None
    resolved = result.get("resolved") if isinstance(result, dict) and isinstance(result.get("resolved"), dict) else {}
    async with call.db.transaction():
        await audit.record(call.db, call.actor, "agent.model_changed", "session", target.session_key,
                           {"from": before["model"], "to": model, "resolved": resolved.get("model"),
                            "gatewayId": gateway_id})
    return {"success": True, "sessionKey": target.session_key, "gatewayId": gateway_id, "model": model,
            "resolvedModel": resolved.get("model"), "modelProvider": resolved.get("modelProvider"),
            "previousModel": before["model"]}


async def delete_session(call: Call, gateway_id: str, ident: str) -> dict:
    """Delete a session on the gateway, and its registration as a project's association if it had one."""
    db, gateway = call.db, call.gateways.client(gateway_id)
    outcome = "nothing was deleted"
    try:
        target = await _target(call, gateway, gateway_id, "agent.session_delete", ident, outcome)
        await lookup.session(gateway, target.session_key)
        await gateway.request("sessions.delete", {"key": target.session_key})
    except GatewayError as error:
        raise answers.failure(error, outcome) from None
    async with db.transaction():
        unregistered = await db.changed("associations.unregister", gateway_id=gateway_id,
                                        session_key=target.session_key)
        await audit.record(db, call.actor, "agent.session_deleted", "session", target.session_key,
                           {"unregistered": bool(unregistered), "gatewayId": gateway_id})
    return {"success": True, "deleted": target.session_key, "gatewayId": gateway_id}
