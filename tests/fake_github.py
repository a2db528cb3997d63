"""A local fake of GitHub's OAuth web flow and the few REST endpoints Mission Clawtrol uses.

One Quart app plays both hosts: point GITHUB_URL and GITHUB_API_URL at the same base URL.

Web flow (GITHUB_URL):
    GET  /login/oauth/authorize     auto-approves (no consent page), 302s back with ?code=&state=
    POST /login/oauth/access_token  exchanges the code; errors are HTTP 200 with an "error" field

REST API (GITHUB_API_URL), authenticated with ``Authorization: Bearer <token>`` or ``token <token>``:
    GET /user, /user/emails, /user/orgs, /user/memberships/orgs/{org}

Tests drive it through the shared ``FakeGitHubState`` at ``app.extensions["fake_github"]``: add users
and org memberships, pick who signs in (``next_login`` or ``?login=NAME`` on the authorize URL), make
the next authorization fail (``deny_next``), and inspect ``requests``.

Run standalone (from the project root)::

    python -m tests.fake_github --port 8765 [--client-id X --client-secret Y]

or in-process, in a background thread::

    with run_fake_github_in_thread(8765, "id", "secret") as github:
        github.add_org_member("acme", "octocat")
        ...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import html
import secrets
import socket
import string
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from quart import Quart, Response, jsonify, redirect, request

DEFAULT_CLIENT_ID = "test-client-id"
DEFAULT_CLIENT_SECRET = "test-client-secret"
CODE_LIFETIME_SECONDS = 600.0  # GitHub: "codes expire after 10 minutes"

_DOCS = "https://docs.github.com"
_TOKEN_ERROR_URI = f"{_DOCS}/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
_TOKEN_ERRORS = {
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
    "unsupported_grant_type": "The grant type is not supported.",
}

# Scopes that imply others (https://docs.github.com/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps).
_IMPLIED_SCOPES = {
    "user": {"read:user", "user:email", "user:follow"},
    "admin:org": {"write:org", "read:org"},
    "write:org": {"read:org"},
}
_TOKEN_ALPHABET = string.ascii_letters + string.digits

RecordedRequest = tuple[str, str, dict[str, str], dict[str, str]]  # (method, path, headers, params)


@dataclass
class FakeUser:
    """A GitHub account. ``email`` is the public profile email (None: no public email)."""

    id: int
    login: str
    name: str | None = None
    email: str | None = None
    avatar_url: str = ""
    emails: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.avatar_url:
            self.avatar_url = f"https://avatars.githubusercontent.com/u/{self.id}?v=4"


@dataclass
class FakeGrant:
    """An issued authorization code, remembered until it is exchanged or expires."""

    login: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str | None
    issued_at: float = field(default_factory=time.monotonic)


@dataclass
class FakeToken:
    """An issued access token."""

    login: str
    scopes: list[str]


@dataclass
class FakeGitHubState:
    """Everything the fake knows; tests mutate it between requests.

    ``requests`` records every request as ``(method, path, headers, params)`` where ``params`` is the
    query string for GET and query + form body for POST (first value per key).
    """

    client_id: str
    client_secret: str
    users: dict[str, FakeUser] = field(default_factory=dict)
    org_memberships: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    next_login: str = "octocat"
    deny_next: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    codes: dict[str, FakeGrant] = field(default_factory=dict)
    tokens: dict[str, FakeToken] = field(default_factory=dict)
    code_lifetime: float = CODE_LIFETIME_SECONDS
    base_url: str | None = None  # set by the runners

    def __post_init__(self) -> None:
        if not self.users:
            self._add_default_users()

    def _add_default_users(self) -> None:
        self.add_user("octocat", 583231, name="The Octocat", email=None, emails=[
            {"email": "octocat@github.test", "primary": True, "verified": True, "visibility": "private"},
        ])
        self.add_user("hubot", 1001, name="Hubot", email="hubot@github.test")

    def reset(self) -> None:
        """Back to the pre-populated state: default users, no memberships, codes, tokens or requests."""
        self.users.clear()
        self.org_memberships.clear()
        self.requests.clear()
        self.codes.clear()
        self.tokens.clear()
        self.next_login = "octocat"
        self.deny_next = False
        self.code_lifetime = CODE_LIFETIME_SECONDS
        self._add_default_users()

    def add_user(self, login: str, id: int, name: str | None = None, email: str | None = None,
                 emails: list[dict[str, Any]] | None = None) -> FakeUser:
        """Add (or replace) a user. Without ``emails``, a public ``email`` becomes the primary verified one."""
        if emails is None:
            emails = [{"email": email, "primary": True, "verified": True, "visibility": "public"}] if email else []
        user = FakeUser(id=id, login=login, name=name, email=email, emails=[dict(e) for e in emails])
        self.users[login] = user
        return user

    def add_org_member(self, org: str, login: str, state: str = "active", role: str = "member") -> None:
        """Make ``login`` a member of ``org`` (state "active"|"pending", role "member"|"admin")."""
        if state not in ("active", "pending"):
            raise ValueError(f"state must be 'active' or 'pending', not {state!r}")
        if role not in ("member", "admin"):
            raise ValueError(f"role must be 'member' or 'admin', not {role!r}")
        self.org_memberships[(org, login)] = {"state": state, "role": role}

    def issue_token(self, login: str, scope: str = "read:user user:email read:org") -> str:
        """Mint an access token directly (skipping the web flow), for API-only tests."""
        token = "gho_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))
        self.tokens[token] = FakeToken(login=login, scopes=_parse_scopes(scope))
        return token

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests for ``path`` (optionally only those with ``method``)."""
        return [r for r in self.requests if r[1] == path and (method is None or r[0] == method.upper())]

    # -- lookups used by the app (case-insensitive, like GitHub logins) --

    def find_user(self, login: str) -> FakeUser | None:
        if login in self.users:
            return self.users[login]
        return next((u for u in self.users.values() if u.login.lower() == login.lower()), None)

    def find_membership(self, org: str, login: str) -> tuple[str, dict[str, str]] | None:
        for (member_org, member_login), membership in self.org_memberships.items():
            if member_org.lower() == org.lower() and member_login.lower() == login.lower():
                return member_org, membership
        return None


