"""Users and roles: the admin page and its htmx fragments, the users JSON API, last-admin protection,
deactivation, CSRF on cookie-authenticated writes, and the audit trail of every change."""

from __future__ import annotations

import json
import re

import pytest

from clawtrol.auth import sessions, users
from clawtrol.clock import now_iso

from .conftest import sign_in_as


# --- helpers ----------------------------------------------------------------------------------------

def user_row(html: str, user_id: str) -> str:
    """The <tr> of one user in a page or fragment."""
    match = re.search(rf'<tr id="user-{re.escape(user_id)}">.*?</tr>', html, re.S)
    assert match, f"no row for user {user_id} in:\n{html}"
    return match.group(0)


def selected_role(row_html: str) -> str:
    selected = re.findall(r'<option value="(\w+)"\s*selected>', row_html)
    assert len(selected) == 1, row_html
    return selected[0]


async def text(response) -> str:
    return await response.get_data(as_text=True)


async def audit_entries(db, user_id: str, action: str | None = None) -> list[dict]:
    rows = await db.all("audit.for_entity", entity_type="user", entity_id=user_id, limit=50)
    return [row for row in rows if action is None or row["action"] == action]


async def role_of(db, user_id: str) -> str:
    return (await db.one("users.get", id=user_id))["role"]


# --- the users page ---------------------------------------------------------------------------------

async def test_admin_sees_every_user_with_a_role_select(admin, member, viewer):
    response = await admin.get("/admin/users")
    assert response.status_code == 200
    html = await text(response)
    assert "Users and roles" in html and "3 people" in html
    for browser in (admin, member, viewer):
        row = user_row(html, browser.user["id"])
        assert f"@{browser.user['login']}" in row
        assert f'<select id="role-{browser.user["id"]}" name="role">' in row
        assert selected_role(row) == browser.user["role"]
    # Admins cannot deactivate or delete themselves, so their own row has no such buttons.
    assert "(you)" in user_row(html, admin.user["id"])
    assert "Deactivate" not in user_row(html, admin.user["id"])
    assert "Deactivate" in user_row(html, member.user["id"])


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_users_page_is_forbidden_below_admin(member, viewer, role):
    browser = {"member": member, "viewer": viewer}[role]
    response = await browser.get("/admin/users")
    assert response.status_code == 403
    html = await text(response)
    assert f"Your role ({role}) cannot manage users" in html and "needs admin" in html


async def test_users_page_redirects_anonymous_visitors_to_sign_in(client):
    response = await client.get("/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/admin/users")


# --- role changes through the fragment --------------------------------------------------------------

async def test_role_fragment_rerenders_the_row_updates_the_db_and_audits(admin, member, db):
    user_id = member.user["id"]
    response = await admin.post(f"/admin/users/{user_id}", form={"role": "viewer"})
    assert response.status_code == 200
    html = await text(response)
    assert html.lstrip().startswith(f'<tr id="user-{user_id}">')
    assert selected_role(html) == "viewer"
    assert 'class="field-error"' not in html
    assert await role_of(db, user_id) == "viewer"

    [entry] = await audit_entries(db, user_id, "user.role_changed")
    assert json.loads(entry["details"]) == {"login": "mel", "from": "member", "to": "viewer"}
    assert entry["actor_kind"] == "user"
    assert entry["user_id"] == admin.user["id"]
    assert entry["actor_label"] == "ada"


async def test_setting_the_same_role_changes_nothing_and_audits_nothing(admin, member, db):
    response = await admin.post(f"/admin/users/{member.user['id']}", form={"role": "member"})
    assert response.status_code == 200
    assert selected_role(await text(response)) == "member"
    assert await audit_entries(db, member.user["id"], "user.role_changed") == []


async def test_role_fragment_refuses_an_unknown_role_inside_the_row(admin, member, db):
    response = await admin.post(f"/admin/users/{member.user['id']}", form={"role": "owner"})
    assert response.status_code == 400
    row = user_row(await text(response), member.user["id"])
    assert "role: must be one of viewer, member, admin" in row
    assert selected_role(row) == "member"
    assert await role_of(db, member.user["id"]) == "member"


async def test_fragment_without_role_or_active_is_refused(admin, member):
    response = await admin.post(f"/admin/users/{member.user['id']}", form={"nickname": "x"})
    assert response.status_code == 400
    assert "role or active: one is required" in user_row(await text(response), member.user["id"])


async def test_fragment_for_a_missing_user_is_404(admin):
    response = await admin.post("/admin/users/no-such-user", form={"role": "viewer"})
    assert response.status_code == 404


async def test_fragment_with_bad_input_for_a_missing_user_is_404(admin):
    """Regression: this used to render an empty row (user=None, `<tr id="user-">`) with status 400."""
    response = await admin.post("/admin/users/no-such-user", form={"role": "owner"})
    assert response.status_code == 404
    assert '<tr id="user-">' not in await text(response)


