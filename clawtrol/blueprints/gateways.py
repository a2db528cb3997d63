"""OpenClaw gateways (issue #15): the JSON API (/api/gateways, admin only: a gateway's token lets its holder run
agents) and the admin page with its HTMX fragments. The token is write-only everywhere: never shown or returned,
and an empty token field on the edit form keeps the stored one."""

from __future__ import annotations

from quart import Blueprint, render_template, request

from .. import htmx
from ..auth.principal import current_actor, require_role
from ..errors import Refused
from ..gateways import service
from ..gateways.model import FIELDS, state_of
from ..gateways.registry import GatewayRegistry
from ..gateways.secrets import TokenBox
from ..payload import json_object
from ..services import current_db, current_registry, services

blueprint = Blueprint("gateways", __name__)

MANAGE = "manage gateways"
TEST_FIELDS = frozenset({"url", "token", "gatewayId"})


def _registry() -> GatewayRegistry:
    return current_registry()


def _box() -> TokenBox:
    return services().gateway_tokens


async def _test(url: object, token: object, gateway_id: object) -> dict:
    return await service.test_connection(current_db(), _box(), url, token, gateway_id,
                                         identity_path=_registry().identity_path)


# --- JSON API ------------------------------------------------------------------------------------------

@blueprint.get("/api/gateways")
async def api_list():
    require_role("admin", MANAGE)
    gateways = await service.listing(current_db(), _registry())
    return {"gateways": gateways, "count": len(gateways)}


@blueprint.get("/api/gateways/<gateway_id>")
async def api_get(gateway_id: str):
    require_role("admin", MANAGE)
    return await service.one(current_db(), _registry(), gateway_id)


@blueprint.post("/api/gateways")
async def api_create():
    require_role("admin", MANAGE)
    db, registry = current_db(), _registry()
    row = await service.create(services(), current_actor(), await json_object(FIELDS))
    return await service.one(db, registry, row["id"]), 201


@blueprint.patch("/api/gateways/<gateway_id>")
async def api_update(gateway_id: str):
    require_role("admin", MANAGE)
    db, registry = current_db(), _registry()
    body = await json_object(FIELDS)
    await service.update(services(), current_actor(), gateway_id, body)
    return await service.one(db, registry, gateway_id)


@blueprint.delete("/api/gateways/<gateway_id>")
async def api_delete(gateway_id: str):
    require_role("admin", MANAGE)
    return await service.remove(services(), current_actor(), gateway_id)


@blueprint.post("/api/gateways/test")
async def api_test():
    """The handshake with a gateway, without saving anything: {ok, version} or {ok: false, error}."""
    require_role("admin", MANAGE)
    body = await json_object(TEST_FIELDS)
    return await _test(body.get("url"), body.get("token"), body.get("gatewayId"))


# --- the admin page ---------------------------------------------------------------------------------------

def _from_form(form) -> dict:
    """The form as the API's body. An empty token field means "keep the stored one" (left out) when editing;
    the enabled checkbox is a boolean."""
    body = {"name": (form.get("name") or "").strip(), "url": (form.get("url") or "").strip(),
            "enabled": form.get("enabled") == "on"}
    token = (form.get("token") or "").strip()
    if token:
        body["token"] = token
    return body


async def _render(template: str, status: int = 200, toast: str | None = None, level: str = "success", **extra):
    gateways = await service.listing(current_db(), _registry())
    context = {"gateways": gateways, "state_of": state_of, "form": {"enabled": True}, "editing": None,
               "error": None, **extra}
    headers = htmx.toast(toast, level) if toast else {}
    return await render_template(template, **context), status, headers


@blueprint.get("/admin/gateways")
async def gateways_page():
    require_role("admin", MANAGE)
    return await _render("gateways/page.html")


@blueprint.get("/admin/gateways/list")
async def list_fragment():
    require_role("admin", MANAGE)
    return await _render("gateways/_list.html")


@blueprint.get("/admin/gateways/new")
async def new_form():
    require_role("admin", MANAGE)
    return await _render("gateways/_form.html")


@blueprint.get("/admin/gateways/<gateway_id>/edit")
async def edit_form(gateway_id: str):
    require_role("admin", MANAGE)
    row = await service.get(current_db(), gateway_id)
    return await _render("gateways/_form.html", editing=row["id"],
                         form={"name": row["name"], "url": row["url"], "enabled": bool(row["enabled"]),
                               "hasToken": bool(row["token_encrypted"])})


@blueprint.post("/admin/gateways")
async def create_fragment():
    require_role("admin", MANAGE)
    body = _from_form(await request.form)
    try:
        row = await service.create(services(), current_actor(), body)
    except Refused as error:  # the form again, with the reason (a name taken is a 400 here too)
        return await _render("gateways/_form.html", 400, form={**body, "token": None}, error=error)
    return await _render("gateways/_saved.html", toast=f"Gateway '{row['name']}' added.")


@blueprint.post("/admin/gateways/<gateway_id>")
async def update_fragment(gateway_id: str):
    require_role("admin", MANAGE)
    db = current_db()
    body = _from_form(await request.form)
    try:
        row = await service.update(services(), current_actor(), gateway_id, body)
    except Refused as error:
        before = await service.get(db, gateway_id)
        return await _render("gateways/_form.html", 400, editing=gateway_id,
                             form={**body, "token": None, "hasToken": bool(before["token_encrypted"])}, error=error)
    return await _render("gateways/_saved.html", toast=f"Gateway '{row['name']}' saved.")


@blueprint.post("/admin/gateways/<gateway_id>/toggle")
async def toggle_fragment(gateway_id: str):
    require_role("admin", MANAGE)
    db = current_db()
    before = await service.get(db, gateway_id)
    row = await service.update(services(), current_actor(), gateway_id,
                               {"enabled": not bool(before["enabled"])})
    return await _render("gateways/_list.html",
                         toast=f"Gateway '{row['name']}' {'enabled' if row['enabled'] else 'disabled'}.")


@blueprint.post("/admin/gateways/<gateway_id>/delete")
async def delete_fragment(gateway_id: str):
    require_role("admin", MANAGE)
    db = current_db()
    row = await service.get(db, gateway_id)
    result = await service.remove(services(), current_actor(), gateway_id)
    closed = result["closedApprovals"]
    note = f"; {closed} pending approval{'s' if closed != 1 else ''} closed" if closed else ""
    return await _render("gateways/_list.html", toast=f"Gateway '{row['name']}' removed{note}.")


@blueprint.post("/admin/gateways/test")
async def test_fragment():
    """The form's "Test connection" button: the handshake with what the form holds (the stored token when
    the token field is empty on the edit form)."""
    require_role("admin", MANAGE)
    form = await request.form
    try:
        result = await _test(form.get("url"), (form.get("token") or "").strip() or None,
                             (form.get("gatewayId") or "").strip() or None)
    except Refused as error:
        result = {"ok": False, "error": error.message}
    return await render_template("gateways/_test_result.html", result=result)