def _parse_scopes(scope: str | None) -> list[str]:
    """GitHub accepts space- or comma-separated scopes; keep order, drop duplicates."""
    parts = (scope or "").replace(",", " ").split()
    return list(dict.fromkeys(parts))


def _has_scope(granted: list[str], *wanted: str) -> bool:
    effective = set(granted)
    for scope in granted:
        effective |= _IMPLIED_SCOPES.get(scope, set())
    return any(w in effective for w in wanted)


def _pkce_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _error_page(status: int, title: str, detail: str) -> Response:
    body = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p></body></html>")
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def _api_error(status: int, message: str, docs: str = f"{_DOCS}/rest") -> Response:
    response = jsonify({"message": message, "documentation_url": docs, "status": str(status)})
    response.status_code = status
    return response


def _user_json(user: FakeUser, base: str) -> dict[str, Any]:
    api = f"{base}/users/{user.login}"
    return {
        "login": user.login,
        "id": user.id,
        "node_id": base64.b64encode(f"04:User{user.id}".encode()).decode(),
        "avatar_url": user.avatar_url,
        "gravatar_id": "",
        "url": api,
        "html_url": f"{base}/{user.login}",
        "followers_url": f"{api}/followers",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "type": "User",
        "user_view_type": "public",
        "site_admin": False,
        "name": user.name,
        "company": None,
        "blog": "",
        "location": None,
        "email": user.email,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 8,
        "public_gists": 8,
        "followers": 0,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }


def _org_json(org: str, base: str) -> dict[str, Any]:
    org_id = zlib.crc32(org.lower().encode()) % 10_000_000 + 1_000_000
    api = f"{base}/orgs/{org}"
    return {
        "login": org,
        "id": org_id,
        "node_id": base64.b64encode(f"012:Organization{org_id}".encode()).decode(),
        "url": api,
        "repos_url": f"{api}/repos",
        "members_url": f"{api}/members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{org_id}?v=4",
        "description": None,
    }