# --- last-admin protection --------------------------------------------------------------------------

async def test_only_admin_cannot_demote_themself_via_the_fragment(admin, db):
    user_id = admin.user["id"]
    response = await admin.post(f"/admin/users/{user_id}", form={"role": "member"})
    assert response.status_code == 400
    row = user_row(await text(response), user_id)
    assert "last active admin" in row
    assert selected_role(row) == "admin"
    assert await role_of(db, user_id) == "admin"
    assert await audit_entries(db, user_id, "user.role_changed") == []


async def test_only_admin_cannot_demote_themself_via_the_api(admin, db):
    response = await admin.patch(f"/api/users/{admin.user['id']}", json={"role": "member"})
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "LAST_ADMIN" and "last active admin" in body["error"]
    assert await role_of(db, admin.user["id"]) == "admin"


async def test_a_deactivated_second_admin_does_not_count(admin, member, db):
    """Only active admins count: with the other admin deactivated, the last one still cannot step down."""
    other = member.user["id"]
    assert (await admin.patch(f"/api/users/{other}", json={"role": "admin"})).status_code == 200
    assert (await admin.patch(f"/api/users/{other}", json={"active": False})).status_code == 200
    response = await admin.patch(f"/api/users/{admin.user['id']}", json={"role": "viewer"})
    assert response.status_code == 400 and (await response.get_json())["code"] == "LAST_ADMIN"
    assert await role_of(db, admin.user["id"]) == "admin"


async def test_with_two_admins_one_can_be_demoted(admin, member, db):
    assert (await admin.post(f"/admin/users/{member.user['id']}", form={"role": "admin"})).status_code == 200
    response = await admin.post(f"/admin/users/{admin.user['id']}", form={"role": "member"})
    assert response.status_code == 200
    assert selected_role(await text(response)) == "member"
    assert await role_of(db, admin.user["id"]) == "member"
    # The new admin is now the last one and is protected in turn.
    refused = await member.patch(f"/api/users/{member.user['id']}", json={"role": "member"})
    assert refused.status_code == 400 and (await refused.get_json())["code"] == "LAST_ADMIN"
    # And the demoted one lost admin rights at once.
    assert (await admin.get("/admin/users")).status_code == 403


# --- deactivation -----------------------------------------------------------------------------------

async def test_deactivation_ends_sessions_refuses_sign_in_and_reactivation_restores(app, admin, member, db):
    user_id = member.user["id"]
    assert (await member.get("/api/auth/me")).status_code == 200

    response = await admin.post(f"/admin/users/{user_id}", form={"active": "false"})
    assert response.status_code == 200
    row = user_row(await text(response), user_id)
    assert '<span class="text-danger">deactivated</span>' in row and "Reactivate" in row
    assert (await db.one("users.get", id=user_id))["active"] in (False, 0)
    assert await db.one("sessions.resolve", id=sessions.session_key(member.raw_session), now=now_iso()) is None
    [entry] = await audit_entries(db, user_id, "user.deactivated")
    assert json.loads(entry["details"]) == {"login": "mel"} and entry["user_id"] == admin.user["id"]

    assert (await member.get("/api/auth/me")).status_code == 401
    with pytest.raises(users.SignInRefused) as refused:
        await users.sign_in(db, users.Identity(login="mel", github_id=member.user["github_id"]), "127.0.0.1", "t")
    assert refused.value.reason == "deactivated"

    response = await admin.post(f"/admin/users/{user_id}", form={"active": "true"})
    assert response.status_code == 200
    row = user_row(await text(response), user_id)
    assert '<span class="text-success">active</span>' in row and "Deactivate" in row
    assert len(await audit_entries(db, user_id, "user.reactivated")) == 1

    again = await sign_in_as(app, "mel")
    me = await again.get("/api/auth/me")
    assert me.status_code == 200
    assert (await me.get_json())["githubLogin"] == "mel"


async def test_admin_cannot_deactivate_themself(admin, db):
    response = await admin.post(f"/admin/users/{admin.user['id']}", form={"active": "false"})
    assert response.status_code == 400
    assert "You cannot deactivate yourself." in user_row(await text(response), admin.user["id"])
    api = await admin.patch(f"/api/users/{admin.user['id']}", json={"active": False})
    assert api.status_code == 400
    assert (await db.one("users.get", id=admin.user["id"]))["active"] in (True, 1)
    assert (await admin.get("/api/auth/me")).status_code == 200


# --- changes apply on the next request --------------------------------------------------------------

