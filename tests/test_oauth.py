"""GitHub sign-in end to end against a local fake GitHub that speaks GitHub's OAuth and REST contract."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clawtrol.app import create_app
from clawtrol import audit
from clawtrol.auth import oauth_state
from clawtrol.clock import utcnow
from clawtrol.config import load_config
from clawtrol.services import services_of

from .conftest import make_environ
from .fake_github import run_fake_github_in_thread


@pytest.fixture(scope="module")
def fake_github_server():
    with run_fake_github_in_thread() as state:
        yield state


@pytest.fixture
def github(fake_github_server):
    fake_github_server.reset()
    return fake_github_server


def github_environ(database_url, tmp_path, github, **overrides):
    return make_environ(database_url, tmp_path, GITHUB_URL=github.base_url, GITHUB_API_URL=github.base_url,
                        **overrides)


@pytest.fixture
async def oauth_app(database_url, tmp_path, github):
    app = create_app(load_config(github_environ(database_url, tmp_path, github), env_file=None))
    async with app.test_app():
        yield app


@pytest.fixture
async def org_app(database_url, tmp_path, github):
    app = create_app(load_config(github_environ(database_url, tmp_path, github, ALLOWED_ORG="acme"), env_file=None))
    async with app.test_app():
        yield app


async def start(client, next_path: str | None = None) -> str:
    """Begin sign-in; return the URL of GitHub's authorize page."""
    response = await client.get("/api/auth/login" + (f"?next={next_path}" if next_path else ""))
    assert response.status_code == 302
    return response.headers["Location"]


