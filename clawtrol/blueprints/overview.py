"""The overview page (the app's home), refreshed live when anything changes."""

from quart import Blueprint, render_template

from .. import htmx, overview
from ..auth.principal import require_principal
from ..services import current_db, services

blueprint = Blueprint("overview", __name__)


@blueprint.get("/")
async def overview_page():
    require_principal()
    data = await overview.build(current_db(), services().agent_health)
    template = "overview/_body.html" if htmx.is_htmx() else "overview/index.html"
    return await render_template(template, **data)
