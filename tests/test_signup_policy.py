"""Who may sign up and with what role (GitHub issue #12): least privilege by default (viewer), DEFAULT_ROLE,
ALLOWED_ORG (members), ALLOWED_USERS (allow-list), ADMIN_LOGINS (who is admin), the open sign-up warning,
and the "new" badge until an admin reviews an account. Sign-ins go through the app's HTTP interface and
the local fake GitHub."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal

import pytest

from clawtrol import audit
from clawtrol.app import create_app
from clawtrol.auth.signup import open_signup_warning
from clawtrol.config import ConfigError, load_config
from clawtrol.db.migrations import discover, upgrade
from clawtrol.paths import SQL_MIGRATIONS
from clawtrol.services import services_of

from .conftest import make_environ, sign_in_as
from .helpers import free_port, run_cli, start_cli
from .test_migrations import open_db
from .test_oauth import fake_github_server, github, github_environ, sign_in  # noqa: F401 (fixtures)
from .test_serve import wait_for


@contextlib.asynccontextmanager
async def running(database_url, tmp_path, github, **overrides):
    """The app with these settings on the test's database (several in turn share it, like restarts)."""
    app = create_app(load_config(github_environ(database_url, tmp_path, github, **overrides), env_file=None))
    async with app.test_app():
        yield app


async def me(client) -> dict | None:
    response = await client.get("/api/auth/me")
    return await response.get_json() if response.status_code == 200 else None


async def signed_in_as(app, login: str) -> tuple[object, dict | None]:
    client = app.test_client()
    response = await sign_in(client, login)
    return response, await me(client)


def user_row(html: str, user_id: str) -> str:
    match = re.search(rf'<tr id="user-{re.escape(user_id)}">.*?</tr>', html, re.S)
    assert match, html
    return match.group(0)


def has_new_badge(row: str) -> bool:
    return 'class="badge badge-new"' in row


# --- configuration -----------------------------------------------------------------------------------

def config_problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(environ, env_file=None)
    return caught.value.problems


def test_default_role_is_viewer_unless_the_operator_chose_more(tmp_path):
    assert load_config(make_environ("", tmp_path), env_file=None).default_role == "viewer"
    assert load_config(make_environ("", tmp_path, ALLOWED_ORG="acme"), env_file=None).default_role == "member"
    assert load_config(make_environ("", tmp_path, DEFAULT_ROLE="Member"), env_file=None).default_role == "member"
    assert load_config(make_environ("", tmp_path, ALLOWED_ORG="acme", DEFAULT_ROLE="viewer"),
                       env_file=None).default_role == "viewer"


@pytest.mark.parametrize("value", ["admin", "owner", "members"])
def test_bad_default_role_is_one_clear_line(tmp_path, value):
    [problem] = config_problems(make_environ("", tmp_path, DEFAULT_ROLE=value))
    assert problem == f"DEFAULT_ROLE: must be viewer or member, got {value!r} (name admins with ADMIN_LOGINS)"


