"""CSRF defence for cookie-authenticated writes: a per-session token plus a same-origin check.

Bearer-token requests carry no ambient credentials and are exempt. The token is an HMAC of the session id,
so nothing extra is stored; htmx sends it as a header (hx-headers on <body>), plain forms as a hidden field.

Our origins are PUBLIC_URL's and the request's own, but the latter only when its Host is one we answer
to (clawtrol/hosts.py): the Host header alone proves nothing (DNS rebinding). Every refusal is logged
with the caller, the client address and the reason (principal.log_refusal).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from quart import current_app, request

from ..errors import Forbidden
from ..incoming import incoming
from ..services import services
from .principal import log_refusal

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
    allowed = {_origin(current_app.config["CLAWTROL"].public_url)}
    if services().host_policy.allows(incoming().host):
        allowed.add(_origin(incoming().host_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)))
    return allowed


def _refuse(message: str, reason: str, action: str = "csrf"):
    log_refusal(action, reason[:300])
    raise Forbidden(message, code="CSRF")


def check_websocket_origin() -> None:
    """Browsers always send Origin on WebSocket handshakes; it must be one of ours."""
    origin = incoming().headers.get("Origin")
    if origin is not None and origin.lower() not in _allowed_origins():
        _refuse("Cross-origin WebSocket refused.", f"websocket Origin {origin!r} is not ours", "websocket")


def check_same_origin() -> None:
    """Refuse cross-site browser requests (Sec-Fetch-Site, and the Origin header whenever it is sent)."""
    fetch_site = incoming().headers.get("Sec-Fetch-Site")
    origin = incoming().headers.get("Origin")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        _refuse("Cross-site request refused (CSRF protection).", f"Sec-Fetch-Site {fetch_site!r}")
    if origin and origin != "null":
        if origin.lower() not in _allowed_origins():
            _refuse("Cross-origin request refused (CSRF protection).", f"Origin {origin!r} is not ours")
    elif origin == "null" and fetch_site is None:
        _refuse("Cross-origin request refused (CSRF protection).", "Origin null")


async def check(session_id: str) -> None:
    check_same_origin()
    sent = request.headers.get(HEADER)
    if not sent and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.form).get(FORM_FIELD)
    if not sent or not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), token_for(session_id).encode()):
        _refuse("Missing or invalid CSRF token; reload the page and try again.",
                "invalid CSRF token" if sent else "missing CSRF token")
