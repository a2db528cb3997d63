"""/api/activity: the activity feed agents and scripts post to (the original's paths and shapes)."""

from __future__ import annotations

from quart import Blueprint

from ..activity import feed
from ..auth.principal import require_principal, require_role
from ..payload import json_object, query_int
from ..services import current_call, current_db

blueprint = Blueprint("activity", __name__)


@blueprint.get("/api/activity")
async def api_activity():
    require_principal()
    limit = query_int("limit", feed.DEFAULT_LIMIT, 1, feed.MAX_LIMIT)
    offset = query_int("offset", 0, 0, 10**9)
    return await feed.page(current_db(), limit, offset)


@blueprint.post("/api/activity")
async def api_post_activity():
    require_role("member", "post activity")
    body = await json_object(feed.FIELDS | set(feed.SERVER_FIELDS))  # the server's own fields are refused by name
    return await feed.post(current_call(), body), 201
