"""Pages that belong to no other area: the system status page."""

from quart import Blueprint, current_app, render_template

from .. import health
from ..gateways import service as gateways
from ..gateways.model import state_of
from ..services import current_db, current_registry

blueprint = Blueprint("pages", __name__)


def _from_registry(registry) -> list[dict]:
    """The enabled gateways as the registry knows them (when the database cannot say which exist)."""
    return [{"id": c.id, "name": c.name, "url": c.url, "enabled": True, "connected": c.connected,
             "version": c.client.state.server_version if c.connected else None, "lastError": c.last_error,
             "lastConnectedAt": c.client.state.connected_at if c.client else None,
             "latencyMs": c.client.latency_ms if c.connected else None} for c in registry.connections()]


@blueprint.get("/status")
async def status():
    report = await health.check()
    registry = current_registry()
    if report["db"]["connected"]:
        db = current_db()
        migrations = await db.all("migrations.applied")
        gateway_list = await gateways.listing(db, registry)
    else:
        migrations, gateway_list = [], _from_registry(registry)
    config = current_app.config["CLAWTROL"]
    return await render_template(
        "pages/status.html",
        report=report,
        migrations=migrations,
        dialect="SQLite" if config.is_sqlite else "PostgreSQL",
        gateways=gateway_list,
        state_of=state_of,
    )
