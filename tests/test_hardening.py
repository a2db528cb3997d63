"""Issue #12 item 6 (parts): no-store on private responses, idle sign-out, the __Host- cookie over https,
bodies parsed only after authentication, and refused sensitive attempts logged with who, where and why."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from quart.formparser import FormDataParser

from clawtrol.app import create_app
from clawtrol.auth import sessions
from clawtrol.clock import utcnow
from clawtrol.config import load_config
from clawtrol.payload import MAX_FORM_FIELDS

from .conftest import make_environ, sign_in_as

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


# --- Cache-Control ----------------------------------------------------------------------------------------

async def test_exports_and_authenticated_pages_are_not_stored(admin, client):
    for path in ("/admin/audit.csv", "/costs/recent.csv", "/board", "/api/tasks", "/admin/users"):
        response = await admin.get(path)
        assert response.status_code == 200, path
        assert response.headers.get("Cache-Control") == "no-store", path
    assert (await admin.get("/admin/audit.csv")).mimetype == "text/csv"
    assert (await client.get("/api/health")).headers.get("Cache-Control") == "no-store"
    static = await client.get("/static/css/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")


# --- idle sessions ------------------------------------------------------------------------------------------

def later(monkeypatch, delta: timedelta) -> None:
    moment = utcnow() + delta
    monkeypatch.setattr(sessions, "utcnow", lambda: moment)


async def test_idle_session_is_signed_out(app, admin, monkeypatch):
    later(monkeypatch, timedelta(hours=11, minutes=50))
    assert (await admin.get("/board")).status_code == 200  # still within SESSION_IDLE_HOURS (12)
    later(monkeypatch, timedelta(hours=12, minutes=5))  # last seen 12h05 ago
    page = await admin.get("/board")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert "Expires=Thu, 01 Jan 1970" in page.headers["Set-Cookie"]  # the browser's cookie is dropped too
    assert (await admin.get("/api/auth/me")).status_code == 401


async def test_idle_timeout_follows_the_setting(database_url, tmp_path, monkeypatch):
    config = load_config(make_environ(database_url, tmp_path / "data", SESSION_IDLE_HOURS="1"), env_file=None)
    app = create_app(config)
    async with app.test_app():
        browser = await sign_in_as(app, "ida", "member")
        later(monkeypatch, timedelta(minutes=50))
        assert (await browser.get("/api/auth/me")).status_code == 200
        later(monkeypatch, timedelta(minutes=50) + timedelta(hours=1, minutes=5))
        assert (await browser.get("/api/auth/me")).status_code == 401


# --- __Host- cookie ---------------------------------------------------------------------------------------

async def test_session_cookie_is_host_prefixed_over_https(database_url, tmp_path):
    environ = make_environ(database_url, tmp_path, CLAWTROL_ENV="development", CLAWTROL_DEV_LOGIN="true",
                           GITHUB_CLIENT_ID="", GITHUB_CLIENT_SECRET="", PUBLIC_URL="https://localhost:3443")
    app = create_app(load_config(environ, env_file=None))
    async with app.test_app():
        client = app.test_client()
        over_tls = {"client": ("127.0.0.1", 5000), "scheme": "https"}
        response = await client.post("/auth/dev-login", form={"login": "dev"}, headers=SAME_ORIGIN,
                                     scope_base=over_tls)
        assert response.status_code == 302
        cookie = next(h for h in response.headers.getlist("Set-Cookie") if "clawtrol_session" in h)
        assert cookie.startswith("__Host-clawtrol_session=")
        attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
        assert "secure" in attributes and "path=/" in attributes and "httponly" in attributes
        assert not [a for a in attributes if a.startswith("domain")]
        assert (await client.get("/api/auth/me", scope_base=over_tls)).status_code == 200


async def test_session_cookie_keeps_its_plain_name_over_http(admin):
    response = await admin.client.post("/api/auth/logout", headers={"X-CSRF-Token": admin.csrf_token})
    assert response.headers["Set-Cookie"].startswith("clawtrol_session=")


# --- bodies are parsed only after authentication ------------------------------------------------------------

@pytest.fixture
def parse_count(monkeypatch) -> list[int]:
    calls = [0]
    original = FormDataParser.parse

    async def counting(self, *args, **kwargs):
        calls[0] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(FormDataParser, "parse", counting)
    return calls


async def test_anonymous_form_is_refused_without_being_parsed(client, parse_count):
    huge = "&".join(f"f{n}=x" for n in range(100_000)).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    page = await client.post("/board/tasks", data=huge, headers={**form, **SAME_ORIGIN})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    htmx = await client.post("/board/tasks", data=huge, headers={**form, "HX-Request": "true"})
    assert htmx.status_code == 401
    api = await client.post("/api/tasks", data=huge, headers=form)
    assert api.status_code == 401
    cross = await client.post("/admin/tokens", data=huge, headers={**form, "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code in (302, 401, 403)
    assert parse_count[0] == 0


async def test_signed_in_forms_with_too_many_fields_are_413(admin, parse_count):
    too_many = "&".join(["title=x"] + [f"f{n}=x" for n in range(MAX_FORM_FIELDS)])
    response = await admin.post("/board/tasks", data=too_many,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    fine = await admin.post("/board/tasks", form={"title": "ok", **{f"f{n}": "x" for n in range(50)}})
    assert fine.status_code == 200
    assert parse_count[0] >= 2


# --- refusals are logged with who, where and why -----------------------------------------------------------

def refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "clawtrol.auth.principal" and r.getMessage() == "refused"]


async def test_csrf_failure_is_logged_with_ip_and_reason(admin, member, caplog):
    caplog.set_level(logging.WARNING)
    client_at = {"client": ("192.0.2.31", 40000)}
    target = f"/api/users/{member.user['id']}"
    missing = await admin.client.patch(target, json={"role": "viewer"}, headers=SAME_ORIGIN, scope_base=client_at)
    assert missing.status_code == 403
    cross = await admin.client.patch(target, json={"role": "viewer"}, scope_base=client_at,
                                     headers={"X-CSRF-Token": admin.csrf_token, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    records = refusals(caplog)
    assert [(r.action, r.actor, r.ip) for r in records] == [("csrf", "ada", "192.0.2.31")] * 2
    assert records[0].reason == "missing CSRF token" and records[0].path == target
    assert "https://evil.example" in records[1].reason


async def test_token_and_role_refusals_are_logged(member, viewer, api_token, app, caplog):
    caplog.set_level(logging.WARNING)
    at = {"client": ("192.0.2.32", 40000)}
    token = await member.request("POST", "/api/tokens", json={"name": "mine", "role": "admin"}, scope_base=at)
    assert token.status_code == 403
    role = await viewer.request("PATCH", f"/api/users/{member.user['id']}", json={"role": "admin"}, scope_base=at)
    assert role.status_code == 403
    agent = await api_token("member")
    by_token = await app.test_client().post("/api/tokens", json={"name": "x", "role": "admin"}, scope_base=at,
                                            headers={"Authorization": f"Bearer {agent}"})
    assert by_token.status_code == 403
    records = refusals(caplog)
    assert [(r.action, r.actor, r.ip) for r in records] == [
        ("create API tokens", "mel", "192.0.2.32"), ("manage users", "vic", "192.0.2.32"),
        ("create API tokens", "member-agent", "192.0.2.32")]
    assert records[0].reason == "role member needs admin" and records[2].actor_kind == "token"
