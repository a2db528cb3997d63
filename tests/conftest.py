"""Shared fixtures. Every test gets its own freshly migrated database:

- SQLite (default): a copy of a migrated template file in the test's tmp dir.
- PostgreSQL, when TEST_DATABASE_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/clawtrol_test):
  a `CREATE DATABASE ... TEMPLATE` clone on that server, dropped afterwards. The suite needs the right
  to create databases there; the database named in the URL is only used to connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from quart_auth import generate_auth_token

from clawtrol.app import create_app
from clawtrol.audit import Actor
from clawtrol.auth import csrf, tokens, users
from clawtrol.clock import now_iso
from clawtrol.config import Config, load_config
from clawtrol.db import Database, QueryCatalog
from clawtrol.db.migrations import upgrade
from clawtrol.paths import SQL_MIGRATIONS, SQL_QUERIES
from clawtrol.services import services_of

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKEND = "postgres" if TEST_DATABASE_URL else "sqlite"
SESSION_SECRET = "test-secret-" + "x" * 40


def pg_url(database: str) -> str:
    parts = urlsplit(TEST_DATABASE_URL)
    return urlunsplit(("postgresql", parts.netloc, "/" + database, parts.query, ""))


async def pg_admin(*statements: str) -> None:
    conn = await asyncpg.connect(pg_url(urlsplit(TEST_DATABASE_URL).path.lstrip("/")))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def migrate(url: str) -> None:
    db = Database.open(url)
    await db.connect()
    try:
        await upgrade(db, SQL_MIGRATIONS)
    finally:
        await db.disconnect()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory) -> str:
    """A migrated database that per-test databases are cloned from."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        asyncio.run(migrate(f"sqlite:///{path}"))
        yield str(path)
        return
    name = f"clawtrol_tpl_{os.getpid()}"
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'))
    asyncio.run(migrate(pg_url(name)))
    yield name
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def new_database(directory: Path, template: str | None = None, *, prefix: str = "clawtrol_t",
                       file_name: str = "clawtrol.db") -> AsyncIterator[str]:
    """The URL of a database of its own, empty or a copy of `template` (template_database): a SQLite file in
    `directory`, or a PostgreSQL database named `prefix`_..., dropped afterwards."""
    if BACKEND == "sqlite":
        target = directory / file_name
        if template:
            shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield pg_url(name)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_database_url(tmp_path) -> str:
    """A database with no tables at all (for migration tests)."""
    async with new_database(tmp_path, file_name="empty.db") as url:
        yield url


@pytest.fixture
async def database_url(template_database, tmp_path) -> str:
    async with new_database(tmp_path, template_database) as url:
        yield url


def make_environ(database_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    environ = {
        "CLAWTROL_ENV": "production",
        "DATABASE_URL": database_url,
        "CLAWTROL_DATA_DIR": str(data_dir),
        "SESSION_SECRET": SESSION_SECRET,
        "PUBLIC_URL": "http://localhost:3001",
        "GITHUB_CLIENT_ID": "test-client-id",
        "GITHUB_CLIENT_SECRET": "test-client-secret",
        "GITHUB_URL": "http://github.test",
        "GITHUB_API_URL": "http://api.github.test",
        "GATEWAY_URL": "ws://127.0.0.1:9",
    }
    environ.update(overrides)
    return environ


@pytest.fixture
def config(database_url, tmp_path) -> Config:
    return load_config(make_environ(database_url, tmp_path / "data"), env_file=None)


@pytest.fixture
async def app(config):
    application = create_app(config)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app) -> Database:
    return services_of(app).db


# --- every named query must be executed by the suite on each backend -----------------------------

def _is_full_run(config: pytest.Config) -> bool:
    option = config.option
    if option.keyword or option.markexpr or getattr(option, "lf", False) or option.deselect:
        return False
    return all(Path(arg).resolve() == Path(config.rootpath, "tests").resolve() for arg in config.args)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus != 0 or not _is_full_run(session.config):
        return
    loaded = QueryCatalog.load(SQL_QUERIES, BACKEND).names()
    missing = sorted(loaded - Database.executed)
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"named queries never executed on {BACKEND}: {', '.join(missing)}", red=True)
        session.exitstatus = 1