def create_fake_github(client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET) -> Quart:
    """Build the fake; its state is ``app.extensions["fake_github"]`` (a ``FakeGitHubState``)."""
    app = Quart(__name__)
    state = FakeGitHubState(client_id=client_id, client_secret=client_secret)
    app.extensions["fake_github"] = state

    def base_url() -> str:
        return request.host_url.rstrip("/")

    @app.before_request
    async def record() -> None:
        params = request.args.to_dict()
        if request.method == "POST":
            params.update((await request.form).to_dict())
        state.requests.append((request.method, request.path, dict(request.headers), params))

    # -- web flow --

    @app.get("/login/oauth/authorize")
    async def authorize() -> Response:
        args = request.args
        if args.get("client_id") != state.client_id:
            return _error_page(400, "Invalid client", "The client_id is not registered with this fake GitHub.")
        redirect_uri = args.get("redirect_uri")
        if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _error_page(400, "Invalid redirect_uri", "A redirect_uri (http or https) is required.")
        code_challenge = args.get("code_challenge") or None
        if code_challenge and args.get("code_challenge_method") != "S256":
            return _error_page(400, "Invalid PKCE request", "code_challenge_method must be S256.")
        login = args.get("login") or state.next_login
        user = state.find_user(login)
        if user is None:
            return _error_page(400, "Unknown user", f"No fake GitHub user named {login!r}.")
        oauth_state = args.get("state")
        if state.deny_next:
            state.deny_next = False
            return redirect(_add_query(redirect_uri, {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "error_uri": f"{_DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
                "state": oauth_state,
            }), 302)
        code = secrets.token_hex(10)  # GitHub codes are 20 hex characters
        state.codes[code] = FakeGrant(login=user.login, redirect_uri=redirect_uri,
                                      scopes=_parse_scopes(args.get("scope")), code_challenge=code_challenge)
        return redirect(_add_query(redirect_uri, {"code": code, "state": oauth_state}), 302)

    def token_response(payload: dict[str, str]) -> Response:
        """GitHub answers 200 even for errors; JSON only when asked for, else form-encoded."""
        if "error" in payload:
            payload = {**payload, "error_uri": f"{_TOKEN_ERROR_URI}/#{payload['error'].replace('_', '-')}"}
        if "application/json" in request.headers.get("Accept", ""):
            return jsonify(payload)
        return Response(urlencode(payload), status=200, content_type="application/x-www-form-urlencoded; charset=utf-8")

    def token_error(error: str) -> Response:
        return token_response({"error": error, "error_description": _TOKEN_ERRORS[error]})

    @app.post("/login/oauth/access_token")
    async def access_token() -> Response:
        params = request.args.to_dict()
        params.update((await request.form).to_dict())

        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        authorization = request.headers.get("Authorization", "")
        if authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
                basic_id, _, basic_secret = decoded.partition(":")
            except ValueError:
                return token_error("incorrect_client_credentials")
            basic_id, basic_secret = unquote(basic_id), unquote(basic_secret)
            if client_id is not None and client_id != basic_id:
                return token_error("incorrect_client_credentials")
            client_id, client_secret = basic_id, basic_secret
        if client_id != state.client_id or client_secret != state.client_secret:
            return token_error("incorrect_client_credentials")

        if params.get("grant_type", "authorization_code") != "authorization_code":
            return token_error("unsupported_grant_type")
        grant = state.codes.pop(params.get("code", ""), None)  # single use, even when the exchange fails
        if grant is None or time.monotonic() - grant.issued_at > state.code_lifetime:
            return token_error("bad_verification_code")
        if "redirect_uri" in params and params["redirect_uri"] != grant.redirect_uri:
            return token_error("redirect_uri_mismatch")
        if grant.code_challenge is not None:
            verifier = params.get("code_verifier")
            if not verifier or _pkce_s256(verifier) != grant.code_challenge:
                return token_error("bad_verification_code")

        token = state.issue_token(grant.login, " ".join(grant.scopes))
        return token_response({"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)})

    # -- REST API --

    def authenticate() -> tuple[FakeUser, FakeToken] | Response:
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            return _api_error(401, "Requires authentication")
        scheme, _, credential = authorization.partition(" ")
        token = state.tokens.get(credential.strip()) if scheme.lower() in ("bearer", "token") else None
        user = state.find_user(token.login) if token else None
        if token is None or user is None:
            return _api_error(401, "Bad credentials")
        return user, token

    @app.after_request
    async def scope_headers(response: Response) -> Response:
        """Like GitHub, tell API clients which scopes their token has."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        token = state.tokens.get(credential.strip()) if scheme.lower() in ("bearer", "token") else None
        if token is not None and not request.path.startswith("/login/"):
            response.headers["X-OAuth-Scopes"] = ", ".join(token.scopes)
            response.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        return response

    @app.get("/user")
    async def get_user() -> Response:
        auth = authenticate()
        if isinstance(auth, Response):
            return auth
        user, _ = auth
        return jsonify(_user_json(user, base_url()))

    @app.get("/user/emails")
    async def get_user_emails() -> Response:
        auth = authenticate()
        if isinstance(auth, Response):
            return auth
        user, token = auth
        if not _has_scope(token.scopes, "user:email"):
            return _api_error(404, "Not Found", f"{_DOCS}/rest/users/emails#list-email-addresses-for-the-authenticated-user")
        return jsonify([{"email": e["email"], "primary": bool(e.get("primary")), "verified": bool(e.get("verified")),
                         "visibility": e.get("visibility")} for e in user.emails])

    @app.get("/user/orgs")
    async def get_user_orgs() -> Response:
        auth = authenticate()
        if isinstance(auth, Response):
            return auth
        user, token = auth
        if not _has_scope(token.scopes, "read:org", "user"):
            return _api_error(403, "You need at least read:org scope or user scope to list your organizations.",
                              f"{_DOCS}/rest/orgs/orgs#list-organizations-for-the-authenticated-user")
        orgs = [org for (org, login), m in state.org_memberships.items()
                if login.lower() == user.login.lower() and m["state"] == "active"]
        return jsonify([_org_json(org, base_url()) for org in orgs])

    @app.get("/user/memberships/orgs/<org>")
    async def get_org_membership(org: str) -> Response:
        auth = authenticate()
        if isinstance(auth, Response):
            return auth
        user, token = auth
        if not _has_scope(token.scopes, "read:org"):
            return _api_error(403, "You need at least read:org scope or user scope to list your organization memberships.",
                              f"{_DOCS}/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user")
        found = state.find_membership(org, user.login)
        if found is None:
            return _api_error(404, "Not Found",
                              f"{_DOCS}/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user")
        org_login, membership = found
        base = base_url()
        return jsonify({
            "url": f"{base}/orgs/{org_login}/memberships/{user.login}",
            "state": membership["state"],
            "role": membership["role"],
            "organization_url": f"{base}/orgs/{org_login}",
            "organization": _org_json(org_login, base),
            "user": {k: v for k, v in _user_json(user, base).items()
                     if k in ("login", "id", "node_id", "avatar_url", "url", "html_url", "type", "site_admin")},
        })

    @app.errorhandler(404)
    async def not_found(_error: Exception) -> Response:
        return _api_error(404, "Not Found")

    @app.errorhandler(405)
    async def not_allowed(_error: Exception) -> Response:
        return _api_error(404, "Not Found")

    return app


# -- runners --

def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that is free right now (e.g. for a subprocess runner)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _hypercorn_config(host: str, port: int):
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    return config


@contextlib.contextmanager
def run_fake_github_in_thread(port: int | None = None, client_id: str = DEFAULT_CLIENT_ID,
                              client_secret: str = DEFAULT_CLIENT_SECRET, host: str = "127.0.0.1",
                              startup_timeout: float = 10.0) -> Iterator[FakeGitHubState]:
    """Serve a fresh fake on ``host:port`` (port 0 or None: an ephemeral one) from a background thread.

    The socket is bound here, in the caller's thread, so "address in use" raises immediately. Yields the
    shared ``FakeGitHubState`` (``state.base_url`` is ``http://HOST:PORT``) once the port accepts
    connections; on exit, stops hypercorn via its shutdown trigger and joins the thread.
    """
    from hypercorn.asyncio import serve

    app = create_fake_github(client_id, client_secret)
    state: FakeGitHubState = app.extensions["fake_github"]
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port or 0))
    except OSError:
        listener.close()
        raise
    port = listener.getsockname()[1]
    config = _hypercorn_config(host, port)
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn adopts (and later closes) the bound socket
    state.base_url = f"http://{host}:{port}"
    loop = asyncio.new_event_loop()
    shutdown = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve(app, config, shutdown_trigger=shutdown.wait))
        except BaseException as exc:  # surfaced to the caller while starting
            failure.append(exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=f"fake-github-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if failure or not thread.is_alive():
                cause = failure[0] if failure else None
                raise RuntimeError(f"fake GitHub failed to start on {host}:{port}") from cause
            try:
                with socket.create_connection((host, port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fake GitHub did not start listening on {host}:{port}") from None
                time.sleep(0.02)
        yield state
    finally:
        with contextlib.suppress(RuntimeError):  # the loop already closed: the server is gone
            loop.call_soon_threadsafe(shutdown.set)
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fake_github --port N [--client-id X --client-secret Y]``."""
    from hypercorn.asyncio import serve

    parser = argparse.ArgumentParser(description="Serve a fake GitHub (OAuth web flow + REST API).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    args = parser.parse_args(argv)

    app = create_fake_github(args.client_id, args.client_secret)
    app.extensions["fake_github"].base_url = f"http://{args.host}:{args.port}"
    print(f"fake GitHub listening on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app, _hypercorn_config(args.host, args.port)))


if __name__ == "__main__":
    main()
