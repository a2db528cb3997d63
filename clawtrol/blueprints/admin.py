"""Admin pages (users and roles, API tokens) and the users/tokens JSON API."""

from __future__ import annotations

from quart import Blueprint, render_template, request

from ..auth import tokens, users
from ..auth.principal import ROLES, require_principal, require_role
from ..auth.signup import open_signup_warning
from ..errors import InvalidInput, Refused
from ..live import revoke_access, user_changed
from ..payload import json_object
from ..services import current_call, current_db, services

blueprint = Blueprint("admin", __name__)


# --- pages and fragments ---------------------------------------------------------------------------

@blueprint.get("/admin/users")
async def users_page():
    require_role("admin", "manage users")
    return await render_template("admin/users.html", users=await users.list_all(current_db()), roles=ROLES,
                                 signup_warning=open_signup_warning(services().config))


async def _user_row(user: dict, error: str | None = None, status: int = 200):
    return await render_template("admin/_user_row.html", user=user, roles=ROLES, error=error), status


@blueprint.post("/admin/users/<user_id>")
async def update_user_fragment(user_id: str):
    """Role select, (de)activate and "Mark reviewed" buttons post here; the row comes back re-rendered."""
    require_role("admin", "manage users")
    call = current_call()
    before = await users.get(call.db, user_id)
    form = await request.form
    try:
        if "role" in form:
            user = await users.change_role(call, user_id, form["role"])
        elif "active" in form:
            user = await users.set_active(call, user_id, form["active"] == "true")
        elif "reviewed" in form:
            user = await users.mark_reviewed(call, user_id)
        else:
            raise InvalidInput("role or active: one is required (or reviewed, to mark the account reviewed)")
    except Refused as error:
        return await _user_row(await users.get(call.db, user_id), error.message, error.status)
    await user_changed(before, user)
    return await _user_row(user)


@blueprint.delete("/admin/users/<user_id>")
async def delete_user_fragment(user_id: str):
    require_role("admin", "delete users")
    call = current_call()
    try:
        await users.delete(call, user_id)
    except Refused as error:
        return await _user_row(await users.get(call.db, user_id), error.message, error.status)
    await revoke_access("deleted", user_id=user_id)
    return ""


@blueprint.get("/admin/tokens")
async def tokens_page():
    require_role("admin", "manage API tokens")
    return await render_template("admin/tokens.html", tokens=await tokens.list_all(current_db()), roles=ROLES)


@blueprint.post("/admin/tokens")
async def create_token_fragment():
    require_role("admin", "create API tokens")
    form = await request.form
    try:
        name, role, days = tokens.validate(form.get("name"), form.get("role"), form.get("expires_in_days"))
    except Refused as error:
        return await render_template("admin/_token_form.html", roles=ROLES, error=error.message, form=form), 400
    call = current_call()
    token, raw = await tokens.create(call.db, call.actor, name, role, days)
    return await render_template("admin/_token_created.html", token=token, raw=raw, roles=ROLES,
                                 tokens=await tokens.list_all(call.db))


@blueprint.post("/admin/tokens/<token_id>/revoke")
async def revoke_token_fragment(token_id: str):
    require_role("admin", "revoke API tokens")
    token = await tokens.revoke(current_call(), token_id)
    await revoke_access("token_revoked", token_id=token_id)
    return await render_template("admin/_token_row.html", token=token)


# --- JSON API ----------------------------------------------------------------------------------------

@blueprint.get("/api/users")
async def api_users():
    require_principal()
    rows = await users.list_all(current_db())
    return {"users": [users.to_json(row) for row in rows], "count": len(rows)}


@blueprint.patch("/api/users/<user_id>")
async def api_update_user(user_id: str):
    require_role("admin", "manage users")
    body = await json_object({"role", "active"})
    before, user = await users.update(current_call(), user_id, body)
    await user_changed(before, user)  # after the commit
    return users.to_json(user)


@blueprint.delete("/api/users/<user_id>")
async def api_delete_user(user_id: str):
    require_role("admin", "delete users")
    await users.delete(current_call(), user_id)
    await revoke_access("deleted", user_id=user_id)
    return {"success": True}


@blueprint.get("/api/tokens")
async def api_tokens():
    require_role("admin", "list API tokens")
    rows = await tokens.list_all(current_db())
    return {"tokens": [tokens.to_json(row) for row in rows], "count": len(rows)}


@blueprint.post("/api/tokens")
async def api_create_token():
    require_role("admin", "create API tokens")
    body = await json_object({"name", "role", "expiresInDays"})
    name, role, days = tokens.validate(body.get("name"), body.get("role"), body.get("expiresInDays"))
    call = current_call()
    token, raw = await tokens.create(call.db, call.actor, name, role, days)
    return {**tokens.to_json(token), "token": raw}, 201


@blueprint.delete("/api/tokens/<token_id>")
async def api_revoke_token(token_id: str):
    require_role("admin", "revoke API tokens")
    token = await tokens.revoke(current_call(), token_id)
    await revoke_access("token_revoked", token_id=token_id)
    return tokens.to_json(token)
