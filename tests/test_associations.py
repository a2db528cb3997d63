"""Which sessions work for which project (/api/agents/associations, /api/agents/project/:id) and the original's
per-project files written from our records (/api/projects/:id/status, /project, /handoff, /agents,
/agent-summary, /importable, /import)."""

from __future__ import annotations

from clawtrol import audit

from . import gateway_fixtures
from .conftest import Agent

# The app under test talks to the in-process fake gateway (fixtures bound here, not imported: ruff F811).
config, connected, fake = gateway_fixtures.config, gateway_fixtures.connected, gateway_fixtures.fake

CHECKLIST = "Files changed: a.py\nHow tested: pytest\nEdge cases: none\nRollback: revert\nCommit hash: NO_COMMIT"


async def project(who, name: str, description: str | None = None) -> str:
    body = {"name": name, **({"description": description} if description else {})}
    response = await who.post("/api/projects", json=body)
    assert response.status_code == 201, await response.get_json()
    return (await response.get_json())["project"]["id"]


async def test_associations_come_from_start_work_task_links_and_registrations(connected, fake, db, admin, member):
    site = await project(member, "Website")
    other = await project(admin, "Other")
    started = await (await member.post("/api/tasks", json={"title": "Fix login", "projectId": site})).get_json()
    key = (await (await member.post("/api/agents/spawn", json={"taskId": started["id"]})).get_json())["childSessionKey"]
    linked = await (await admin.post("/api/tasks", json={"title": "Linked by an admin", "projectId": site,
                                                          "sessionKey": "agent:main:linked"})).get_json()
    registered = await member.post("/api/agents/associations", json={
        "sessionKey": "agent:main:subagent:helper", "projectId": site, "task": "Write the docs", "label": "helper",
        "model": "fake/fake-2"})
    assert registered.status_code == 201
    assert await registered.get_json() == {"success": True, "created": True, "sessionKey": "agent:main:subagent:helper",
                                            "projectId": site, "gatewayId": "default"}
    await admin.post("/api/agents/associations", json={"sessionKey": "agent:main:elsewhere", "projectId": other,
                                                       "task": "Elsewhere"})

    body = await (await member.get(f"/api/agents/project/{site}")).get_json()
    assert body["projectId"] == site and body["count"] == 3
    by_key = {a["sessionKey"]: a for a in body["agents"]}
    assert set(by_key) == {key, "agent:main:linked", "agent:main:subagent:helper"}
    start = by_key[key]
    assert start["source"] == "start-work" and start["taskId"] == started["id"] and start["task"] == "Fix login"
    assert start["agentId"] == "main" and start["status"] == "running" and start["registeredBy"] == "mel"
    assert isinstance(start["spawnedAt"], int) and start["completedAt"] is None and start["projectName"] == "Website"
    assert by_key["agent:main:linked"]["source"] == "task-link"
    assert by_key["agent:main:linked"]["taskId"] == linked["id"]
    helper = by_key["agent:main:subagent:helper"]
    assert helper["source"] == "registered" and helper["label"] == "helper" and helper["model"] == "fake/fake-2"
    assert helper["task"] == "Write the docs" and helper["agentId"] == "main" and helper["taskId"] is None
    # Newest first (the registration came last; within one millisecond the session key breaks the tie).
    order = [(-a["spawnedAt"], a["sessionKey"]) for a in body["agents"]]
    assert order == sorted(order)
    assert body["agents"][0]["spawnedAt"] == helper["spawnedAt"] == max(a["spawnedAt"] for a in body["agents"])

    everything = await (await member.get("/api/agents/associations")).get_json()
    assert everything["count"] == 4 and {a["projectId"] for a in everything["associations"]} == {site, other}

    [entry] = await audit.search(db, action="association.registered", entity_id="agent:main:subagent:helper")
    assert entry["details"]["projectId"] == site and entry["user_id"] == member.user["id"]

    # The linked task reaching done completes its association (the original's P1 rule).
    done = await admin.patch(f"/api/tasks/{linked['id']}", json={"status": "done", "handoffNotes": CHECKLIST})
    assert done.status_code == 200, await done.get_json()
    after = {a["sessionKey"]: a for a in (await (await member.get(f"/api/agents/project/{site}")).get_json())["agents"]}
    assert after["agent:main:linked"]["status"] == "completed" and after["agent:main:linked"]["completedAt"]

    # AGENTS.md as the original parsed it: active and completed, from the associations.
    agents_md = await (await member.get(f"/api/projects/{site}/agents")).get_json()
    assert agents_md["total"] == 3 and len(agents_md["active"]) == 2 and len(agents_md["completed"]) == 1
    [finished] = agents_md["completed"]
    assert finished["session"] == "agent:main:linked" and finished["status"] == "completed"
    assert finished["task"] == "Linked by an admin" and finished["completed"].endswith("Z")
    helper_md = next(a for a in agents_md["active"] if a["session"] == "agent:main:subagent:helper")
    assert helper_md == {"name": "helper", "agentId": "main", "session": "agent:main:subagent:helper",
                         "task": "Write the docs", "since": helper_md["since"], "status": "working",
                         "source": "registered"}