# --- signed-in clients -----------------------------------------------------------------------------

class _HttpVerbs:
    """get/post/patch/put/delete on top of a subclass's `request(method, path, **kwargs)`."""

    async def get(self, path: str, **kwargs):
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs):
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs):
        return await self.request("PATCH", path, **kwargs)

    async def put(self, path: str, **kwargs):
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs):
        return await self.request("DELETE", path, **kwargs)


class Browser(_HttpVerbs):
    """A test client signed in as one user, sending what a same-origin browser page sends with htmx:
    the session cookie, the CSRF header and Sec-Fetch-Site. `.client` is the raw Quart test client."""

    def __init__(self, app, user: dict, raw_session: str, csrf_token: str):
        self.app = app
        self.user = user
        self.raw_session = raw_session
        self.csrf_token = csrf_token
        self.client = app.test_client()
        cookie = generate_auth_token(self.client, raw_session)
        # clawtrol_session, or __Host-clawtrol_session when PUBLIC_URL is https
        self.client.set_cookie("localhost", app.config["QUART_AUTH_COOKIE_NAME"], cookie, path="/", domain="localhost")

    def _headers(self, method: str, headers: dict | None) -> dict:
        merged = {"Sec-Fetch-Site": "same-origin"}
        if method not in ("GET", "HEAD", "OPTIONS"):
            merged["X-CSRF-Token"] = self.csrf_token
        merged.update(headers or {})
        return merged

    async def request(self, method: str, path: str, *, headers: dict | None = None, **kwargs):
        return await self.client.open(path, method=method, headers=self._headers(method, headers), **kwargs)


class Agent(_HttpVerbs):
    """An API client authenticated with a bearer token (no cookie, no CSRF), like an OpenClaw agent."""

    def __init__(self, app, raw_token: str):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {raw_token}"}

    async def request(self, method: str, path: str, **kwargs):
        return await self.client.open(path, method=method, headers=self.headers, **kwargs)


_github_ids = iter(range(7_000_000, 8_000_000))


async def sign_in_as(app, login: str, role: str | None = None) -> Browser:
    """Create (or reuse) a GitHub-style user with `role` and open a browser session for them."""
    db = services_of(app).db
    user = next((u for u in await db.all("users.list") if u["login"] == login), None)
    github_id = user["github_id"] if user else next(_github_ids)
    user, raw = await users.sign_in(db, users.Identity(login=login, github_id=github_id, name=login.title()),
                                    "127.0.0.1", "pytest")
    if role and user["role"] != role:
        await db.changed("users.set_role", id=user["id"], role=role, now=now_iso())
        user = await db.one("users.get", id=user["id"])
    async with app.app_context():
        token = csrf.token_for(raw)
    return Browser(app, user, raw, token)


@pytest.fixture
async def admin(app) -> Browser:
    return await sign_in_as(app, "ada", "admin")


@pytest.fixture
async def member(app, admin) -> Browser:
    return await sign_in_as(app, "mel", "member")


@pytest.fixture
async def viewer(app, admin) -> Browser:
    return await sign_in_as(app, "vic", "viewer")


@pytest.fixture
async def api_token(app, admin):
    """Factory: a bearer token with the given role, created as an admin would."""
    async def create(role: str = "member", name: str | None = None) -> str:
        actor = Actor(kind="user", label=admin.user["login"], user_id=admin.user["id"])
        _, raw = await tokens.create(services_of(app).db, actor, name or f"{role}-agent", role, None)
        return raw
    return create


@pytest.fixture(scope="session")
def real_gateway(tmp_path_factory):
    """The real OpenClaw gateway (tests/real_gateway.py), one per test session; skipped when not installed."""
    from .real_gateway import running_gateway_or_skip

    with running_gateway_or_skip(tmp_path_factory.mktemp("openclaw")) as gateway:
        yield gateway
