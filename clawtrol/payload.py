"""Reading request bodies strictly: a JSON object with known fields, or a 4xx that says what is wrong."""

from __future__ import annotations

import json

from quart import Quart, request

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
    for name, value in body.items():
        if _contains_nul(value):
            raise ApiError(f"{name}: must not contain NUL characters", field=name)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
                       field=unknown[0])
    return body


def _contains_nul(value: object) -> bool:
    """NUL can't be stored in PostgreSQL text and is never meaningful in our fields."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(v) or _contains_nul(k) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def install(app: Quart) -> None:
    @app.before_request
    async def refuse_nul_characters():
        """NUL in a path, query or form value is never valid input (and PostgreSQL refuses it)."""
        if "\x00" in request.path or any(_contains_nul(v) for v in request.args.values()):
            raise ApiError("The request contains a NUL character in its address or query.")
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form
            bad = next((name for name, value in form.items() if _contains_nul(value)), None)
            if bad:
                raise ApiError(f"{bad}: must not contain NUL characters", field=bad)