async def test_a_session_is_listed_once_and_registering_again_changes_nothing(admin, db):
    site = await project(admin, "Site")
    other = await project(admin, "Other")
    first = await admin.post("/api/agents/associations", json={"sessionKey": "agent:main:x", "projectId": site,
                                                               "task": "first"})
    again = await admin.post("/api/agents/associations", json={"sessionKey": "agent:main:x", "projectId": other,
                                                               "task": "second"})
    assert first.status_code == 201 and again.status_code == 200
    assert (await again.get_json())["created"] is False and (await again.get_json())["projectId"] == site
    assert len(await audit.search(db, action="association.registered")) == 1
    # A task linked to the same session takes precedence over the registration.
    await admin.post("/api/tasks", json={"title": "Owns x", "projectId": other, "sessionKey": "agent:main:x"})
    body = await (await admin.get("/api/agents/associations")).get_json()
    [only] = body["associations"]
    assert only["source"] == "task-link" and only["projectId"] == other


async def test_registrations_are_validated_and_need_a_member(app, admin, viewer, api_token):
    site = await project(admin, "Site")
    valid = {"sessionKey": "agent:main:y", "projectId": site, "task": "t"}
    for body, field in (({**valid, "sessionKey": ""}, "sessionKey"), ({**valid, "sessionKey": "has space"}, "sessionKey"),
                        ({k: v for k, v in valid.items() if k != "task"}, "task"), ({**valid, "projectId": 3}, "projectId"),
                        ({**valid, "projectId": "nope"}, "projectId"), ({**valid, "label": 7}, "label"),
                        ({**valid, "model": "m" * 201}, "model"), ({**valid, "task": "x" * 2001}, "task"),
                        ({**valid, "status": "running"}, "status")):
        response = await admin.post("/api/agents/associations", json=body)
        assert response.status_code == 400, body
        assert (await response.get_json())["field"] == field, body
    refused = await viewer.post("/api/agents/associations", json=valid)
    assert refused.status_code == 403 and (await refused.get_json())["code"] == "FORBIDDEN"
    assert (await Agent(app, await api_token("viewer")).post("/api/agents/associations", json=valid)).status_code == 403
    bot = Agent(app, await api_token("member", "orchestrator"))
    assert (await bot.post("/api/agents/associations", json=valid)).status_code == 201
    [registered] = (await (await viewer.get("/api/agents/associations")).get_json())["associations"]
    assert registered["registeredBy"] == "orchestrator"


async def test_unknown_projects_are_404_with_the_original_error_shape(admin):
    for path in ("/api/agents/project/nope", "/api/projects/nope/status", "/api/projects/nope/agents",
                 "/api/projects/nope/project", "/api/projects/nope/handoff", "/api/projects/nope/agent-summary"):
        response = await admin.get(path)
        assert response.status_code == 404, path
        assert await response.get_json() == {"error": "Project not found"}, path


