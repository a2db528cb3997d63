"""API tokens: the admin page and fragments, the tokens JSON API, bearer authentication (hash-only
storage, expiry, revocation, last-used debounce, rate limiting, no CSRF) and `clawtrol token create`."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from clawtrol.auth import tokens
from clawtrol.clock import iso, now_iso, parse_iso, utcnow
from clawtrol.services import services_of

from .conftest import make_environ
from .helpers import run_cli

RAW_TOKEN = re.compile(r"mct_[A-Za-z0-9_-]{43}")


# --- helpers ----------------------------------------------------------------------------------------

def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


async def text(response) -> str:
    return await response.get_data(as_text=True)


async def token_audit(db, token_id: str, action: str | None = None) -> list[dict]:
    rows = await db.all("audit.for_entity", entity_type="api_token", entity_id=token_id, limit=50)
    return [row for row in rows if action is None or row["action"] == action]


async def create_via_api(admin, **body) -> dict:
    response = await admin.post("/api/tokens", json={"name": "agent", "role": "member", **body})
    assert response.status_code == 201, await text(response)
    return await response.get_json()


def shift_token_clock(monkeypatch, delta: timedelta) -> None:
    """Move the clock that tokens.resolve/touch compare against (expiry and last-used debounce)."""
    monkeypatch.setattr(tokens, "utcnow", lambda: utcnow() + delta)
    monkeypatch.setattr(tokens, "now_iso", lambda: iso(utcnow() + delta))


# --- the tokens page and the create fragment --------------------------------------------------------

async def test_tokens_page_for_admin(admin, api_token):
    await api_token("viewer", name="nightly-report")
    response = await admin.get("/admin/tokens")
    assert response.status_code == 200
    html = await text(response)
    assert "API tokens" in html and '<div id="token-form">' in html and 'id="token-rows"' in html
    assert "nightly-report" in html and "by @ada" in html
    assert "mct_" in html  # the prefix column …
    assert not RAW_TOKEN.search(html)  # … but never a whole token


async def test_tokens_page_is_forbidden_to_members(member):
    response = await member.get("/admin/tokens")
    assert response.status_code == 403
    assert "Your role (member) cannot manage API tokens" in await text(response)


async def test_create_fragment_shows_the_token_once_and_it_works(admin, client, db):
    response = await admin.post("/admin/tokens", form={"name": "ci-agent", "role": "viewer",
                                                       "expires_in_days": "30"})
    assert response.status_code == 200
    html = await text(response)
    [raw] = RAW_TOKEN.findall(html)
    assert html.count(raw) == 1
    assert f'<code class="token-secret" id="new-token">{raw}</code>' in html
    # A fresh, empty form comes back, and the new row is swapped into the table out of band.
    assert '<form hx-post="/admin/tokens"' in html and 'value="ci-agent"' not in html
    [row] = await db.all("tokens.list")
    oob = html.find("hx-swap-oob=")
    assert oob != -1 and html.find(f'<tr id="token-{row["id"]}">', oob) != -1

    me = await client.get("/api/auth/me", headers=bearer(raw))
    assert me.status_code == 200
    assert await me.get_json() == {"id": row["id"], "kind": "token", "name": "ci-agent", "role": "viewer"}

    # Only a hash is stored: the listing never holds the secret, the prefix is its first 12 characters,
    # and the stored hash resolves the raw token.
    assert row["prefix"] == raw[:12] and row["role"] == "viewer" and row["created_by"] == admin.user["id"]
    assert raw not in json.dumps(row)
    assert (await db.one("tokens.resolve", token_hash=tokens.token_hash(raw), now=now_iso()))["id"] == row["id"]
    expires = parse_iso(row["expires_at"]) - utcnow()
    assert timedelta(days=29, hours=23) < expires <= timedelta(days=30)

    [entry] = await token_audit(db, row["id"], "token.created")
    details = json.loads(entry["details"])
    assert details["name"] == "ci-agent" and details["role"] == "viewer" and details["prefix"] == raw[:12]
    assert details["expiresAt"] == row["expires_at"]
    assert entry["actor_kind"] == "user" and entry["user_id"] == admin.user["id"]
    for entity_type, entity_id in (("api_token", row["id"]), ("user", admin.user["id"])):
        for audit_row in await db.all("audit.for_entity", entity_type=entity_type, entity_id=entity_id, limit=100):
            assert raw not in (audit_row["details"] or "")


async def test_create_fragment_without_expiry_never_expires(admin, db):
    response = await admin.post("/admin/tokens", form={"name": "forever", "role": "member", "expires_in_days": ""})
    assert response.status_code == 200
    [row] = await db.all("tokens.list")
    assert row["expires_at"] is None
    assert "never" in await text(response)


@pytest.mark.parametrize(("form", "error"), [
    ({"name": "", "role": "member", "expires_in_days": ""}, "name: required"),
    ({"name": "   ", "role": "member", "expires_in_days": ""}, "name: required"),
    ({"name": "x" * 101, "role": "member", "expires_in_days": ""}, "name: at most 100 characters"),
    ({"name": "ci", "role": "root", "expires_in_days": ""}, "role: must be one of viewer, member, admin"),
    ({"name": "ci", "role": "member", "expires_in_days": "0"}, "expiresInDays"),
    ({"name": "ci", "role": "member", "expires_in_days": "5000"}, "expiresInDays"),
    ({"name": "ci", "role": "member", "expires_in_days": "soon"}, "expiresInDays"),
])
async def test_create_fragment_rerenders_the_form_with_the_error(admin, db, form, error):
    response = await admin.post("/admin/tokens", form=form)
    assert response.status_code == 400
    html = await text(response)
    assert html.lstrip().startswith('<form hx-post="/admin/tokens"')
    assert '<p class="field-error" role="alert">' in html and error in html
    assert not RAW_TOKEN.search(html)
    assert await db.all("tokens.list") == []


async def test_create_fragment_keeps_what_was_typed(admin):
    response = await admin.post("/admin/tokens", form={"name": "deploy-bot", "role": "admin", "expires_in_days": "0"})
    assert response.status_code == 400
    html = await text(response)
    assert 'value="deploy-bot"' in html and '<option value="admin" selected>' in html and 'value="0"' in html


async def test_create_fragment_is_forbidden_to_members_and_needs_csrf(admin, member, db):
    assert (await member.post("/admin/tokens", form={"name": "x", "role": "admin"})).status_code == 403
    no_csrf = await admin.client.post("/admin/tokens", form={"name": "x", "role": "admin"},
                                      headers={"Sec-Fetch-Site": "same-origin"})
    assert no_csrf.status_code == 403
    cross_site = await admin.post("/admin/tokens", form={"name": "x", "role": "admin"},
                                  headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    assert await db.all("tokens.list") == []


# --- the tokens JSON API ----------------------------------------------------------------------------

async def test_api_create_list_and_revoke(admin, client, db):
    created = await create_via_api(admin, name="deployer", role="admin", expiresInDays=7)
    raw = created["token"]
    assert RAW_TOKEN.fullmatch(raw)
    assert created["prefix"] == raw[:12] and created["role"] == "admin" and created["name"] == "deployer"
    assert created["createdBy"] == "ada" and created["revokedAt"] is None and created["lastUsedAt"] is None
    assert created["expiresAt"] is not None

    listing = await admin.get("/api/tokens")
    assert listing.status_code == 200
    assert raw not in await text(listing)
    body = await listing.get_json()
    assert body["count"] == 1
    [listed] = body["tokens"]
    assert "token" not in listed and listed["id"] == created["id"] and listed["prefix"] == raw[:12]
    assert set(listed) == {"id", "name", "prefix", "role", "createdAt", "createdBy", "expiresAt", "lastUsedAt",
                           "revokedAt"}

    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200
    revoked = await admin.delete(f"/api/tokens/{created['id']}")
    assert revoked.status_code == 200
    assert (await revoked.get_json())["revokedAt"] is not None
    assert (await db.one("tokens.get", id=created["id"]))["revoked_at"] is not None

    refused = await client.get("/api/auth/me", headers=bearer(raw))
    assert refused.status_code == 401
    assert "revoked" in (await refused.get_json())["error"]

    again = await admin.delete(f"/api/tokens/{created['id']}")
    assert again.status_code == 409
    assert "already revoked" in (await again.get_json())["error"]
    assert len(await token_audit(db, created["id"], "token.revoked")) == 1


async def test_api_revoke_unknown_token_is_404(admin):
    response = await admin.delete("/api/tokens/no-such-token")
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "Token not found"


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "member"}, "name"),
    ({"name": 42, "role": "member"}, "name"),
    ({"name": "ci", "role": "owner"}, "role"),
    ({"name": "ci", "role": "member", "expiresInDays": 0}, "expiresInDays"),
    ({"name": "ci", "role": "member", "expiresInDays": 3651}, "expiresInDays"),
    ({"name": "ci", "role": "member", "expiresInDays": True}, "expiresInDays"),
    ({"name": "ci", "role": "member", "scopes": ["all"]}, "scopes"),
])
async def test_api_create_refuses_bad_input_naming_the_field(admin, db, body, field):
    response = await admin.post("/api/tokens", json=body)
    assert response.status_code == 400
    assert (await response.get_json())["field"] == field
    assert await db.all("tokens.list") == []


async def test_tokens_api_is_admin_only(admin, member, api_token, client, db):
    created = await create_via_api(admin)
    member_token = await api_token("member")
    for caller, headers in ((member.client, {"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": member.csrf_token}),
                            (client, bearer(member_token))):
        listing = await caller.get("/api/tokens", headers=headers)
        assert listing.status_code == 403 and (await listing.get_json())["code"] == "FORBIDDEN"
        made = await caller.post("/api/tokens", json={"name": "x", "role": "admin"}, headers=headers)
        assert made.status_code == 403
        revoked = await caller.delete(f"/api/tokens/{created['id']}", headers=headers)
        assert revoked.status_code == 403
    assert len(await db.all("tokens.list")) == 2
    assert (await db.one("tokens.get", id=created["id"]))["revoked_at"] is None


async def test_an_admin_token_can_manage_tokens_and_is_named_in_the_audit(api_token, client, db):
    raw = await api_token("admin", name="provisioner")
    response = await client.post("/api/tokens", json={"name": "child", "role": "viewer"}, headers=bearer(raw))
    assert response.status_code == 201
    [entry] = await token_audit(db, (await response.get_json())["id"], "token.created")
    assert entry["actor_kind"] == "token" and entry["actor_label"] == "provisioner"
    assert entry["user_id"] is None and entry["token_id"] is not None


# --- the revoke fragment ----------------------------------------------------------------------------

async def test_revoke_fragment_returns_the_revoked_row(admin, client, db):
    created = await create_via_api(admin, name="old-agent")
    response = await admin.post(f"/admin/tokens/{created['id']}/revoke")
    assert response.status_code == 200
    html = await text(response)
    assert html.lstrip().startswith(f'<tr id="token-{created["id"]}">')
    assert '<span class="text-danger">revoked' in html and "hx-post" not in html
    [entry] = await token_audit(db, created["id"], "token.revoked")
    assert json.loads(entry["details"]) == {"name": "old-agent"}
    assert entry["actor_kind"] == "user" and entry["user_id"] == admin.user["id"]
    assert (await client.get("/api/auth/me", headers=bearer(created["token"]))).status_code == 401
    assert (await admin.post(f"/admin/tokens/{created['id']}/revoke")).status_code == 409
    assert (await admin.post("/admin/tokens/no-such-token/revoke")).status_code == 404


async def test_revoke_fragment_is_forbidden_to_members(admin, member, db):
    created = await create_via_api(admin)
    assert (await member.post(f"/admin/tokens/{created['id']}/revoke")).status_code == 403
    assert (await db.one("tokens.get", id=created["id"]))["revoked_at"] is None


# --- bearer authentication --------------------------------------------------------------------------

async def test_bearer_requests_need_no_csrf(admin, member, api_token, db):
    """No ambient credentials, so no CSRF token and no same-origin check for bearer requests."""
    raw = await api_token("admin", name="ops-bot")
    response = await admin.client.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"},
                                        headers={**bearer(raw), "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert (await db.one("users.get", id=member.user["id"]))["role"] == "viewer"
    [entry] = await db.all("audit.for_entity", entity_type="user", entity_id=member.user["id"], limit=1)
    assert entry["action"] == "user.role_changed"
    assert entry["actor_kind"] == "token" and entry["actor_label"] == "ops-bot" and entry["user_id"] is None


async def test_an_invalid_bearer_wins_over_a_valid_cookie(admin):
    """When an Authorization: Bearer header is present, the session cookie is ignored."""
    assert (await admin.get("/api/auth/me")).status_code == 200
    response = await admin.get("/api/auth/me", headers=bearer("mct_" + "x" * 43))
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "Invalid, expired or revoked API token"
    page = await admin.get("/admin/users", headers=bearer("not-even-a-token"))
    assert page.status_code == 401


async def test_a_valid_member_bearer_wins_over_an_admin_cookie(admin, api_token):
    raw = await api_token("member", name="low-bot")
    me = await (await admin.get("/api/auth/me", headers=bearer(raw))).get_json()
    assert me["kind"] == "token" and me["role"] == "member"
    assert (await admin.get("/api/tokens", headers=bearer(raw))).status_code == 403


async def test_bearer_token_roles_are_enforced(api_token, client):
    viewer_token = await api_token("viewer")
    assert (await client.get("/api/users", headers=bearer(viewer_token))).status_code == 200
    response = await client.delete("/api/users/anyone", headers=bearer(viewer_token))
    assert response.status_code == 403
    assert "Your role (viewer)" in (await response.get_json())["error"]


async def test_expired_tokens_are_refused(admin, client, monkeypatch):
    """tokens.resolve compares expires_at with tokens.now_iso(); shifting that clock ages the token."""
    created = await create_via_api(admin, expiresInDays=1)
    expires = parse_iso(created["expiresAt"]) - utcnow()
    assert timedelta(hours=23, minutes=59) < expires <= timedelta(days=1)
    assert (await client.get("/api/auth/me", headers=bearer(created["token"]))).status_code == 200

    shift_token_clock(monkeypatch, timedelta(hours=23))
    assert (await client.get("/api/auth/me", headers=bearer(created["token"]))).status_code == 200

    shift_token_clock(monkeypatch, timedelta(days=1, minutes=1))
    response = await client.get("/api/auth/me", headers=bearer(created["token"]))
    assert response.status_code == 401
    assert "expired" in (await response.get_json())["error"]


async def test_last_used_reaches_the_database_with_the_background_flush(app, admin, client):
    """A request with a token writes nothing; the activity flush (once a minute, and at shutdown) writes the
    last use, once per token however many requests there were."""
    created = await create_via_api(admin)
    activity = services_of(app).activity
    await activity.flush()

    async def last_used() -> str | None:
        [token] = (await (await admin.get("/api/tokens")).get_json())["tokens"]
        return token["lastUsedAt"]

    for _ in range(3):
        assert (await client.get("/api/auth/me", headers=bearer(created["token"]))).status_code == 200
    assert await last_used() is None  # noted in memory only
    assert await activity.flush() == 2  # this token and the admin's browser session, once each
    first = await last_used()
    assert first is not None
    assert activity.pending == 1  # only the admin's browser session (reading the list): the token was idle

    assert (await client.get("/api/auth/me", headers=bearer(created["token"]))).status_code == 200
    await activity.flush()
    assert await last_used() >= first


async def test_bad_bearer_tokens_are_rate_limited_per_address(app, client, api_token):
    """20 bad tokens from one address, then 429 even for a good token; other addresses are unaffected."""
    good = await api_token("member")
    limiter = services_of(app).token_failures
    attacker, bystander = {"client": ("198.51.100.7", 40000)}, {"client": ("198.51.100.8", 40000)}
    limiter.reset("198.51.100.7")
    try:
        for attempt in range(20):
            response = await client.get("/api/auth/me", headers=bearer(f"mct_guess{attempt:039d}"),
                                        scope_base=attacker)
            assert response.status_code == 401, attempt
        blocked = await client.get("/api/auth/me", headers=bearer(good), scope_base=attacker)
        assert blocked.status_code == 429
        body = await blocked.get_json()
        assert "Too many failed token attempts" in body["error"] and body["retryAfter"] >= 1
        assert (await client.get("/api/auth/me", headers=bearer(good), scope_base=bystander)).status_code == 200
    finally:
        limiter.reset("198.51.100.7")


# --- the CLI ------------------------------------------------------------------------------------------

async def test_cli_token_create_prints_a_working_token(database_url, tmp_path, client, db):
    result = run_cli("token", "create", "--name", "ci", "--role", "member",
                     environ=make_environ(database_url, tmp_path))
    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip()
    assert RAW_TOKEN.fullmatch(raw) and result.stdout == raw + "\n"
    assert "shown only once" in result.stderr and raw not in result.stderr and raw[:12] in result.stderr

    me = await client.get("/api/auth/me", headers=bearer(raw))
    assert me.status_code == 200
    body = await me.get_json()
    assert body["kind"] == "token" and body["name"] == "ci" and body["role"] == "member"

    [row] = await db.all("tokens.list")
    assert row["created_by"] is None and row["expires_at"] is None
    [entry] = await token_audit(db, row["id"], "token.created")
    assert entry["actor_kind"] == "system" and entry["actor_label"].startswith("cli:")
    assert raw not in entry["details"]


def test_cli_token_create_with_expiry(database_url, tmp_path):
    result = run_cli("token", "create", "--name", "short", "--role", "viewer", "--expires-days", "3",
                     environ=make_environ(database_url, tmp_path))
    assert result.returncode == 0, result.stderr
    assert RAW_TOKEN.fullmatch(result.stdout.strip())


@pytest.mark.parametrize(("args", "message"), [
    (("--name", "ci", "--role", "owner"), "invalid choice"),
    (("--name", "ci", "--role", "member", "--expires-days", "0"), "expiresInDays"),
    (("--name", "  ", "--role", "member"), "name: required"),
])
def test_cli_token_create_refuses_bad_input_without_a_traceback(database_url, tmp_path, args, message):
    result = run_cli("token", "create", *args, environ=make_environ(database_url, tmp_path))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
