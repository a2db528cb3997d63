"""GET /api/health: open without credentials, for load balancers, Docker and monitoring."""

from quart import Blueprint, g

from .. import health
from ..auth.guard import public

blueprint = Blueprint("health", __name__)


@blueprint.get("/api/health")
@public
async def api_health():
    report = await health.check()
    if g.get("principal") is None:  # gateway names can name customers: signed-in callers only
        report["gateways"] = [{"id": gateway["id"], "connected": gateway["connected"]} for gateway in report["gateways"]]
    # 503 when unhealthy so container health checks and load balancers act on it.
    return report, 503 if report["status"] == "unhealthy" else 200
