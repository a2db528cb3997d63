"""The audit log for admins: a filterable page, CSV export, and GET /api/audit."""

from __future__ import annotations

import csv
import io
import json

from quart import Blueprint, Response, render_template, request

from .. import audit, htmx
from ..auth.principal import require_role
from ..clock import iso, parse_iso
from ..errors import InvalidInput
from ..payload import query_int
from ..spreadsheet import csv_cell
from ..services import current_db

blueprint = Blueprint("audit", __name__)

PAGE_SIZE = 100
MAX_LIMIT = 1000
CSV_LIMIT = 50_000


def _filters() -> dict[str, str | None]:
    """Filters from the query string (camelCase on the API, snake_case in the page's form)."""
    args = request.args
    filters = {
        "action": args.get("action"),
        "entity_type": args.get("entityType") or args.get("entity_type"),
        "entity_id": args.get("entityId") or args.get("entity_id"),
        "user_id": args.get("userId") or args.get("user_id"),
        "actor": args.get("actor"),
        "since": args.get("since"),
        "before": args.get("before"),
    }
    for name in ("since", "before"):
        if filters[name]:
            try:
                filters[name] = iso(parse_iso(filters[name]))
            except (ValueError, OverflowError):
                raise InvalidInput(f"{name}: expected an ISO-8601 date or time, e.g. 2026-01-31", field=name) from None
    return {k: (v.strip() if isinstance(v, str) and v.strip() else None) for k, v in filters.items()}


@blueprint.get("/api/audit")
async def api_audit():
    require_role("admin", "read the audit log")
    entries = await audit.search(current_db(), query_int("limit", 100, 1, MAX_LIMIT), **_filters())
    return {"auditLog": [audit.to_json(entry) for entry in entries], "count": len(entries)}


@blueprint.get("/admin/audit")
async def audit_page():
    require_role("admin", "read the audit log")
    filters = _filters()
    db = current_db()
    entries = await audit.search(db, PAGE_SIZE + 1, **filters)
    older = entries[PAGE_SIZE - 1]["created_at"] if len(entries) > PAGE_SIZE else None
    actions = await audit.actions(db)
    template = "audit/_entries.html" if htmx.is_htmx() else "audit/log.html"
    # Links carry the filters only (never arbitrary query keys into url_for).
    query = {key: value for key, value in filters.items() if value}
    return await render_template(template, entries=entries[:PAGE_SIZE], filters=filters, actions=actions,
                                 older=older, describe=audit.describe, query=query)


@blueprint.get("/admin/audit.csv")
async def audit_csv():
    require_role("admin", "export the audit log")
    entries = await audit.search(current_db(), CSV_LIMIT, **_filters())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["createdAt", "actorKind", "actor", "userId", "tokenId", "action", "entityType", "entityId",
                     "summary", "details", "ip", "userAgent"])
    for e in entries:
        writer.writerow([csv_cell(cell) for cell in (
            e["created_at"], e["actor_kind"], e["actor_label"], e["user_id"], e["token_id"], e["action"],
            e["entity_type"], e["entity_id"], audit.describe(e),
            json.dumps(e["details"], sort_keys=True) if e["details"] is not None else None, e["ip"], e["user_agent"])])
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="clawtrol-audit.csv"'})