def test_bad_default_role_stops_the_cli_with_exit_2(tmp_path):
    result = run_cli("serve", environ=make_environ("", tmp_path, DEFAULT_ROLE="superuser"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "clawtrol: configuration error: DEFAULT_ROLE: must be viewer or member, got 'superuser' "
        "(name admins with ADMIN_LOGINS)"]


def test_login_lists_are_case_insensitive_and_checked(tmp_path):
    config = load_config(make_environ("", tmp_path, ALLOWED_USERS=" OctoCat, @hubot ,,", ADMIN_LOGINS="Mona"),
                         env_file=None)
    assert config.allowed_users == {"octocat", "hubot"} and config.admin_logins == {"mona"}
    [problem] = config_problems(make_environ("", tmp_path, ADMIN_LOGINS="ada, not a login"))
    assert problem.startswith("ADMIN_LOGINS: 'not a login' is not a GitHub login")


def test_open_signup_warning_only_in_production_without_any_restriction(tmp_path):
    def warning(**overrides):
        return open_signup_warning(load_config(make_environ("", tmp_path, **overrides), env_file=None))

    assert warning().startswith("sign-up is open: anyone with a GitHub account")
    assert "(as viewer)" in warning() and "ALLOWED_ORG, ALLOWED_USERS or ADMIN_LOGINS" in warning()
    for restricted in ({"ALLOWED_ORG": "acme"}, {"ALLOWED_USERS": "ada"}, {"ADMIN_LOGINS": "ada"},
                       {"CLAWTROL_ENV": "development"}):
        assert warning(**restricted) is None, restricted


# --- roles of new accounts ---------------------------------------------------------------------------

async def test_default_role_member_when_the_operator_sets_it(database_url, tmp_path, github):
    github.add_user("monalisa", 2002, name="Mona Lisa")
    async with running(database_url, tmp_path, github) as app:
        assert (await signed_in_as(app, "octocat"))[1]["role"] == "admin"
        assert (await signed_in_as(app, "hubot"))[1]["role"] == "viewer"
    async with running(database_url, tmp_path, github, DEFAULT_ROLE="member") as app:
        assert (await signed_in_as(app, "monalisa"))[1]["role"] == "member"
        assert (await signed_in_as(app, "hubot"))[1]["role"] == "viewer"  # only new accounts get it


async def test_with_allowed_org_new_members_are_members(database_url, tmp_path, github):
    github.add_user("monalisa", 2002, name="Mona Lisa")
    for login in ("octocat", "hubot", "monalisa"):
        github.add_org_member("acme", login)
    async with running(database_url, tmp_path, github, ALLOWED_ORG="acme") as app:
        assert (await signed_in_as(app, "octocat"))[1]["role"] == "admin"
        assert (await signed_in_as(app, "hubot"))[1]["role"] == "member"
    # The operator can still choose least privilege for org members.
    async with running(database_url, tmp_path, github, ALLOWED_ORG="acme", DEFAULT_ROLE="viewer") as app:
        assert (await signed_in_as(app, "monalisa"))[1]["role"] == "viewer"


async def test_allowed_users_refuses_other_logins(database_url, tmp_path, github):
    async with running(database_url, tmp_path, github, ALLOWED_USERS="OctoCat") as app:
        response, octocat = await signed_in_as(app, "octocat")
        assert response.status_code == 302 and octocat["role"] == "admin"
        response, hubot = await signed_in_as(app, "hubot")
        assert response.status_code == 403 and hubot is None
        page = await response.get_data(as_text=True)
        assert "Access denied" in page and "not on this Mission Clawtrol&#39;s list of allowed users" in page
        db = services_of(app).db
        assert [u["login"] for u in await db.all("users.list")] == ["octocat"]
        [refusal] = await audit.search(db, action="auth.refused")
        assert refusal["details"] == {"login": "hubot", "reason": "not_in_allowed_users"}


async def test_admin_logins_decide_who_is_admin(database_url, tmp_path, github):
    async with running(database_url, tmp_path, github, ADMIN_LOGINS="octocat") as app:
        # A stranger who reaches the app first does not become its admin.
        response, hubot = await signed_in_as(app, "hubot")
        assert response.status_code == 302 and hubot["role"] == "viewer"
        response, octocat = await signed_in_as(app, "octocat")
        assert octocat["role"] == "admin"
        [signed_in] = await audit.search(services_of(app).db, action="auth.signed_in", user_id=octocat["id"])
        assert signed_in["details"] == {"method": "github", "role": "admin", "signedUp": True, "adminLogin": True}


async def test_a_listed_admin_becomes_admin_at_the_next_sign_in(database_url, tmp_path, github):
    async with running(database_url, tmp_path, github) as app:
        await signed_in_as(app, "octocat")
        assert (await signed_in_as(app, "hubot"))[1]["role"] == "viewer"
    async with running(database_url, tmp_path, github, ADMIN_LOGINS="octocat,HUBOT") as app:
        hubot = (await signed_in_as(app, "hubot"))[1]
        assert hubot["role"] == "admin"
        [change] = await audit.search(services_of(app).db, action="user.role_changed")
        assert change["actor_kind"] == "system" and change["actor_label"] == "ADMIN_LOGINS"
        assert change["entity_id"] == hubot["id"]
        assert change["details"] == {"login": "hubot", "from": "viewer", "to": "admin", "reason": "ADMIN_LOGINS"}


# --- what admins see -----------------------------------------------------------------------------------

async def test_users_page_warns_about_open_signup(database_url, tmp_path, github):
    async with running(database_url, tmp_path, github) as app:
        admin = app.test_client()
        await sign_in(admin, "octocat")
        page = await (await admin.get("/admin/users")).get_data(as_text=True)
        assert 'id="signup-warning"' in page and "sign-up is open: anyone with a GitHub account" in page
    async with running(database_url, tmp_path, github, ADMIN_LOGINS="octocat") as app:
        admin = app.test_client()
        await sign_in(admin, "octocat")
        page = await (await admin.get("/admin/users")).get_data(as_text=True)
        assert "Users and roles" in page and "signup-warning" not in page


async def test_new_accounts_are_marked_until_an_admin_reviews_them(database_url, tmp_path, github):
    github.add_user("monalisa", 2002, name="Mona Lisa")
    async with running(database_url, tmp_path, github) as app:
        ada = await sign_in_as(app, "ada")  # the first admin: not "new"
        hubot = (await signed_in_as(app, "hubot"))[1]
        mona = (await signed_in_as(app, "monalisa"))[1]
        page = await (await ada.get("/admin/users")).get_data(as_text=True)
        assert not has_new_badge(user_row(page, ada.user["id"]))
        assert has_new_badge(user_row(page, hubot["id"])) and "Mark reviewed" in user_row(page, hubot["id"])
        assert has_new_badge(user_row(page, mona["id"]))

        # Promoting is reviewing.
        response = await ada.post(f"/admin/users/{hubot['id']}", form={"role": "member"})
        assert response.status_code == 200
        row = user_row(await response.get_data(as_text=True), hubot["id"])
        assert not has_new_badge(row) and "Mark reviewed" not in row
        # Keeping the role: "Mark reviewed".
        response = await ada.post(f"/admin/users/{mona['id']}", form={"reviewed": "true"})
        assert response.status_code == 200
        assert not has_new_badge(user_row(await response.get_data(as_text=True), mona["id"]))

        page = await (await ada.get("/admin/users")).get_data(as_text=True)
        assert not any(has_new_badge(user_row(page, u["id"])) for u in (hubot, mona))
        db = services_of(app).db
        assert (await db.one("users.get", id=hubot["id"]))["reviewed_by"] == ada.user["id"]
        assert (await db.one("users.get", id=mona["id"]))["role"] == "viewer"
        [reviewed] = await audit.search(db, action="user.reviewed")
        assert reviewed["entity_id"] == mona["id"] and reviewed["actor_label"] == "ada"
        assert reviewed["details"] == {"login": "monalisa", "role": "viewer"}
        assert [e["details"]["to"] for e in await audit.search(db, action="user.role_changed")] == ["member"]
        # Reviewing again changes nothing and writes nothing.
        await ada.post(f"/admin/users/{mona['id']}", form={"reviewed": "true"})
        assert len(await audit.search(db, action="user.reviewed")) == 1


async def test_reviewing_is_for_admins_only(database_url, tmp_path, github):
    async with running(database_url, tmp_path, github) as app:
        await sign_in_as(app, "ada")
        mel = await sign_in_as(app, "mel", "member")
        response = await mel.post(f"/admin/users/{mel.user['id']}", form={"reviewed": "true"})
        assert response.status_code == 403
        assert (await services_of(app).db.one("users.get", id=mel.user["id"]))["reviewed_at"] is None


def test_serve_logs_one_warning_about_open_signup(database_url, tmp_path):
    port = free_port()
    server = start_cli("serve", environ=make_environ(database_url, tmp_path, PORT=str(port)), cwd=tmp_path)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health").close()
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=20)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    warnings = [line["msg"] for line in lines if "sign-up is open" in line["msg"]]
    assert len(warnings) == 1 and warnings[0].startswith("sign-up is open: anyone with a GitHub account")
    assert [line["level"] for line in lines if "sign-up is open" in line["msg"]] == ["warning"]


