"""One guard in front of every route: who is calling (bearer token or session cookie), whether the route
needs that, and CSRF for cookie-authenticated writes.

Routes are private unless their view is decorated with @public. Unauthenticated callers get 401 JSON on
/api, 401 with HX-Redirect for htmx requests, and a redirect to the sign-in page otherwise.

Before anything else the Host must be one we answer to (clawtrol/hosts.py; /api/health is exempt), and
the guard runs before any other hook that reads the body, so an anonymous request is refused unparsed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import quote, urlsplit

from quart import Quart, current_app, g, redirect, request, url_for
from quart_auth import AuthUser, QuartAuth, current_user, login_user, logout_user

from ..db import DatabaseUnavailable
from .. import htmx
from ..errors import InvalidInput, RateLimited, Unauthenticated, wants_json
from ..hosts import HostPolicy, hostname_of
from ..incoming import incoming
from ..signed_session import auth_serializer
from . import csrf, sessions
from .principal import Principal, client_ip, log_refusal
from .ratelimit import FailureLimiter, client_key
from ..services import current_db, services, services_of

log = logging.getLogger(__name__)

SESSION_COOKIE = "clawtrol_session"
SECURE_SESSION_COOKIE = "__Host-clawtrol_session"  # https PUBLIC_URL: Secure, Path=/, no Domain
HOST_CHECK_EXEMPT = frozenset({"/api/health"})  # container probes call it by IP or service name


def limiter(name: str) -> FailureLimiter:
    """The app's failure counters: "token_failures" (bad bearer tokens) and "signin_failures"."""
    return getattr(services(), name)


def public(view):
    """Mark a view as open to unauthenticated callers."""
    view.is_public = True
    return view


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in; anything that could leave the site becomes '/'."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def sign_in_url(next_path: str | None = None) -> str:
    target = safe_next(next_path)
    return url_for("auth.login_page") + ("" if target == "/" else f"?next={quote(target, safe='/')}")


def start_browser_session(raw_session_id: str) -> None:
    login_user(AuthUser(raw_session_id), remember=True)


def end_browser_session() -> None:
    logout_user()


async def _principal_from_bearer(raw: str) -> Principal:
    # Per client (behind a trusted proxy, the forwarded one). While a client is limited every bearer
    # attempt from it gets 429, valid or not: the refusal costs no database lookup, and answering valid
    # tokens would tell a guesser when a guess hit. Other clients are never affected.
    held = services()
    address = client_key(client_ip())
    wait = held.token_failures.retry_after(address)
    if wait:
        raise RateLimited("Too many failed token attempts; try again later.", extra={"retryAfter": wait})
    row = await held.token_cache.lookup(held.db, raw.strip())
    if row is None:
        held.token_failures.fail(address)
        log.warning("rejected API token", extra={"ip": client_ip()})
        raise Unauthenticated("Invalid, expired or revoked API token")
    held.activity.token_used(row["id"])  # written in the background, not by this request
    return Principal(kind="token", id=row["id"], role=row["role"], label=row["name"])


async def _principal_from_cookie() -> Principal | None:
    raw_session = current_user.auth_id
    if not raw_session:
        return None
    row = await sessions.lookup(current_db(), raw_session)
    if row is None:
        logout_user()  # expired, idle, deleted or deactivated: drop the stale cookie
        return None
    services().activity.session_seen(row["session_id"])
    return Principal(kind="user", id=row["id"], role=row["role"], label=row["login"], name=row["name"],
                     avatar_url=row["avatar_url"], session_id=raw_session)


async def authenticate() -> None:
    """Set g.principal (or None) and g.via ('bearer' or 'cookie')."""
    scheme, _, credentials = incoming().headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        g.via = "bearer"
        g.principal = await _principal_from_bearer(credentials)
    else:
        g.via = "cookie"
        g.principal = await _principal_from_cookie()


