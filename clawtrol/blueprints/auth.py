"""Sign-in and sign-out: the sign-in page, GitHub OAuth, the local dev sign-in, and /api/auth/*."""

from __future__ import annotations

import ipaddress
import logging
import re

from quart import Blueprint, g, redirect, render_template, request, session

from .. import htmx
from ..auth import github, oauth_state, sessions, users
from ..auth.guard import end_browser_session, limiter, public, safe_next, start_browser_session
from ..auth.principal import require_principal
from ..auth.ratelimit import client_key
from ..auth.signup import SignupPolicy
from ..hosts import hostname_of, is_loopback_name, url_hostname
from ..live import revoke_access
from ..services import current_call, current_db, services

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)

DEV_LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}$")
BROWSER_NONCE = "oauth_browser"  # in Quart's signed session cookie: binds sign-ins in flight to this browser


def _config():
    return services().config


def _client() -> tuple[str | None, str | None]:
    return request.remote_addr, request.headers.get("User-Agent")


async def _refuse(status: int, title: str, message: str, reason: str, login: str | None = None):
    """Show why sign-in failed, count the failure against the address, and audit it."""
    ip, user_agent = _client()
    limiter("signin_failures").fail(client_key(ip))
    await users.record_refusal(current_db(), login, reason, ip, user_agent)
    log.warning("sign-in refused", extra={"reason": reason, "login": login, "ip": ip})
    return await render_template("auth/refused.html", title=title, message=message), status


async def _rate_limited():
    wait = limiter("signin_failures").retry_after(client_key(request.remote_addr))  # the real client (proxy.py)
    if not wait:
        return None
    page = await render_template("auth/refused.html", title="Too many attempts",
                                 message=f"Too many failed sign-ins from your address. Try again in {wait} s.")
    return page, 429, {"Retry-After": str(wait)}


@blueprint.get("/login")
@public
async def login_page():
    target = safe_next(request.args.get("next"))
    if g.principal is not None:
        return redirect(target)
    return await _login_page(target)


async def _login_page(next_path: str, **extra):
    config = _config()
    return await render_template("auth/login.html", next=next_path,
                                 github_ready=bool(config.github_client_id and config.github_client_secret),
                                 **extra)


@blueprint.get("/api/auth/login")
@public
async def github_login():
    if limited := await _rate_limited():
        return limited
    config = _config()
    if not (config.github_client_id and config.github_client_secret):
        return await render_template("auth/refused.html", title="GitHub sign-in is not configured",
                                     message="Set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET."), 503
    url, state, verifier = github.authorization_request(config)
    session.pop("oauth", None)  # where older versions kept the state
    nonce = session.get(BROWSER_NONCE) or oauth_state.new_browser_nonce()
    session[BROWSER_NONCE] = nonce
    await oauth_state.remember(current_db(), state, verifier, safe_next(request.args.get("next")), nonce)
    return redirect(url)


@blueprint.get("/api/auth/callback")
@public
async def github_callback():
    if limited := await _rate_limited():
        return limited
    config = _config()
    # Used up here whatever happens next, so a callback URL works at most once.
    pending = await oauth_state.consume(current_db(), request.args.get("state"), session.get(BROWSER_NONCE))
    if request.args.get("error"):
        return await _refuse(400, "Sign-in cancelled", "GitHub did not authorize the sign-in.",
                             f"github_error:{request.args.get('error')[:60]}")
    if pending is None:
        return await _refuse(400, "Sign-in expired", "This sign-in was not started from this browser, has "
                             "expired (after 10 minutes) or has already been used. Start again.", "bad_state")
    code = request.args.get("code", "")
    if not code:
        return await _refuse(400, "Sign-in failed", "GitHub sent no authorization code.", "missing_code")
    try:
        profile = await github.complete(config, code, pending.verifier)
        if config.allowed_org:
            membership = await github.org_membership_state(config, profile.access_token, config.allowed_org)
            if membership != "active":
                return await _refuse(403, "Access denied",
                                     f"Only active members of the {config.allowed_org} GitHub organization can "
                                     "sign in to this Mission Clawtrol.", f"not_in_org:{membership or 'none'}",
                                     profile.login)
    except github.GitHubError as exc:
        return await _refuse(502, "Sign-in failed", str(exc), "github_failure")
    # The access token served the lookups above and is not kept.
    identity = users.Identity(login=profile.login, github_id=profile.id, name=profile.name, email=profile.email,
                              avatar_url=profile.avatar_url)
    return await _finish_sign_in(identity, pending.next_path)


async def _finish_sign_in(identity: users.Identity, next_path: str):
    ip, user_agent = _client()
    try:
        _, raw_session = await users.sign_in(current_db(), identity, ip, user_agent,
                                             SignupPolicy.from_config(_config()))
    except users.SignInRefused as refused:
        return await _refuse(403, "Access denied", refused.message, refused.reason, identity.login)
    limiter("signin_failures").reset(client_key(ip))
    start_browser_session(raw_session)
    return redirect(next_path)


def _from_loopback() -> bool:
    """From this machine, to a loopback name, from a page on a loopback name: a DNS-rebinding page (its own
    host name, resolving to 127.0.0.1) gets nothing, even where ALLOWED_HOSTS lets it in elsewhere."""
    try:
        peer_is_loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
    origin = request.headers.get("Origin")
    return (peer_is_loopback and is_loopback_name(hostname_of(request.host))
            and (origin is None or is_loopback_name(url_hostname(origin))))


@blueprint.post("/auth/dev-login")
@public
async def dev_login():
    if not _config().dev_login or not _from_loopback():
        return await render_template("auth/refused.html", title="Not available",
                                     message="The local dev sign-in is not enabled on this server."), 404
    form = await request.form
    login = (form.get("login") or "dev").strip().lower()
    if not DEV_LOGIN_PATTERN.match(login):
        return await _login_page(safe_next(form.get("next")),
                                 dev_error="login: 1–39 lowercase letters, digits or dashes"), 400
    identity = users.Identity(login=login, github_id=None, name=form.get("name", "").strip()[:100] or None)
    return await _finish_sign_in(identity, safe_next(form.get("next")))


@blueprint.get("/api/auth/me")
async def me():
    principal = require_principal()
    if principal.kind == "token":
        return {"id": principal.id, "kind": "token", "name": principal.label, "role": principal.role}
    return {**users.to_json(await users.get(current_db(), principal.id)), "kind": "user"}


@blueprint.post("/api/auth/logout")
async def logout():
    call = current_call()
    principal = call.principal
    if principal.session_id:
        await users.sign_out(call, principal.session_id)
        end_browser_session()
        await revoke_access("signed_out", session_key=sessions.session_key(principal.session_id))
    if htmx.is_htmx():
        return "", 204, htmx.redirect("/login")
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return redirect("/login", 303)
    return {"success": True}
