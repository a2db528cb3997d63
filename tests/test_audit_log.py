"""The audit log page, CSV export and /api/audit: admin only, filterable, human-readable."""

from __future__ import annotations

import csv
import io


async def make_history(admin, member):
    """A few audited events: a role change and a token creation by the admin."""
    assert (await admin.patch(f"/api/users/{member.user['id']}", json={"role": "viewer"})).status_code == 200
    assert (await admin.post("/api/tokens", json={"name": "ci", "role": "member"})).status_code == 201


async def test_api_returns_parsed_entries_newest_first(admin, member):
    await make_history(admin, member)
    body = await (await admin.get("/api/audit")).get_json()
    actions = [entry["action"] for entry in body["auditLog"]]
    assert actions[:2] == ["token.created", "user.role_changed"]
    assert body["count"] == len(body["auditLog"])
    change = body["auditLog"][1]
    assert change["details"] == {"login": "mel", "from": "member", "to": "viewer"}
    assert change["userId"] == admin.user["id"] and change["actorKind"] == "user" and change["actor"] == "ada"
    assert change["summary"] == "ada changed mel's role from member to viewer"


async def test_filters_combine(admin, member):
    await make_history(admin, member)
    only_roles = await (await admin.get("/api/audit?action=user.role_changed")).get_json()
    assert [e["action"] for e in only_roles["auditLog"]] == ["user.role_changed"]
    by_entity = await (await admin.get(f"/api/audit?entityType=user&entityId={member.user['id']}")).get_json()
    assert {e["action"] for e in by_entity["auditLog"]} == {"auth.signed_in", "user.role_changed"}
    by_actor = await (await admin.get("/api/audit?actor=MEL")).get_json()
    assert [e["action"] for e in by_actor["auditLog"]] == ["auth.signed_in"]
    future = await (await admin.get("/api/audit?since=2999-01-01")).get_json()
    assert future == {"auditLog": [], "count": 0}
    limited = await (await admin.get("/api/audit?limit=1")).get_json()
    assert limited["count"] == 1


async def test_bad_filters_are_400(admin):
    for query, field in (("since=yesterday", "since"), ("limit=0", "limit"), ("limit=abc", "limit")):
        response = await admin.get(f"/api/audit?{query}")
        assert response.status_code == 400 and (await response.get_json())["field"] == field


async def test_admin_only(member, viewer, api_token):
    for browser in (member, viewer):
        assert (await browser.get("/api/audit")).status_code == 403
        assert (await browser.get("/admin/audit")).status_code == 403
        assert (await browser.get("/admin/audit.csv")).status_code == 403
    token = await api_token("admin")
    response = await member.client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_page_shows_readable_lines_and_filters_with_htmx(admin, member):
    await make_history(admin, member)
    html = await (await admin.get("/admin/audit")).get_data(as_text=True)
    assert "ada changed mel&#39;s role from member to viewer" in html
    assert "ada created API token ci (member)" in html
    assert '<option >user.role_changed</option>' in html or "user.role_changed</option>" in html
    fragment = await (await admin.get("/admin/audit?action=token.created", headers={"HX-Request": "true"})).get_data(
        as_text=True)
    assert fragment.startswith('<div id="audit-entries"') and "role from" not in fragment


async def test_csv_export(admin, member):
    await make_history(admin, member)
    response = await admin.get("/admin/audit.csv?action=user.role_changed")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.get_data(as_text=True))))
    assert len(rows) == 1 and rows[0]["actor"] == "ada" and rows[0]["entityId"] == member.user["id"]
    assert '"to": "viewer"' in rows[0]["details"]
