"""Reading request bodies strictly: a JSON object with known fields, or a 4xx that says what is wrong."""

from __future__ import annotations

import json

from quart import request

from .errors import ApiError


async def json_object(allowed: set[str] | frozenset[str]) -> dict:
    """The request's JSON object body. Unknown fields, non-objects and malformed JSON are refused."""
    if request.mimetype != "application/json":
        raise ApiError("Content-Type must be application/json", 415)
    raw = await request.get_data(as_text=True)
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise ApiError(f"Malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(body, dict):
        raise ApiError("Request body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
                       field=unknown[0])
    return body
