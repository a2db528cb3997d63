"""The overview page (the app's home), refreshed live when anything changes."""

from quart import Blueprint, current_app, render_template, request

from .. import overview
from ..auth.principal import require_principal
from ..db import current_db

blueprint = Blueprint("overview", __name__)


@blueprint.get("/")
async def overview_page():
    require_principal()
    data = await overview.build(current_db(), current_app.extensions["agent_health"])
    template = "overview/_body.html" if request.headers.get("HX-Request") else "overview/index.html"
    return await render_template(template, **data)