# --- the migration -------------------------------------------------------------------------------------

async def test_migration_forgets_github_tokens_and_marks_accounts_to_review(empty_database_url, tmp_path):
    db = open_db(empty_database_url)
    earlier = tmp_path / "migrations" / db.dialect
    earlier.mkdir(parents=True)
    for migration in discover(SQL_MIGRATIONS / db.dialect):
        if migration.version < 4:  # the schema before 0004_signup_review_oauth_states
            shutil.copy(migration.path, earlier / migration.path.name)
    await db.connect()
    try:
        await upgrade(db, tmp_path / "migrations")
        for user_id, role in (("u-admin", "admin"), ("u-promoted", "member"), ("u-member", "member")):
            await db._db.execute(
                "INSERT INTO users (id, github_id, login, role, active, github_token, created_at, updated_at) "
                "VALUES (:id, NULL, :id, :role, TRUE, 'gAAAA-encrypted', '2026-01-01T00:00:00.000Z', "
                "'2026-01-01T00:00:00.000Z')", {"id": user_id, "role": role})
        await db._db.execute(
            "INSERT INTO audit_log (id, actor_kind, actor_label, action, entity_type, entity_id, created_at) "
            "VALUES ('a1', 'user', 'u-admin', 'user.role_changed', 'user', 'u-promoted', '2026-01-02T00:00:00.000Z')")
        assert "signup_review_oauth_states" in [m.name for m in await upgrade(db, SQL_MIGRATIONS)]
        assert [row["github_token"] for row in await db._db.fetch_all("SELECT github_token FROM users")] == [None] * 3
        reviewed = {u["id"]: u["reviewed_at"] for u in await db.all("users.list")}
        assert reviewed == {"u-admin": "2026-01-01T00:00:00.000Z", "u-promoted": "2026-01-02T00:00:00.000Z",
                            "u-member": None}
    finally:
        await db.disconnect()
