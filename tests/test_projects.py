"""Projects: create, list with rollups, edit, archive, delete; suggestions from PROJECT.md; roles."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from clawtrol import audit
from clawtrol.projects.parser import parse

from .conftest import sign_in_as

PROJECT_MD = """# Billing API

Invoices and payments for every customer.
Second line of the description.

## Overview
- Not a task: this section is not about work

## Tasks
- Build the invoice endpoint (P0)
- [ ] Add refunds — high priority
- [x] Write the docs, nice to have
* Fix it
+ Review error handling [p3]
- [Link to spec](http://example.com)
- (note) not a task either
- build the invoice endpoint
1. Numbered: load test the payments path

## Requirements
- Support EUR and USD — critical
"""


def test_parser_rules():
    parsed = parse(PROJECT_MD)
    assert parsed.title == "Billing API"
    assert parsed.description == "Invoices and payments for every customer. Second line of the description."
    assert [(s.title, s.priority) for s in parsed.suggestions] == [
        ("Build the invoice endpoint", "P0"),
        ("Add refunds — high priority", "P1"),
        ("Write the docs, nice to have", "P3"),
        ("Fix it", "P2"),
        ("Review error handling", "P3"),
        ("Numbered: load test the payments path", "P2"),
        ("Support EUR and USD — critical", "P0"),
    ]


@pytest.mark.parametrize("markdown, titles", [
    ("# T\n\n## Goals\n- abc\n- abcd\n", ["abcd"]),           # 3 characters or fewer are dropped
    ("## Deliverables\n- One thing\n- ONE THING\n", ["One thing"]),  # case-insensitive duplicates
    ("# T\n## Notes\n- Not work\n", []),                      # other sections give nothing
    ("## Work items\n### Sub\n- Nested under a sub-heading\n", ["Nested under a sub-heading"]),
    ("## TODO\n- **Bold** task `code`\n", ["Bold task code"]),
])
def test_parser_cases(markdown, titles):
    assert [s.title for s in parse(markdown).suggestions] == titles


def test_parser_description_is_capped():
    assert len(parse("# T\n" + "word " * 300 + "\n## Tasks\n").description) == 500


async def create_project(browser, name="Billing API", **extra):
    response = await browser.post("/api/projects", json={"name": name, **extra})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return (await response.get_json())["project"]


async def test_create_list_and_rollup(member, admin, db):
    project = await create_project(member, description="Invoices")
    assert project["id"] == "billing-api" and project["ownerId"] == member.user["id"]
    await member.post("/api/tasks", json={"title": "Done one", "projectId": "billing-api", "status": "done",
                                          "cost": 2.5, "humanCost": 100})
    await member.post("/api/tasks", json={"title": "Open one", "projectId": "billing-api"})
    listing = await (await admin.get("/api/projects")).get_json()
    [entry] = listing["projects"]
    assert entry["owner"] == "mel" and entry["taskStats"] == {
        "total": 2, "done": 1, "completionPercent": 50, "aiCost": 2.5, "humanCost": 100.0, "savings": 97.5}
    tasks = await (await member.get("/api/projects/billing-api/tasks")).get_json()
    assert tasks["stats"]["byStatus"]["done"] == 1 and len(tasks["tasks"]) == 2
    page = await (await member.get("/projects")).get_data(as_text=True)
    assert "Billing API" in page and "1/2 (50%)" in page and "$97.50" in page
    [created] = await audit.search(db, action="project.created")
    assert created["details"] == {"name": "Billing API"}


async def test_validation_and_conflicts(member, viewer):
    assert (await viewer.post("/api/projects", json={"name": "Nope"})).status_code == 403
    for body, field in (({}, "name"), ({"name": "  "}, "name"), ({"name": 3}, "name"), ({"name": "!!!"}, "name"),
                        ({"name": "x" * 101}, "name")):
        response = await member.post("/api/projects", json=body)
        assert response.status_code == 400 and (await response.get_json())["field"] == field
    assert (await member.post("/api/projects", json={"name": "ok", "colour": "red"})).status_code == 400
    await create_project(member, "Docs Site")
    again = await member.post("/api/projects", json={"name": "docs site"})
    assert again.status_code == 409 and "docs-site" in (await again.get_json())["error"]


async def test_owner_or_admin_edits_archives_and_deletes(app, member, admin, db):
    await create_project(member)
    other = await sign_in_as(app, "otto", "member")
    assert (await other.patch("/api/projects/billing-api", json={"name": "Hijack"})).status_code == 403
    assert (await other.delete("/api/projects/billing-api")).status_code == 403
    renamed = await (await member.patch("/api/projects/billing-api", json={"name": "Billing"})).get_json()
    assert renamed["name"] == "Billing"
    archived = await (await admin.patch("/api/projects/billing-api", json={"archived": True})).get_json()
    assert archived["archived"] is True
    assert (await (await member.get("/api/projects")).get_json())["count"] == 0
    assert (await (await member.get("/api/projects?archived=1")).get_json())["count"] == 1
    assert [e["action"] for e in await audit.search(db, entity_type="project")][:2] == [
        "project.archived", "project.updated"]
    assert (await member.patch("/api/projects/billing-api", json={"archived": "yes"})).status_code == 400
    task = await (await member.post("/api/tasks", json={"title": "Keep me", "projectId": "billing-api"})).get_json()
    assert (await member.delete("/api/projects/billing-api")).status_code == 200
    assert (await member.get("/api/projects/billing-api")).status_code == 404
    assert (await (await member.get(f"/api/tasks/{task['id']}")).get_json())["projectId"] is None


async def test_project_owner_may_edit_tasks_in_their_project(app, member, admin):
    await create_project(member)
    other = await sign_in_as(app, "otto", "member")
    task = await (await admin.post("/api/tasks", json={"title": "Admin's", "projectId": "billing-api"})).get_json()
    assert (await member.patch(f"/api/tasks/{task['id']}", json={"priority": "P0"})).status_code == 200
    assert (await other.patch(f"/api/tasks/{task['id']}", json={"priority": "P1"})).status_code == 403


async def test_suggest_and_create_tasks_api(member, viewer):
    await create_project(member)
    parsed = await (await member.post("/api/projects/billing-api/parse-tasks", json={"markdown": PROJECT_MD})).get_json()
    assert parsed["title"] == "Billing API" and parsed["suggestedTasks"][0] == {
        "title": "Build the invoice endpoint", "description": "", "priority": "P0"}
    picked = parsed["suggestedTasks"][:2]
    created = await member.post("/api/projects/billing-api/create-tasks", json={"tasks": picked})
    body = await created.get_json()
    assert created.status_code == 201 and body["created"] == 2
    assert {t["projectId"] for t in body["tasks"]} == {"billing-api"}
    assert body["tasks"][0]["priority"] == "P0" and body["tasks"][0]["status"] == "backlog"
    assert (await member.post("/api/projects/billing-api/create-tasks", json={"tasks": []})).status_code == 400
    assert (await member.post("/api/projects/billing-api/create-tasks",
                              json={"tasks": [{"title": "x", "priority": "P7"}]})).status_code == 400
    assert (await viewer.post("/api/projects/billing-api/create-tasks", json={"tasks": picked})).status_code == 403
    assert (await member.post("/api/projects/nope/parse-tasks", json={"markdown": "# x"})).status_code == 404
    assert (await member.post("/api/projects/billing-api/parse-tasks", json={"markdown": ""})).status_code == 400


async def test_pages_create_add_and_suggest(member, db):
    created = await member.post("/projects", form={"name": "Mobile App", "description": "iOS and Android"})
    assert created.status_code == 303 and created.headers["Location"] == "/projects/mobile-app"
    page = await (await member.get("/projects/mobile-app")).get_data(as_text=True)
    assert "Mobile App" in page and "Suggest tasks from PROJECT.md" in page and "Delete project" in page
    added = await member.post("/projects/mobile-app/tasks", form={"title": "Push notifications", "priority": "P1"})
    assert added.status_code == 303
    assert "Push notifications" in await (await member.get("/projects/mobile-app")).get_data(as_text=True)
    fragment = await (await member.post("/projects/mobile-app/suggest", form={"markdown": PROJECT_MD})).get_data(
        as_text=True)
    assert "7 suggested tasks" in fragment and 'name="pick" value="0" checked' in fragment
    made = await member.post("/projects/mobile-app/suggestions",
                             data=urlencode([("pick", "0"), ("pick", "2"), ("title-0", "Build the invoice endpoint"),
                                             ("priority-0", "P0"), ("title-1", "Skipped"), ("priority-1", "P1"),
                                             ("title-2", "Write the docs"), ("priority-2", "P3")]),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert made.headers["HX-Redirect"] == "/projects/mobile-app"
    titles = {t["title"] for t in (await (await member.get("/api/projects/mobile-app/tasks")).get_json())["tasks"]}
    assert titles == {"Push notifications", "Build the invoice endpoint", "Write the docs"}
    bad = await member.post("/projects", form={"name": "Mobile App"})
    assert bad.status_code == 409 and "already exists" in await bad.get_data(as_text=True)


async def test_viewer_sees_projects_without_controls(member, viewer):
    await create_project(member, "<img src=x onerror=alert(1)>")
    html = await (await viewer.get("/projects")).get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "New project" not in html
    project_id = re.search(r'href="/projects/([^"?]+)"', html).group(1)
    detail = await (await viewer.get(f"/projects/{project_id}")).get_data(as_text=True)
    assert "Add a task" not in detail and "Delete project" not in detail and "Edit" not in detail
