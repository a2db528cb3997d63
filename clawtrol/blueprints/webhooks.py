"""Webhooks: the JSON API (/api/webhooks, admin only: a webhook's URL can itself be a credential) and the
admin page with its HTMX fragments."""

from __future__ import annotations

from quart import Blueprint, render_template, request

from .. import htmx
from ..auth.principal import current_actor, require_role
from ..errors import Refused
from ..payload import json_object, query_int
from ..webhooks import service
from ..webhooks.events import VALID_EVENTS
from ..webhooks.model import FIELDS, FORMATS, delivery_json, to_json
from ..services import current_db

blueprint = Blueprint("webhooks", __name__)

MANAGE = "manage webhooks"
PAGE_DELIVERIES = 30


# --- JSON API ------------------------------------------------------------------------------------------

@blueprint.get("/api/webhooks")
async def api_list():
    require_role("admin", MANAGE)
    rows = await service.list_all(current_db())
    return {"webhooks": [to_json(row) for row in rows], "count": len(rows)}


@blueprint.get("/api/webhooks/<webhook_id>")
async def api_get(webhook_id: str):
    require_role("admin", MANAGE)
    return to_json(await service.get(current_db(), webhook_id))


@blueprint.post("/api/webhooks")
async def api_create():
    require_role("admin", MANAGE)
    row = await service.create(current_db(), current_actor(), await json_object(FIELDS))
    return to_json(row, secret=True), 201  # the only time the secret is shown


@blueprint.route("/api/webhooks/<webhook_id>", methods=["PATCH", "PUT"])
async def api_update(webhook_id: str):
    """PATCH, and PUT as the original named it: a partial change. `rotateSecret: true` makes a new secret,
    shown in this answer only."""
    require_role("admin", MANAGE)
    db = current_db()
    before = await service.get(db, webhook_id)
    row = await service.update(db, current_actor(), webhook_id, await json_object(FIELDS | {"rotateSecret"}))
    return to_json(row, secret=row["secret"] != before["secret"])


@blueprint.delete("/api/webhooks/<webhook_id>")
async def api_delete(webhook_id: str):
    require_role("admin", MANAGE)
    await service.delete(current_db(), current_actor(), webhook_id)
    return {"success": True, "id": webhook_id}


@blueprint.post("/api/webhooks/<webhook_id>/test")
async def api_test(webhook_id: str):
    require_role("admin", MANAGE)
    delivery = await service.test(current_db(), current_actor(), webhook_id)
    return {"success": True, "delivery": delivery_json(delivery)}, 202


@blueprint.get("/api/webhooks/<webhook_id>/deliveries")
async def api_deliveries(webhook_id: str):
    require_role("admin", MANAGE)
    rows = await service.deliveries(current_db(), webhook_id, query_int("limit", 50, 1, 500))
    return {"deliveries": [delivery_json(row) for row in rows]}


@blueprint.post("/api/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver")
async def api_redeliver(webhook_id: str, delivery_id: str):
    require_role("admin", MANAGE)
    delivery = await service.redeliver(current_db(), current_actor(), webhook_id, delivery_id)
    return {"success": True, "delivery": delivery_json(delivery)}, 202


# --- the admin page ---------------------------------------------------------------------------------------

async def _context(**extra) -> dict:
    db = current_db()
    return {"webhooks": [to_json(row) for row in await service.list_all(db)],
            "deliveries": await service.recent_deliveries(db, PAGE_DELIVERIES),
            "events": VALID_EVENTS, "formats": FORMATS, **extra}


@blueprint.get("/admin/webhooks")
async def webhooks_page():
    require_role("admin", MANAGE)
    return await render_template("webhooks/page.html", **await _context(form=None, error=None))


@blueprint.get("/admin/webhooks/deliveries")
async def deliveries_fragment():
    require_role("admin", MANAGE)
    return await render_template("webhooks/_deliveries.html", **await _context())


@blueprint.post("/admin/webhooks")
async def create_webhook_fragment():
    require_role("admin", MANAGE)
    form = await request.form
    body = {"url": (form.get("url") or "").strip(), "events": form.getlist("events"),
            "format": form.get("format") or "json"}
    try:
        row = await service.create(current_db(), current_actor(), body)
    except Refused as error:
        return await render_template("webhooks/_form.html", **await _context(form=body, error=error)), 400
    return await render_template("webhooks/_created.html", created=to_json(row, secret=True),
                                 **await _context(form=None, error=None))


@blueprint.post("/admin/webhooks/<webhook_id>/toggle")
async def toggle_webhook_fragment(webhook_id: str):
    require_role("admin", MANAGE)
    db = current_db()
    row = await service.get(db, webhook_id)
    await service.update(db, current_actor(), webhook_id, {"enabled": not bool(row["enabled"])})
    return await render_template("webhooks/_list.html", **await _context())


@blueprint.post("/admin/webhooks/<webhook_id>/test")
async def test_webhook_fragment(webhook_id: str):
    require_role("admin", MANAGE)
    await service.test(current_db(), current_actor(), webhook_id)
    return (await render_template("webhooks/_deliveries.html", **await _context()), 200,
            htmx.toast("Test event queued; it shows below once sent.", "success"))


@blueprint.post("/admin/webhooks/<webhook_id>/delete")
async def delete_webhook_fragment(webhook_id: str):
    require_role("admin", MANAGE)
    await service.delete(current_db(), current_actor(), webhook_id)
    html = await render_template("webhooks/_list.html", **await _context())
    html += await render_template("webhooks/_deliveries.html", oob=True, **await _context())
    return html, 200, htmx.toast("Webhook deleted.", "success")


@blueprint.post("/admin/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver")
async def redeliver_fragment(webhook_id: str, delivery_id: str):
    require_role("admin", MANAGE)
    try:
        await service.redeliver(current_db(), current_actor(), webhook_id, delivery_id)
        headers = htmx.toast("Queued to be sent again.", "success")
    except Refused as error:
        headers = htmx.toast(error.message, "error")
    return await render_template("webhooks/_deliveries.html", **await _context()), 200, headers
