"""Pages that belong to no other area: the system status page."""

from quart import Blueprint, render_template

from .. import health
from ..gateways.model import state_of

blueprint = Blueprint("pages", __name__)


@blueprint.get("/status")
async def status():
    return await render_template("pages/status.html", **await health.status(), state_of=state_of)