async def test_role_change_applies_on_the_members_next_request(admin, member):
    assert (await (await member.get("/api/auth/me")).get_json())["role"] == "member"
    response = await admin.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"})
    assert response.status_code == 200
    assert (await response.get_json())["role"] == "viewer"

    me = await member.get("/api/auth/me")
    assert me.status_code == 200
    assert (await me.get_json())["role"] == "viewer"
    page = await member.get("/admin/users")
    assert page.status_code == 403
    assert "Your role (viewer)" in await text(page)


async def test_promotion_applies_on_the_next_request(admin, member):
    assert (await member.get("/admin/users")).status_code == 403
    assert (await admin.patch(f"/api/users/{member.user['id']}", json={"role": "admin"})).status_code == 200
    assert (await member.get("/admin/users")).status_code == 200


# --- the users JSON API -----------------------------------------------------------------------------

async def test_users_api_lists_everyone_for_any_role(admin, member, viewer, api_token, client):
    viewer_token = await api_token("viewer")
    callers = [
        (admin.get, {}), (member.get, {}), (viewer.get, {}),
        (client.get, {"headers": {"Authorization": f"Bearer {viewer_token}"}}),
    ]
    for get, kwargs in callers:
        response = await get("/api/users", **kwargs)
        assert response.status_code == 200
        body = await response.get_json()
        assert body["count"] == 3 == len(body["users"])
        by_login = {user["githubLogin"]: user for user in body["users"]}
        assert set(by_login) == {"ada", "mel", "vic"}
        mel = by_login["mel"]
        assert set(mel) >= {"id", "githubLogin", "name", "email", "avatarUrl", "role", "active",
                            "createdAt", "lastLoginAt"}
        assert mel["id"] == member.user["id"] and mel["role"] == "member"
        assert mel["active"] is True and mel["name"] == "Mel"
        assert by_login["ada"]["role"] == "admin" and by_login["vic"]["role"] == "viewer"


async def test_users_api_needs_authentication(client):
    response = await client.get("/api/users")
    assert response.status_code == 401
    assert await response.get_json() == {"error": "Not authenticated"}


async def test_member_cannot_patch_users(member, db):
    response = await member.patch(f"/api/users/{member.user['id']}", json={"role": "admin"})
    assert response.status_code == 403
    body = await response.get_json()
    assert body["code"] == "FORBIDDEN" and "Your role (member)" in body["error"]
    assert await role_of(db, member.user["id"]) == "member"


async def test_patch_refuses_unknown_fields(admin, member):
    response = await admin.patch(f"/api/users/{member.user['id']}", json={"nick": "x"})
    assert response.status_code == 400
    body = await response.get_json()
    assert body["field"] == "nick" and "nick" in body["error"]


async def test_patch_without_updates_is_refused(admin, member):
    response = await admin.patch(f"/api/users/{member.user['id']}", json={})
    assert response.status_code == 400
    assert "No updates provided" in (await response.get_json())["error"]


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "superuser"}, "role"),
    ({"role": None}, "role"),
    ({"active": "no"}, "active"),
    ({"active": 0}, "active"),
])
async def test_patch_refuses_invalid_values_naming_the_field(admin, member, db, body, field):
    response = await admin.patch(f"/api/users/{member.user['id']}", json=body)
    assert response.status_code == 400
    assert (await response.get_json())["field"] == field
    row = await db.one("users.get", id=member.user["id"])
    assert row["role"] == "member" and row["active"] in (True, 1)


async def test_a_refused_patch_changes_nothing(admin, member, db):
    """Regression: role used to be committed before `active` was validated, so a 400 left it changed."""
    response = await admin.patch(f"/api/users/{member.user['id']}", json={"role": "viewer", "active": "no"})
    assert response.status_code == 400
    assert await role_of(db, member.user["id"]) == "member"
    assert await audit_entries(db, member.user["id"], "user.role_changed") == []


async def test_a_patch_refused_halfway_rolls_back_the_first_change(admin, member, db):
    """Both values are valid, but deactivating yourself is refused after the role change: neither sticks."""
    assert (await admin.patch(f"/api/users/{member.user['id']}", json={"role": "admin"})).status_code == 200
    response = await admin.patch(f"/api/users/{admin.user['id']}", json={"role": "member", "active": False})
    assert response.status_code == 400
    assert "cannot deactivate yourself" in (await response.get_json())["error"]
    row = await db.one("users.get", id=admin.user["id"])
    assert row["role"] == "admin" and row["active"] in (True, 1)
    assert await audit_entries(db, admin.user["id"], "user.role_changed") == []


async def test_patch_role_and_active_together(admin, member, db):
    response = await admin.patch(f"/api/users/{member.user['id']}", json={"role": "viewer", "active": False})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["role"] == "viewer" and body["active"] is False
    actions = {row["action"] for row in await audit_entries(db, member.user["id"])}
    assert {"user.role_changed", "user.deactivated"} <= actions


