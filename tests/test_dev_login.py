"""The local dev sign-in: only when enabled in development on loopback, and clearly marked."""

from __future__ import annotations

import pytest

from clawtrol.app import create_app
from clawtrol.config import load_config
from clawtrol.services import services_of

from .conftest import make_environ
from .helpers import run_cli

LOOPBACK = {"client": ("127.0.0.1", 50000)}


@pytest.fixture
async def dev_app(database_url, tmp_path):
    environ = make_environ(database_url, tmp_path, CLAWTROL_ENV="development", CLAWTROL_DEV_LOGIN="true",
                           GITHUB_CLIENT_ID="", GITHUB_CLIENT_SECRET="")
    app = create_app(load_config(environ, env_file=None))
    async with app.test_app():
        yield app


async def test_dev_sign_in_is_marked_and_works(dev_app):
    client = dev_app.test_client()
    page = await (await client.get("/login?next=/admin/users")).get_data(as_text=True)
    assert "DEV SIGN-IN" in page and "Local dev sign-in" in page and "Sign in with GitHub" not in page
    response = await client.post("/auth/dev-login", form={"login": "dev", "name": "Local Dev", "next": "/admin/users"},
                                 headers={"Sec-Fetch-Site": "same-origin"}, scope_base=LOOPBACK)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    me = await (await client.get("/api/auth/me")).get_json()
    assert me["githubLogin"] == "dev" and me["githubId"] is None and me["role"] == "admin"
    assert "DEV SIGN-IN" in await (await client.get("/admin/users")).get_data(as_text=True)
    # A second local user gets the default role (viewer); the same login signs in to the same account.
    other = dev_app.test_client()
    await other.post("/auth/dev-login", form={"login": "ana"}, headers={"Sec-Fetch-Site": "same-origin"}, scope_base=LOOPBACK)
    assert (await (await other.get("/api/auth/me")).get_json())["role"] == "viewer"
    again = dev_app.test_client()
    await again.post("/auth/dev-login", form={"login": "ana"}, headers={"Sec-Fetch-Site": "same-origin"}, scope_base=LOOPBACK)
    assert len(await services_of(dev_app).db.all("users.list")) == 2


async def test_dev_sign_in_validates_and_refuses_cross_site(dev_app):
    client = dev_app.test_client()
    bad = await client.post("/auth/dev-login", form={"login": "Not Valid!"}, headers={"Sec-Fetch-Site": "same-origin"}, scope_base=LOOPBACK)
    assert bad.status_code == 400 and "lowercase letters" in await bad.get_data(as_text=True)
    cross = await client.post("/auth/dev-login", form={"login": "dev"}, headers={"Sec-Fetch-Site": "cross-site"}, scope_base=LOOPBACK)
    assert cross.status_code == 403
    assert await services_of(dev_app).db.all("users.list") == []


async def test_dev_sign_in_is_refused_from_other_addresses(dev_app):
    client = dev_app.test_client()
    response = await client.post("/auth/dev-login", form={"login": "dev"}, scope_base={"client": ("10.0.0.5", 1234)},
                                 headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 404


async def test_dev_sign_in_is_absent_when_not_enabled(client):
    response = await client.post("/auth/dev-login", form={"login": "dev"}, headers={"Sec-Fetch-Site": "same-origin"}, scope_base=LOOPBACK)
    assert response.status_code == 404
    assert "Local dev sign-in" not in await (await client.get("/login")).get_data(as_text=True)


def test_serving_dev_sign_in_beyond_loopback_refuses_to_start(tmp_path):
    environ = make_environ("", tmp_path, CLAWTROL_ENV="development", CLAWTROL_DEV_LOGIN="true")
    result = run_cli("serve", "--host", "0.0.0.0", environ=environ)
    assert result.returncode == 2
    assert "CLAWTROL_DEV_LOGIN: the local dev sign-in needs HOST on loopback" in result.stderr
