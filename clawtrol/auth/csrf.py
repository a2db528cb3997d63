"""CSRF defence for cookie-authenticated writes: a per-session token plus a same-origin check.

Bearer-token requests carry no ambient credentials and are exempt. The token is an HMAC of the session id,
so nothing extra is stored; htmx sends it as a header (hx-headers on <body>), plain forms as a hidden field.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from quart import current_app, request

from ..errors import ApiError
from ..incoming import incoming

HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_for(session_id: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_origins() -> set[str]:
    incoming_url = incoming().host_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    return {_origin(current_app.config["CLAWTROL"].public_url), _origin(incoming_url)}


def check_websocket_origin() -> None:
    """Browsers always send Origin on WebSocket handshakes; it must be one of ours."""
    origin = incoming().headers.get("Origin")
    if origin is not None and origin.lower() not in _allowed_origins():
        raise ApiError("Cross-origin WebSocket refused.", 403, code="CSRF")


def check_same_origin() -> None:
    """Refuse cross-site browser requests (Sec-Fetch-Site, or the Origin header on older browsers)."""
    fetch_site = incoming().headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site not in ("same-origin", "none"):
            raise ApiError("Cross-site request refused (CSRF protection).", 403, code="CSRF")
        return
    origin = incoming().headers.get("Origin")
    if origin and origin != "null":
        if origin.lower() not in _allowed_origins():
            raise ApiError("Cross-origin request refused (CSRF protection).", 403, code="CSRF")
    elif origin == "null":
        raise ApiError("Cross-origin request refused (CSRF protection).", 403, code="CSRF")


async def check(session_id: str) -> None:
    check_same_origin()
    sent = request.headers.get(HEADER)
    if not sent and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.form).get(FORM_FIELD)
    if not sent or not hmac.compare_digest(sent, token_for(session_id)):
        raise ApiError("Missing or invalid CSRF token; reload the page and try again.", 403, code="CSRF")
