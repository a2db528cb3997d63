"""GET /api/health: open without credentials, for load balancers, Docker and monitoring."""

from quart import Blueprint

from .. import health
from ..auth.guard import public

blueprint = Blueprint("health", __name__)


@blueprint.get("/api/health")
@public
async def api_health():
    report = await health.check()
    # 503 when unhealthy so container health checks and load balancers act on it.
    return report, 503 if report["status"] == "unhealthy" else 200
