"""Pages that belong to no other area: the system status page."""

from quart import Blueprint, current_app, render_template

from .. import health
from ..db import current_db

blueprint = Blueprint("pages", __name__)


@blueprint.get("/status")
async def status():
    report = await health.check()
    migrations = await current_db().all("migrations.applied") if report["db"]["connected"] else []
    config = current_app.config["CLAWTROL"]
    return await render_template(
        "pages/status.html",
        report=report,
        migrations=migrations,
        dialect="SQLite" if config.is_sqlite else "PostgreSQL",
        gateway_url=config.gateway_url,
    )