def authorize(url: str, login: str = "octocat") -> str:
    """What the browser does at GitHub: approve, and come back with the redirect to our callback."""
    response = httpx.get(url + f"&login={login}", follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


async def sign_in(client, login: str = "octocat", next_path: str | None = None):
    callback = authorize(await start(client, next_path), login)
    parts = urlsplit(callback)
    return await client.get(f"{parts.path}?{parts.query}")


async def test_first_user_becomes_admin_and_later_users_viewers(oauth_app, github):
    first = oauth_app.test_client()
    response = await sign_in(first, "octocat", "/admin/users")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    me = await (await first.get("/api/auth/me")).get_json()
    assert me["githubLogin"] == "octocat" and me["githubId"] == 583231 and me["role"] == "admin"
    assert me["email"] == "octocat@github.test"  # the primary verified address; the profile has none
    assert me["avatarUrl"].startswith("https://avatars.githubusercontent.com/u/583231")
    second = oauth_app.test_client()
    await sign_in(second, "hubot")
    # Least privilege: without ALLOWED_ORG or DEFAULT_ROLE=member, a stranger's GitHub account is read-only.
    assert (await (await second.get("/api/auth/me")).get_json())["role"] == "viewer"
    assert (await first.get("/admin/users")).status_code == 200


async def test_authorization_request_uses_state_pkce_exact_redirect_and_minimal_scopes(oauth_app, github):
    url = await start(oauth_app.test_client())
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{github.base_url}/login/oauth/authorize?")
    assert query["redirect_uri"] == ["http://localhost:3001/api/auth/callback"]
    assert query["scope"] == ["read:user user:email"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32
    assert query["client_id"] == ["test-client-id"]


async def test_token_exchange_sends_the_pkce_verifier(oauth_app, github):
    await sign_in(oauth_app.test_client())
    [exchange] = github.requests_to("/login/oauth/access_token", "POST")
    params = exchange[3]
    assert params["code_verifier"] and params["redirect_uri"] == "http://localhost:3001/api/auth/callback"


async def stored_github_tokens(db) -> list:
    """The users.github_token column (no named query reads it: the app never does)."""
    return [row["github_token"] for row in await db._db.fetch_all("SELECT github_token FROM users")]


async def test_profile_is_refreshed_and_the_github_token_is_not_kept(oauth_app, github):
    await sign_in(oauth_app.test_client())
    github.find_user("octocat").name = "Mona Octocat"
    await sign_in(oauth_app.test_client())
    db = services_of(oauth_app).db
    [user] = await db.all("users.list")
    assert user["name"] == "Mona Octocat"
    # GitHub issued a token at each sign-in; it served the profile lookups and was not stored.
    assert len(github.tokens) == 2
    assert await stored_github_tokens(db) == [None]


async def test_state_is_single_use_and_bound_to_the_browser(oauth_app, github):
    browser = oauth_app.test_client()
    callback = authorize(await start(browser))
    parts = urlsplit(callback)
    stranger = oauth_app.test_client()
    refused = await stranger.get(f"{parts.path}?{parts.query}")
    assert refused.status_code == 400 and "not started from this browser" in await refused.get_data(as_text=True)
    assert (await browser.get(f"{parts.path}?{parts.query}")).status_code == 302
    again = await browser.get(f"{parts.path}?{parts.query}")
    assert again.status_code == 400


async def test_a_replayed_callback_is_refused_and_opens_no_session(oauth_app, github):
    browser = oauth_app.test_client()
    parts = urlsplit(authorize(await start(browser)))
    callback = f"{parts.path}?{parts.query}"
    # What the browser held while at GitHub (Quart's session cookie), replayed later with the callback URL
    # (from history, a proxy log...) after the real sign-in finished: refused, and GitHub is not asked again.
    twin = oauth_app.test_client()
    for cookie in browser.cookie_jar:
        if cookie.name == "session":
            twin.set_cookie("localhost", cookie.name, cookie.value)
    assert (await browser.get(callback)).status_code == 302
    replayed = await twin.get(callback)
    assert replayed.status_code == 400 and "already been used" in await replayed.get_data(as_text=True)
    assert "clawtrol_session=" not in replayed.headers.get("Set-Cookie", "")
    assert (await twin.get("/api/auth/me")).status_code == 401
    assert len(github.requests_to("/login/oauth/access_token", "POST")) == 1  # the code was not sent again
    refusals = await audit.search(services_of(oauth_app).db, action="auth.refused")
    assert [r["details"]["reason"] for r in refusals] == ["bad_state"]


async def test_state_expires_after_ten_minutes(oauth_app, github, monkeypatch):
    browser = oauth_app.test_client()
    started = utcnow()
    late = urlsplit(authorize(await start(browser)))
    monkeypatch.setattr(oauth_state, "utcnow", lambda: started + timedelta(minutes=10, seconds=1))
    response = await browser.get(f"{late.path}?{late.query}")
    assert response.status_code == 400 and "expired" in await response.get_data(as_text=True)
    assert (await browser.get("/api/auth/me")).status_code == 401
    assert await services_of(oauth_app).db.all("users.list") == []
    # Finished within the ten minutes, a sign-in works.
    monkeypatch.undo()
    started = utcnow()
    in_time = urlsplit(authorize(await start(browser)))
    monkeypatch.setattr(oauth_state, "utcnow", lambda: started + timedelta(minutes=9, seconds=50))
    assert (await browser.get(f"{in_time.path}?{in_time.query}")).status_code == 302
    assert (await browser.get("/api/auth/me")).status_code == 200


async def test_state_and_verifier_stay_on_the_server(oauth_app, github):
    browser = oauth_app.test_client()
    url = await start(browser)
    state = parse_qs(urlsplit(url).query)["state"][0]
    # Quart's session cookie is signed, not encrypted: it holds only a random nonce binding the browser.
    [cookie] = [c for c in browser.cookie_jar if c.name == "session"]
    content = oauth_app.session_interface.get_signing_serializer(oauth_app).loads(cookie.value)
    assert list(content) == ["oauth_browser"] and state not in content["oauth_browser"]
    parts = urlsplit(authorize(url))
    assert (await browser.get(f"{parts.path}?{parts.query}")).status_code == 302
    [exchange] = github.requests_to("/login/oauth/access_token", "POST")
    assert exchange[3]["code_verifier"] not in json.dumps(content)


async def test_forged_state_is_refused(oauth_app, github):
    browser = oauth_app.test_client()
    callback = authorize(await start(browser))
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    forged = await browser.get(f"{parts.path}?code={query['code'][0]}&state=forged")
    assert forged.status_code == 400
    assert await services_of(oauth_app).db.all("users.list") == []


async def test_denied_authorization_is_explained_and_audited(oauth_app, github):
    github.deny_next = True
    browser = oauth_app.test_client()
    parts = urlsplit(authorize(await start(browser)))
    response = await browser.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 400 and "did not authorize" in await response.get_data(as_text=True)
    [row] = await audit.search(services_of(oauth_app).db, action="auth.refused")
    assert row["details"]["reason"] == "github_error:access_denied"


async def test_org_members_only(org_app, github):
    github.add_org_member("acme", "hubot")
    github.add_org_member("acme", "octocat", state="pending")
    member = org_app.test_client()
    url = await start(member)
    assert parse_qs(urlsplit(url).query)["scope"] == ["read:user user:email read:org"]
    callback = urlsplit(authorize(url, "hubot"))
    assert (await member.get(f"{callback.path}?{callback.query}")).status_code == 302
    assert (await member.get("/api/auth/me")).status_code == 200

    outsider = org_app.test_client()
    response = await sign_in(outsider, "octocat")
    assert response.status_code == 403
    assert "Only active members of the acme" in await response.get_data(as_text=True)
    assert (await outsider.get("/api/auth/me")).status_code == 401
    db = services_of(org_app).db
    assert [u["login"] for u in await db.all("users.list")] == ["hubot"]
    [refusal] = await audit.search(db, action="auth.refused")
    assert refusal["details"] == {"login": "octocat", "reason": "not_in_org:pending"}


async def test_membership_is_rechecked_at_every_sign_in(org_app, github):
    github.add_org_member("acme", "hubot")
    assert (await sign_in(org_app.test_client(), "hubot")).status_code == 302
    github.org_memberships.clear()
    assert (await sign_in(org_app.test_client(), "hubot")).status_code == 403


async def test_deactivated_user_cannot_sign_in_again(oauth_app, github):
    admin = oauth_app.test_client()
    await sign_in(admin, "octocat")
    await sign_in(oauth_app.test_client(), "hubot")
    db = services_of(oauth_app).db
    hubot = await db.one("users.get_by_github_id", github_id=1001)
    await db.changed("users.set_active", id=hubot["id"], active=False, now="2026-01-01T00:00:00.000Z")
    response = await sign_in(oauth_app.test_client(), "hubot")
    assert response.status_code == 403 and "deactivated" in await response.get_data(as_text=True)


async def test_concurrent_first_sign_ins_make_exactly_one_admin(oauth_app, github):
    for n in range(6):
        github.add_user(f"racer{n}", 9000 + n, name=f"Racer {n}", email=f"r{n}@github.test")
    clients = [oauth_app.test_client() for _ in range(6)]
    callbacks = [urlsplit(authorize(await start(client), f"racer{n}")) for n, client in enumerate(clients)]
    results = await asyncio.gather(*(client.get(f"{cb.path}?{cb.query}") for client, cb in zip(clients, callbacks)))
    assert [r.status_code for r in results] == [302] * 6
    roles = sorted(u["role"] for u in await services_of(oauth_app).db.all("users.list"))
    assert roles == ["admin"] + ["viewer"] * 5


async def test_failed_sign_ins_are_rate_limited(oauth_app, github):
    client = oauth_app.test_client()
    for _ in range(10):
        assert (await client.get("/api/auth/callback?code=x&state=y")).status_code == 400
    limited = await client.get("/api/auth/callback?code=x&state=y")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert (await client.get("/api/auth/login")).status_code == 429


async def test_github_not_configured_in_development(database_url, tmp_path):
    environ = make_environ(database_url, tmp_path, CLAWTROL_ENV="development", GITHUB_CLIENT_ID="",
                           GITHUB_CLIENT_SECRET="")
    app = create_app(load_config(environ, env_file=None))
    async with app.test_app():
        client = app.test_client()
        assert (await client.get("/api/auth/login")).status_code == 503
        assert "No sign-in method is configured" in await (await client.get("/login")).get_data(as_text=True)