async def test_patch_a_missing_user_is_404(admin):
    response = await admin.patch("/api/users/no-such-user", json={"role": "viewer"})
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "User not found"


async def test_patch_refuses_malformed_json(admin, member):
    response = await admin.patch(f"/api/users/{member.user['id']}", data='{"role": "viewer",',
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "Malformed JSON body" in (await response.get_json())["error"]


async def test_patch_refuses_a_non_object_body(admin, member):
    response = await admin.patch(f"/api/users/{member.user['id']}", json=["role", "viewer"])
    assert response.status_code == 400
    assert "JSON object" in (await response.get_json())["error"]


async def test_patch_refuses_form_bodies(admin, member, db):
    response = await admin.patch(f"/api/users/{member.user['id']}", form={"role": "viewer"})
    assert response.status_code == 415
    assert "application/json" in (await response.get_json())["error"]
    assert await role_of(db, member.user["id"]) == "member"


async def test_delete_user_via_api(admin, member, db):
    user_id = member.user["id"]
    response = await admin.delete(f"/api/users/{user_id}")
    assert response.status_code == 200
    assert await response.get_json() == {"success": True}
    assert await db.one("users.get", id=user_id) is None
    [entry] = await audit_entries(db, user_id, "user.deleted")
    assert json.loads(entry["details"]) == {"login": "mel"}
    assert entry["actor_kind"] == "user" and entry["user_id"] == admin.user["id"]
    # The deleted user's session went with them.
    assert (await member.get("/api/auth/me")).status_code == 401
    assert (await admin.delete(f"/api/users/{user_id}")).status_code == 404


async def test_admin_cannot_delete_themself(admin, member, db):
    response = await admin.delete(f"/api/users/{admin.user['id']}")
    assert response.status_code == 400
    assert "cannot delete yourself" in (await response.get_json())["error"]
    assert await db.one("users.get", id=admin.user["id"]) is not None


async def test_member_cannot_delete_users(member, viewer, db):
    response = await member.delete(f"/api/users/{viewer.user['id']}")
    assert response.status_code == 403
    assert await db.one("users.get", id=viewer.user["id"]) is not None


# --- CSRF on the fragment endpoints -----------------------------------------------------------------

async def test_fragment_without_csrf_token_is_refused(admin, member, db):
    response = await admin.client.post(f"/admin/users/{member.user['id']}", form={"role": "viewer"},
                                       headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 403
    assert "CSRF" in await text(response)
    assert await role_of(db, member.user["id"]) == "member"


async def test_fragment_with_a_wrong_csrf_token_is_refused(admin, member, db):
    response = await admin.post(f"/admin/users/{member.user['id']}", form={"role": "viewer"},
                                headers={"X-CSRF-Token": "0" * 64})
    assert response.status_code == 403
    assert await role_of(db, member.user["id"]) == "member"


async def test_cross_site_fragment_is_refused_even_with_the_token(admin, member, db):
    response = await admin.post(f"/admin/users/{member.user['id']}", form={"role": "viewer"},
                                headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert await role_of(db, member.user["id"]) == "member"
    deleted = await admin.delete(f"/admin/users/{member.user['id']}", headers={"Sec-Fetch-Site": "cross-site"})
    assert deleted.status_code == 403
    assert await db.one("users.get", id=member.user["id"]) is not None


async def test_plain_form_may_send_the_csrf_token_as_a_field(admin, member, db):
    response = await admin.client.post(f"/admin/users/{member.user['id']}",
                                       form={"role": "viewer", "csrf_token": admin.csrf_token},
                                       headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200
    assert await role_of(db, member.user["id"]) == "viewer"


# --- deleting through the fragment ------------------------------------------------------------------

async def test_delete_fragment_returns_an_empty_body_and_removes_the_user(admin, member, db):
    response = await admin.delete(f"/admin/users/{member.user['id']}")
    assert response.status_code == 200
    assert await text(response) == ""
    assert await db.one("users.get", id=member.user["id"]) is None
    assert len(await audit_entries(db, member.user["id"], "user.deleted")) == 1
    assert (await admin.delete(f"/admin/users/{member.user['id']}")).status_code == 404


async def test_delete_fragment_refuses_self_inside_the_row(admin, db):
    response = await admin.delete(f"/admin/users/{admin.user['id']}")
    assert response.status_code == 400
    assert "You cannot delete yourself." in user_row(await text(response), admin.user["id"])
    assert await db.one("users.get", id=admin.user["id"]) is not None


async def test_member_cannot_use_the_fragments(member, viewer, db):
    assert (await member.post(f"/admin/users/{viewer.user['id']}", form={"role": "admin"})).status_code == 403
    assert (await member.delete(f"/admin/users/{viewer.user['id']}")).status_code == 403
    assert await role_of(db, viewer.user["id"]) == "viewer"