async def test_project_files_are_written_from_our_records(admin, member):
    site = await project(member, "Web Site", "The public website.\nBuilt with care.")
    for title, status, agent, extra in (
            ("Backlog one", "backlog", None, {}), ("Doing", "in-progress", "dev", {"model": "fake/fake-1"}),
            ("Reviewing", "review", "dev", {"handoffNotes": CHECKLIST, "model": "fake/fake-2"}),
            ("Shipped", "done", "qa", {"handoffNotes": "Shipped it.", "commitHash": "abc1234"})):
        body = {"title": title, "status": status, "projectId": site, **({"agentId": agent} if agent else {}), **extra}
        assert (await member.post("/api/tasks", json=body)).status_code == 201, title

    status = await (await member.get(f"/api/projects/{site}/status")).get_json()
    assert status["content"].startswith("# Web Site — status\n\nThe public website.\nBuilt with care.\n")
    assert "Progress: 1 of 4 tasks done (25%)" in status["content"]
    assert "- Backlog: 1" in status["content"] and "- In progress: 1" in status["content"]
    assert status["stats"]["byStatus"] == {"backlog": 1, "todo": 0, "in-progress": 1, "review": 1, "done": 1}
    assert status["stats"]["completionPercent"] == 25

    about = await (await member.get(f"/api/projects/{site}/project")).get_json()
    assert about["content"] == "# Web Site\n\nThe public website.\nBuilt with care.\n\nOwner: mel\n"

    handoff = (await (await member.get(f"/api/projects/{site}/handoff")).get_json())["content"]
    assert handoff.startswith("# Web Site — handoff")
    assert "## Shipped (done, qa, commit abc1234)\n\nShipped it." in handoff and "## Reviewing (review, dev)" in handoff
    empty = await project(member, "Empty")
    assert "No task has handoff notes yet." in (await (await member.get(f"/api/projects/{empty}/handoff")).get_json())["content"]

    summary = await (await member.get(f"/api/projects/{site}/agent-summary")).get_json()
    by_agent = {row["agentId"]: row for row in summary["agents"]}
    assert set(by_agent) == {"dev", "qa"}
    assert by_agent["dev"]["taskCount"] == 2 and by_agent["dev"]["inProgress"] == 1 and by_agent["dev"]["doneTasks"] == 0
    assert by_agent["dev"]["models"] == ["fake/fake-1", "fake/fake-2"] and by_agent["dev"]["lastActive"]
    assert by_agent["qa"] == {**by_agent["qa"], "taskCount": 1, "doneTasks": 1, "inProgress": 0, "models": []}

    agents_md = await (await member.get(f"/api/projects/{empty}/agents")).get_json()
    assert agents_md == {"projectId": empty, "active": [], "completed": [], "total": 0}


async def test_import_makes_a_project_from_a_folder_name(admin, member, viewer, db):
    assert (await (await member.get("/api/projects/importable")).get_json())["folders"] == []
    created = await member.post("/api/projects/import", json={"folderId": "data-pipeline", "description": "ETL"})
    assert created.status_code == 201
    body = await created.get_json()
    assert body["success"] is True and body["createdFiles"] == []
    assert body["project"]["id"] == "data-pipeline" and body["project"]["name"] == "Data Pipeline"
    assert body["project"]["description"] == "ETL" and body["project"]["ownerId"] == member.user["id"]
    assert (await member.post("/api/projects/import", json={"folderId": "data-pipeline"})).status_code == 409
    for bad in ({}, {"folderId": "--"}, {"folderId": 5}):
        response = await member.post("/api/projects/import", json=bad)
        assert response.status_code == 400 and (await response.get_json())["field"] == "folderId", bad
    assert (await viewer.post("/api/projects/import", json={"folderId": "nope"})).status_code == 403
    [entry] = await audit.search(db, action="project.created", entity_id="data-pipeline")
    assert entry["user_id"] == member.user["id"]
