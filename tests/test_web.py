"""The web shell: health, layout, security headers and error pages."""

from __future__ import annotations

import re
import shutil

import pytest

from clawtrol.paths import STATIC, TEMPLATES
from clawtrol.services import services_of

from .conftest import BACKEND, pg_admin


async def test_health_reports_database_gateway_version_and_uptime(client):
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert set(body) >= {"status", "db", "gateway", "version", "uptime"}
    assert body["db"]["connected"] is True and body["db"]["responseMs"] >= 0
    assert body["gateway"]["connected"] is False
    # No gateway reachable in this test: working, but degraded.
    assert body["status"] == "degraded"
    assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"])


async def test_health_is_unhealthy_when_the_database_goes_away(app, admin, config):
    client = admin
    @app.get("/uses-the-database")
    async def uses_the_database():
        return {"rate": (await services_of(app).db.one("settings.get", key="humanHourlyRate"))["value"]}

    assert (await client.get("/uses-the-database")).status_code == 200
    if BACKEND == "sqlite":
        shutil.rmtree(config.database_url.removeprefix("sqlite:///").rsplit("/", 1)[0])
    else:
        await pg_admin(f'DROP DATABASE "{config.database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
    response = await client.get("/api/health")
    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "unhealthy" and body["db"]["connected"] is False
    # The status page says so; other routes answer 503 without a trace of the internals.
    assert "unreachable" in await (await client.get("/status")).get_data(as_text=True)
    failed = await client.get("/uses-the-database")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "5"
    text = await failed.get_data(as_text=True)
    assert "database is unreachable" in text and "Traceback" not in text and "sqlite3" not in text


async def test_layout_loads_vendored_htmx_and_stylesheet(admin, client):
    response = await admin.get("/status")
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert '<script src="/static/vendor/htmx-4.0.1.min.js" defer></script>' in html
    assert "/static/css/app.css" in html
    assert "System status" in html
    for path in ("/static/vendor/htmx-4.0.1.min.js", "/static/css/app.css"):
        assert (await client.get(path)).status_code == 200


async def test_security_headers_on_pages_and_api(client):
    for path in ("/login", "/api/health", "/no-such-page"):
        headers = (await client.get(path)).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_templates_need_no_inline_script_or_style():
    """The CSP forbids inline script and style, so no template may rely on them."""
    for path in TEMPLATES.rglob("*.html"):
        html = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, f"{path}: inline <script>"
        assert not re.search(r"\sstyle\s*=", html), f"{path}: style attribute"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{path}: inline event handler"
        assert "hx-on" not in html, f"{path}: hx-on needs eval, which the CSP forbids"
    assert (STATIC / "vendor" / "htmx-4.0.1.min.js").stat().st_size > 30_000


async def test_not_found_page_and_json(client):
    page = await client.get("/definitely/missing")
    assert page.status_code == 404
    assert "There is nothing at this address." in await page.get_data(as_text=True)
    api = await client.get("/api/definitely/missing")
    assert api.status_code == 404
    assert await api.get_json() == {"error": "There is nothing at this address."}


async def test_unexpected_errors_leak_nothing(app, admin):
    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internal detail /etc/passwd")

    @app.get("/api/boom")
    async def api_boom():
        raise RuntimeError("secret internal detail")

    client = admin
    page = await client.get("/boom")
    assert page.status_code == 500
    text = await page.get_data(as_text=True)
    assert "unexpected error" in text and "secret" not in text and "Traceback" not in text
    api = await client.get("/api/boom")
    assert api.status_code == 500
    assert await api.get_json() == {"error": "An unexpected error occurred. It has been logged."}


async def test_oversized_body_is_refused(client):
    response = await client.post("/api/health", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code in (405, 413)


async def test_root_redirects_to_a_page(client):
    response = await client.get("/")
    assert response.status_code == 302


@pytest.mark.parametrize("path", ["/status", "/api/health", "/api/users"])
async def test_many_requests_in_a_row_leak_no_connections(admin, path):
    # SQLite pins one connection per request; it must be released every time.
    for _ in range(20):
        assert (await admin.get(path)).status_code == 200