def _unauthenticated():
    if wants_json():
        return {"error": "Not authenticated"}, 401
    if htmx.is_htmx():
        current = htmx.current_url()
        parts = urlsplit(current or "")
        back = parts.path + (f"?{parts.query}" if parts.query else "") if current else None
        return "", 401, htmx.redirect(sign_in_url(back))
    return redirect(sign_in_url(request.full_path.rstrip("?")))


def _is_public() -> bool:
    if request.endpoint in (None, "static"):
        return True
    return getattr(current_app.view_functions.get(request.endpoint), "is_public", False)


def check_host() -> None:
    """A 400 for a Host we don't answer to: the defence against DNS rebinding."""
    current = incoming()
    if current.path in HOST_CHECK_EXEMPT or services().host_policy.allows(current.host):
        return
    shown = (hostname_of(current.host) or current.host)[:100]
    log_refusal("host", f"Host {shown!r} is not PUBLIC_URL's, a loopback name or in ALLOWED_HOSTS")
    raise InvalidInput(f"This server does not answer to the host name {shown!r}. Use the address in PUBLIC_URL "
                       "(operators: list other names in ALLOWED_HOSTS).", code="HOST")


async def guard_request():
    check_host()
    try:
        await authenticate()
    except DatabaseUnavailable:
        if not _is_public():
            raise  # answered with 503
        g.principal, g.via = None, "cookie"  # /api/health must still report
    if g.principal is None and not _is_public():
        return _unauthenticated()
    if request.method not in csrf.SAFE_METHODS and g.via == "cookie":
        if g.principal is not None and g.principal.session_id:
            await csrf.check(g.principal.session_id)
        else:
            csrf.check_same_origin()
    return None


async def guard_websocket():
    """WebSockets need credentials too; cookie-authenticated ones must come from our own pages."""
    check_host()
    await authenticate()
    if g.principal is None:
        raise Unauthenticated("Not authenticated")
    if g.via == "cookie":
        csrf.check_websocket_origin()  # no cross-site WebSocket hijacking with the session cookie


class _QuartAuth(QuartAuth):
    async def after_request(self, response):
        """quart-auth writes or deletes its cookie after a sign-in or sign-out; a request that never looked at
        the cookie (every bearer request) did neither, so it skips resolving the user a second time."""
        if self.attribute_name not in g:
            return response
        return await super().after_request(response)


def install(app: Quart) -> None:
    config = app.config["CLAWTROL"]
    held = services_of(app)
    held.host_policy = HostPolicy(config.public_url, config.allowed_hosts)
    app.config.update(
        QUART_AUTH_COOKIE_NAME=SECURE_SESSION_COOKIE if config.secure_cookies else SESSION_COOKIE,
        QUART_AUTH_COOKIE_DOMAIN=None,
        QUART_AUTH_COOKIE_PATH="/",
        QUART_AUTH_COOKIE_SECURE=config.secure_cookies,
        QUART_AUTH_COOKIE_HTTP_ONLY=True,
        QUART_AUTH_COOKIE_SAMESITE="Lax",
        QUART_AUTH_DURATION=int(sessions.SESSION_LIFETIME / timedelta(seconds=1)),
        QUART_AUTH_SALT="clawtrol-session",
    )
    _QuartAuth(app, serializer_class=auth_serializer)
    # Per client (ratelimit.client_key): 20 bad bearer tokens per 5 minutes, 10 failed sign-ins per 10 minutes.
    held.token_failures = FailureLimiter(max_failures=20, window_seconds=300)
    held.signin_failures = FailureLimiter(max_failures=10, window_seconds=600)
    app.before_request(guard_request)
    app.before_websocket(guard_websocket)

    @app.context_processor
    def auth_context() -> dict:
        principal = g.get("principal")
        token = csrf.token_for(principal.session_id) if principal and principal.session_id else ""
        return {"principal": principal, "csrf_token": token, "dev_login": config.dev_login}
