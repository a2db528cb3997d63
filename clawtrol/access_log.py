"""Hypercorn's access log, with only the fields our format uses. Hypercorn's own atoms copy every request
and response header and the whole process environment for every request (a few per cent of a small
request's time), to fill a format that reads five of them."""

from __future__ import annotations

import logging
from typing import Any

from hypercorn.logging import Logger

FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'


class AccessLogger(Logger):
    async def access(self, request: Any, response: Any, request_time: float) -> None:
        """As Hypercorn's, but the line's fields are not even gathered when LOG_LEVEL hides access lines."""
        if self.access_logger is not None and self.access_logger.isEnabledFor(logging.INFO):
            await super().access(request, response, request_time)

    def atoms(self, request: Any, response: Any, request_time: float) -> dict[str, str]:
        client = request.get("client")
        method = request["method"] if request["type"] == "http" else "GET"
        size = "-"
        if response is not None:
            size = next((value.decode("latin1") for name, value in response.get("headers", [])
                         if name.lower() == b"content-length"), "-")
        return {
            "h": f"{client[0]}:{client[1]}" if client and len(client) == 2 else (client[0] if client else "-"),
            "r": f"{method} {request['path']} {request.get('http_version', 'ws')}",
            "s": str(response["status"]) if response is not None else "-",
            "b": size,
            "L": f"{request_time:.6f}",
        }
