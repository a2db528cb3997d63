"""Error responses: JSON for /api, HTML pages for people, and never a stack trace for either."""

from __future__ import annotations

import logging

from quart import Quart, render_template, request
from werkzeug.exceptions import HTTPException

from .db import DatabaseUnavailable
from .incoming import incoming

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal the caller is told about: a message naming the field and the reason, and an HTTP status.

    Raise one of the kinds below; views catch by kind, never by status:

    - `Refused` — the caller can correct it (invalid input, a conflict): a view re-renders its form with the
      message;
    - `Denied` — not found, forbidden, not signed in: nothing to show in place, so it propagates to the one
      error handler;
    - `GatewayTrouble` — the OpenClaw gateway is away or refused: a view says so where the action was.
    """

    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.extra = extra or {}

    def body(self) -> dict:
        body = {"error": self.message, **self.extra}
        if self.field:
            body["field"] = self.field
        if self.code:
            body["code"] = self.code
        return body


class Refused(ApiError):
    """The request cannot be done as asked; the caller can change it and try again."""


class InvalidInput(Refused):
    status = 400


class Conflict(Refused):
    status = 409


class UnsupportedMediaType(Refused):
    status = 415


class RateLimited(Refused):
    status = 429


class Denied(ApiError):
    """Nothing here for this caller: the one error handler answers."""


class Unauthenticated(Denied):
    status = 401


class Forbidden(Denied):
    status = 403


class NotFound(Denied):
    status = 404


class GatewayTrouble(ApiError):
    """The OpenClaw gateway could not do it; nothing on our side is wrong with the request."""


class GatewayUnreachable(GatewayTrouble):
    status = 503


class GatewayRefused(GatewayTrouble):
    status = 502


def wants_json() -> bool:
    path = incoming().path
    return path.startswith("/api/") or path == "/api" or path == "/ws"


async def _page(status: int, title: str, message: str):
    return await render_template("errors/error.html", status=status, title=title, message=message), status


async def respond(status: int, title: str, message: str, body: dict | None = None):
    if wants_json():
        return body or {"error": message}, status
    return await _page(status, title, message)


def install(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(error: ApiError):
        return await respond(error.status, "Request refused", error.message, error.body())

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException):
        status = error.code or 500
        messages = {
            400: "The request was malformed.",
            404: "There is nothing at this address.",
            405: "This address does not accept that method.",
            413: "The request body is too large.",
            415: "Unsupported content type.",
        }
        message = messages.get(status, error.name)
        if status == 400 and error.description and wants_json():
            message = f"Bad request: {error.description}"
        body, code = await respond(status, error.name, message)
        allowed = getattr(error, "valid_methods", None)  # 405 says which methods would work
        return body, code, ({"Allow": ", ".join(allowed)} if allowed else {})

    @app.errorhandler(DatabaseUnavailable)
    async def database_unavailable(error: DatabaseUnavailable):
        log.error("database unavailable: %s", error)
        body, status = await respond(503, "Service unavailable",
                                     "The database is unreachable; try again in a moment.")
        return body, status, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await respond(500, "Something went wrong",
                             "An unexpected error occurred. It has been logged.")
