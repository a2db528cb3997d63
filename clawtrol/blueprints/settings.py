"""Settings: the admin page, /api/settings, the per-user theme choice, and the board's dynamic CSS."""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Blueprint, Response, redirect, render_template, request

from .. import settings
from ..auth.guard import safe_next
from ..auth.principal import require_principal, require_role
from ..errors import Refused
from ..payload import json_object
from ..services import current_call, current_db

blueprint = Blueprint("settings", __name__)


@blueprint.get("/api/settings")
async def api_settings():
    require_principal()
    return await settings.load(current_db())


@blueprint.put("/api/settings")
async def api_update_settings():
    require_role("admin", "change settings")
    changes = settings.validate(await json_object(set(settings.SPECS)))
    return await settings.update(current_call(), changes)


@blueprint.get("/admin/settings")
async def settings_page():
    require_role("admin", "change settings")
    values = await settings.load(current_db())
    return await render_template("settings/page.html", specs=settings.SPECS, values=values, error=None, saved=False)


@blueprint.post("/admin/settings")
async def update_settings_form():
    require_role("admin", "change settings")
    form = await request.form
    call = current_call()
    try:
        changes = settings.validate({key: spec.from_form(key, form[key].strip())
                                     for key, spec in settings.SPECS.items() if key in form})
        values = await settings.update(call, changes)
    except Refused as error:
        values = {**await settings.load(call.db), **{k: form[k] for k in settings.SPECS if k in form}}
        return await render_template("settings/_form.html", specs=settings.SPECS, values=values,
                                     error=error.message, saved=False), 400
    return await render_template("settings/_form.html", specs=settings.SPECS, values=values, error=None, saved=True)


@blueprint.post("/settings/theme")
async def choose_theme():
    """A person's own light/dark choice, kept in a cookie; back to the page they were on."""
    require_principal()
    form = await request.form
    theme = settings.parse_theme(form.get("theme", "auto"))
    referrer = urlsplit(request.headers.get("Referer", "/"))
    back = safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""))
    response = redirect(back, 303)
    response.set_cookie(settings.THEME_COOKIE, theme, max_age=365 * 86400, httponly=True, samesite="Lax",
                        secure=request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https")
    return response


@blueprint.get("/settings.css")
async def settings_css():
    """Settings that shape the layout, as CSS custom properties (the CSP allows no inline style)."""
    require_principal()
    values = await settings.cached(current_db())
    css = f":root {{ --column-width: {int(values['kanbanColumnWidth'])}px; }}\n"
    return Response(css, mimetype="text/css", headers={"Cache-Control": "private, max-age=60"})

