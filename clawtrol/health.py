"""The service's health: database reachability and latency, gateway connection, version, uptime."""

from __future__ import annotations

import logging
import time

from . import __version__
from .clock import now_iso
from .db import migrations
from .gateways import service as gateways
from .services import current_db, services

log = logging.getLogger(__name__)

SLOW_DATABASE_MS = 200


def gateway_aggregate(registry) -> dict:
    """Connected when every enabled gateway is; the version they share (None when they differ or none is up)."""
    versions = {c.client.state.server_version for c in registry.connections() if c.connected}
    return {"connected": registry.connected, "version": versions.pop() if len(versions) == 1 else None}


async def check() -> dict:
    db_report: dict = {"connected": False, "responseMs": None}
    try:
        db_report["responseMs"] = round(await current_db().ping(), 2)
        db_report["connected"] = True
    except Exception as exc:  # any failure means "unhealthy", reported rather than raised
        log.warning("health check: database unreachable: %s", exc)
    registry = services().gateways
    if not db_report["connected"]:
        status = "unhealthy"
    elif db_report["responseMs"] > SLOW_DATABASE_MS or not registry.connected:
        status = "degraded"
    else:
        status = "healthy"
    return {
        "status": status,
        "db": db_report,
        "gateway": gateway_aggregate(registry),
        "gateways": [{"id": c.id, "name": c.name, "connected": c.connected} for c in registry.connections()],
        "version": __version__,
        "uptime": round(time.monotonic() - services().started_at, 1),
        "timestamp": now_iso(),
    }


def _from_registry(registry) -> list[dict]:
    """The enabled gateways as the registry knows them (when the database cannot say which exist)."""
    return [{"id": c.id, "name": c.name, "url": c.url, "enabled": True, "connected": c.connected,
             "version": c.client.state.server_version if c.connected else None, "lastError": c.last_error,
             "lastConnectedAt": c.client.state.connected_at if c.client else None,
             "latencyMs": c.client.latency_ms if c.connected else None} for c in registry.connections()]


async def status() -> dict:
    """What the status page shows: the health report, the applied migrations, the gateways (from the
    database when it answers, else from the registry) and the database's dialect."""
    report = await check()
    registry = services().gateways
    if report["db"]["connected"]:
        db = current_db()
        applied, gateway_list = await migrations.applied(db), await gateways.listing(db, registry)
    else:
        applied, gateway_list = [], _from_registry(registry)
    return {"report": report, "migrations": applied, "gateways": gateway_list,
            "dialect": "SQLite" if services().config.is_sqlite else "PostgreSQL"}
