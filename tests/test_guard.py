"""The guard in front of every route: authentication, sessions, CSRF, redirects, cookie flags."""

from __future__ import annotations

import re

import pytest
from quart_auth import generate_auth_token

from clawtrol.auth import sessions
from clawtrol.auth.guard import safe_next
from clawtrol.services import services_of

from .conftest import sign_in_as

PUBLIC_ENDPOINTS = {"static", "health.api_health", "auth.login_page", "auth.github_login", "auth.github_callback",
                    "auth.dev_login"}


def concrete_path(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)


def test_only_the_known_routes_are_public(app):
    public = {rule.endpoint for rule in app.url_map.iter_rules()
              if rule.endpoint == "static" or getattr(app.view_functions[rule.endpoint], "is_public", False)}
    assert public == PUBLIC_ENDPOINTS


async def test_every_private_route_refuses_anonymous_callers(app):
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or getattr(rule, "websocket", False):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = concrete_path(rule)
            response = await client.open(path, method=method, headers={"Sec-Fetch-Site": "same-origin"})
            if path.startswith("/api/"):
                assert response.status_code == 401, (method, path)
                assert await response.get_json() == {"error": "Not authenticated"}
            else:
                assert response.status_code == 302, (method, path)
                assert response.headers["Location"].startswith("/login")
            htmx = await client.open(path, method=method, headers={"HX-Request": "true"})
            assert htmx.status_code == 401, (method, path)
            checked += 1
    assert checked >= 10


async def test_page_redirect_keeps_a_safe_next(client):
    response = await client.get("/admin/users?tab=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/users%3Ftab%3D1"
    htmx = await client.get("/status", headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/status"})
    assert htmx.headers["HX-Redirect"] == "/login?next=/status"


@pytest.mark.parametrize("target, expected", [
    ("/tasks?x=1", "/tasks?x=1"), ("//evil.example", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"), ("/ok\r\nSet-Cookie: x", "/"), ("", "/"), (None, "/"), ("evil.example", "/"),
    ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
])
def test_safe_next(target, expected):
    assert safe_next(target) == expected


async def test_login_page_redirects_signed_in_users_only_to_local_paths(admin):
    for target, expected in (("/admin/users", "/admin/users"), ("//evil.example", "/"), ("https://evil.example", "/")):
        response = await admin.get(f"/login?next={target}")
        assert response.status_code == 302 and response.headers["Location"] == expected


async def test_logout_ends_the_server_side_session(app, admin, db):
    assert (await admin.get("/api/auth/me")).status_code == 200
    response = await admin.post("/api/auth/logout")
    assert response.status_code == 200 and await response.get_json() == {"success": True}
    assert "clawtrol_session=;" in response.headers.get("Set-Cookie", "")
    # The old cookie is worthless now, even replayed.
    replayed = generate_auth_token(admin.client, admin.raw_session)
    admin.client.set_cookie("localhost", "clawtrol_session", replayed, path="/", domain="localhost")
    assert (await admin.get("/api/auth/me")).status_code == 401
    rows = await db.all("audit.for_entity", entity_type="user", entity_id=admin.user["id"], limit=10)
    assert [row["action"] for row in rows][:2] == ["auth.signed_out", "auth.signed_in"]


async def test_logout_from_the_user_menu_form_redirects_to_sign_in(admin):
    response = await admin.client.post("/api/auth/logout", form={"csrf_token": admin.csrf_token},
                                       headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303 and response.headers["Location"] == "/login"


async def test_deleted_session_is_refused_on_the_next_request(admin, db):
    await sessions.end(db, admin.raw_session)
    assert (await admin.get("/api/auth/me")).status_code == 401
    page = await admin.get("/status")
    assert page.status_code == 302


async def test_expired_session_is_refused(app, monkeypatch):
    monkeypatch.setattr(sessions, "SESSION_LIFETIME", -sessions.SESSION_LIFETIME)
    browser = await sign_in_as(app, "late")
    assert (await browser.get("/api/auth/me")).status_code == 401


async def test_session_cookie_flags(app, admin):
    response = await admin.client.post("/api/auth/logout", headers={"X-CSRF-Token": admin.csrf_token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # PUBLIC_URL is http:// in tests


async def test_cookies_are_secure_behind_https(database_url, tmp_path):
    from clawtrol.app import create_app
    from clawtrol.config import load_config

    from .conftest import make_environ

    config = load_config(make_environ(database_url, tmp_path, PUBLIC_URL="https://clawtrol.example.com"), env_file=None)
    app = create_app(config)
    async with app.test_app():
        browser = await sign_in_as(app, "sec")
        response = await browser.client.post("/api/auth/logout", headers={"X-CSRF-Token": browser.csrf_token})
        assert "Secure" in response.headers["Set-Cookie"]
        assert "max-age=31536000" in (await browser.get("/api/health")).headers["Strict-Transport-Security"]


async def test_cookie_writes_need_the_csrf_token(admin, member):
    target = f"/api/users/{member.user['id']}"
    missing = await admin.client.patch(target, json={"role": "viewer"})
    assert missing.status_code == 403 and (await missing.get_json())["code"] == "CSRF"
    wrong = await admin.client.patch(target, json={"role": "viewer"}, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    other_users_token = await admin.client.patch(target, json={"role": "viewer"},
                                                 headers={"X-CSRF-Token": member.csrf_token})
    assert other_users_token.status_code == 403
    assert (await admin.patch(target, json={"role": "viewer"})).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
])
async def test_cross_site_writes_are_refused_even_with_the_token(admin, member, db, headers):
    response = await admin.client.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"},
                                         headers={"X-CSRF-Token": admin.csrf_token, **headers})
    assert response.status_code == 403
    assert (await db.one("users.get", id=member.user["id"]))["role"] == "member"


async def test_same_origin_header_from_public_url_is_accepted(admin, member):
    response = await admin.client.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"},
                                         headers={"X-CSRF-Token": admin.csrf_token, "Origin": "http://localhost:3001"})
    assert response.status_code == 200


async def test_forbidden_actions_say_why(member, viewer):
    response = await viewer.patch(f"/api/users/{member.user['id']}", json={"role": "admin"})
    assert response.status_code == 403
    assert "viewer" in (await response.get_json())["error"]
    page = await member.get("/admin/users")
    assert page.status_code == 403 and "needs admin" in await page.get_data(as_text=True)


async def test_user_menu_shows_identity_role_and_sign_out(admin, viewer):
    html = await (await viewer.get("/status")).get_data(as_text=True)
    assert "badge-viewer" in html and "Sign out" in html and "Vic" in html
    assert "/admin/users" not in html  # admin links only for admins
    assert "/admin/users" in await (await admin.get("/status")).get_data(as_text=True)
    assert f'"X-CSRF-Token": "{viewer.csrf_token}"' in html


async def test_session_activity_is_recorded_by_the_background_flush(app, admin, db):
    before = await sessions.lookup(db, admin.raw_session)
    assert (await admin.get("/api/auth/me")).status_code == 200
    assert (await sessions.lookup(db, admin.raw_session))["last_seen_at"] == before["last_seen_at"]
    await services_of(app).activity.flush()
    after = (await sessions.lookup(db, admin.raw_session))["last_seen_at"]
    assert after is not None and (before["last_seen_at"] is None or after >= before["last_seen_at"])
    assert (await admin.get("/api/auth/me")).status_code == 200
