"""API parity with the original (issue #17): every route of the shared reference's HTTP API
(reference/original-mission-clawtrol.md §2) answers, with real ids, as an admin API token; and an agent's
script written against the reference runs unchanged with one member token."""

from __future__ import annotations

import pytest

from . import gateway_fixtures
from .conftest import Agent, sign_in_as
from .gateway_fixtures import eventually

# The app under test talks to the in-process fake gateway (fixtures bound here, not imported: ruff F811).
config, connected, fake = gateway_fixtures.config, gateway_fixtures.connected, gateway_fixtures.fake

CHECKLIST = ("Files changed: app/login.py\nHow tested: pytest, 12 passed\nEdge cases: empty password\n"
             "Rollback: revert the commit\nCommit hash: 3f2a9c1d")

# One row per route of the reference (§2): method, path ({name} = an id the test creates), JSON body or None.
# Writes that remove something use ids made for that purpose, and run after the reads.
ROUTES = [
    # 2.1 health
    ("GET", "/api/health", None),
    # 2.2 tasks
    ("GET", "/api/tasks?projectId={project}", None),
    ("GET", "/api/tasks/{task}", None),
    ("POST", "/api/tasks", {"title": "Parity", "description": "d", "priority": "P1", "projectId": "{project}"}),
    ("PATCH", "/api/tasks/{task}", {"priority": "P0"}),
    ("DELETE", "/api/tasks/{doomed_task}", None),
    # 2.3 projects
    ("GET", "/api/projects", None),
    ("GET", "/api/projects/{project}", None),
    ("GET", "/api/projects/{project}/status", None),
    ("GET", "/api/projects/{project}/handoff", None),
    ("GET", "/api/projects/{project}/project", None),
    ("GET", "/api/projects/{project}/agents", None),
    ("POST", "/api/projects", {"name": "Parity two", "description": "second"}),
    ("DELETE", "/api/projects/{doomed_project}", None),
    ("GET", "/api/projects/{project}/tasks", None),
    ("POST", "/api/projects/{project}/parse-tasks", {"markdown": "# P\n\n## Tasks\n- Write the parser"}),
    ("POST", "/api/projects/{project}/create-tasks", {"tasks": [{"title": "Suggested", "priority": "P2"}]}),
    ("GET", "/api/projects/importable", None),
    ("POST", "/api/projects/import", {"folderId": "imported-folder"}),
    ("GET", "/api/projects/{project}/agent-summary", None),
    # 2.4 agents
    ("GET", "/api/agents/roster", None),
    ("GET", "/api/agents", None),
    ("GET", "/api/agents/{session}", None),
    ("POST", "/api/agents/{session}/message", {"message": "status?"}),
    ("POST", "/api/agents/spawn", {"taskId": "{spawn_task}", "projectId": "{project}", "label": "main"}),
    ("GET", "/api/agents/project/{project}", None),
    ("GET", "/api/agents/associations", None),
    ("POST", "/api/agents/associations", {"sessionKey": "agent:main:subagent:ext", "projectId": "{project}",
                                          "task": "External helper", "label": "ext", "model": "fake/fake-2"}),
    ("GET", "/api/agents/subagents", None),
    ("GET", "/api/agents/{session}/history?limit=20", None),
    ("DELETE", "/api/agents/{doomed_session}", None),
    ("PATCH", "/api/agents/{session}/model", {"model": "fake/fake-2"}),
    # 2.5 sessions
    ("GET", "/api/sessions/main", None),
    ("GET", "/api/sessions/main/{session_id}", None),
    ("GET", "/api/sessions/main/{session_id}/transcript?limit=10", None),
    # 2.6 approvals
    ("GET", "/api/approvals", None),
    ("POST", "/api/approvals/{approval}/resolve", {"decision": "deny"}),
    ("GET", "/api/approvals/status", None),
    # 2.7 activity
    ("GET", "/api/activity?limit=50&offset=0", None),
    ("POST", "/api/activity", {"type": "system", "message": "parity walk"}),
    # 2.8 settings
    ("GET", "/api/settings", None),
    ("PUT", "/api/settings", {"humanHourlyRate": 100}),
    # 2.9 costs
    ("GET", "/api/costs/summary", None),
    ("GET", "/api/costs/by-agent", None),
    ("GET", "/api/costs/by-project", None),
    ("GET", "/api/costs/over-time?period=day", None),
    ("GET", "/api/costs/recent?limit=10", None),
    # 2.10 auth, users, audit, comments, message
    ("GET", "/api/auth/login", None),
    ("GET", "/api/auth/callback", None),
    ("GET", "/api/auth/me", None),
    ("GET", "/api/users", None),
    ("PATCH", "/api/users/{user}", {"role": "viewer"}),
    ("DELETE", "/api/users/{doomed_user}", None),
    ("GET", "/api/audit?limit=10", None),
    ("GET", "/api/tasks/{task}/comments", None),
    ("POST", "/api/tasks/{task}/comments", {"content": "A comment"}),
    ("PATCH", "/api/tasks/{task}/comments/{comment}", {"content": "Edited"}),
    ("DELETE", "/api/tasks/{task}/comments/{comment}", None),
    ("POST", "/api/message", {"message": "Hello", "projectId": "{project}"}),
    ("GET", "/api/message/history?limit=20", None),
    # P1-tail webhooks (issue #14)
    ("GET", "/api/webhooks", None),
    ("GET", "/api/webhooks/{webhook}", None),
    ("POST", "/api/webhooks", {"url": "https://hooks.example/x", "events": ["task.created"]}),
    ("PUT", "/api/webhooks/{webhook}", {"enabled": False}),
    ("POST", "/api/webhooks/{webhook}/test", None),
    ("DELETE", "/api/webhooks/{webhook}", None),
    ("POST", "/api/auth/logout", None),
]


def fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


async def created(response, key: str | None = None):
    assert response.status_code in (200, 201), await response.get_data(as_text=True)
    body = await response.get_json()
    return body[key] if key else body


async def real_ids(app, fake, db, admin) -> dict:
    """Ids of real things for every {name} in the route tables."""
    project = (await created(await admin.post("/api/projects", json={"name": "Parity"}), "project"))["id"]
    doomed_project = (await created(await admin.post("/api/projects", json={"name": "Doomed"}), "project"))["id"]
    task = (await created(await admin.post("/api/tasks", json={"title": "Walked", "projectId": project,
                                                                "handoffNotes": CHECKLIST})))["id"]
    doomed_task = (await created(await admin.post("/api/tasks", json={"title": "Doomed"})))["id"]
    spawn_task = (await created(await admin.post("/api/tasks", json={"title": "Spawned", "projectId": project})))["id"]
    comment = (await created(await admin.post(f"/api/tasks/{task}/comments", json={"content": "first"})))["id"]
    session = fake.add_session("agent:main:subagent:walker", totalTokens=10)
    fake.transcripts[session["key"]] = [{"role": "user", "content": "hi", "timestamp": 1}]
    fake.add_session("agent:main:subagent:doomed")
    approval = await fake.raise_approval("ls -la", sessionKey=session["key"])

    async def stored():
        return await db.one("approvals.get", gateway_id="default", id=approval["id"])
    await eventually(stored)
    member = await sign_in_as(app, "mel", "member")
    doomed_user = await sign_in_as(app, "gone", "viewer")
    webhook = (await created(await admin.post("/api/webhooks", json={"url": "https://hooks.example/walked",
                                                                       "events": ["task.created"]})))["id"]
    return {"project": project, "doomed_project": doomed_project, "task": task, "doomed_task": doomed_task,
            "spawn_task": spawn_task, "comment": comment, "session": session["key"],
            "session_id": session["sessionId"], "doomed_session": "agent:main:subagent:doomed",
            "approval": approval["id"], "user": member.user["id"], "doomed_user": doomed_user.user["id"],
            "webhook": webhook}


async def walk(caller, routes: list[tuple], ids: dict) -> list[str]:
    missing = []
    for method, template, body in routes:
        path = fill(template, ids)
        response = await caller.request(method, path, **({"json": fill(body, ids)} if body is not None else {}))
        if response.status_code in (404, 405) or response.status_code >= 500:
            missing.append(f"{method} {template}: {response.status_code} {await response.get_data(as_text=True)}")
    return missing


async def test_every_route_of_the_reference_answers(connected, fake, db, admin, api_token):
    ids = await real_ids(connected, fake, db, admin)
    caller = Agent(connected, await api_token("admin", "parity-walker"))
    assert await walk(caller, ROUTES, ids) == []
    assert len(ROUTES) == len({(method, path.split("?")[0]) for method, path, _ in ROUTES})  # one row per route


async def test_an_agent_script_runs_as_the_reference_documents_it(connected, admin, api_token):
    """One member token, the calls an agent makes in the reference: create a task, post activity, comment,
    move it to review with the checklist, to done with its usage, then read the costs."""
    await admin.put("/api/settings", json={"humanHourlyRate": 120})
    await admin.post("/api/projects", json={"name": "Website"})
    agent = Agent(connected, await api_token("member", "senior-dev"))

    response = await agent.post("/api/tasks", json={"title": "Fix login redirect", "description": "Loops on /login",
                                                    "priority": "P1", "projectId": "website"})
    assert response.status_code == 201
    task = await response.get_json()  # the task itself, not wrapped
    assert task["status"] == "backlog" and task["priority"] == "P1" and task["projectId"] == "website"

    started = await agent.patch(f"/api/tasks/{task['id']}", json={"status": "in-progress", "agentId": "senior-dev"})
    assert started.status_code == 200 and (await started.get_json())["status"] == "in-progress"

    posted = await agent.post("/api/activity", json={"type": "task", "agent": "senior-dev", "project": "website",
                                                     "message": "Started: Fix login redirect", "severity": "info"})
    assert posted.status_code == 201
    feed = await (await agent.get("/api/activity?limit=10&offset=0")).get_json()
    assert feed["events"][0]["message"] == "Started: Fix login redirect" and feed["total"] == 1

    comment = await agent.post(f"/api/tasks/{task['id']}/comments", json={"content": "Found it: a stale cookie."})
    assert comment.status_code == 201 and (await comment.get_json())["userName"] == "senior-dev"

    ungated = await agent.patch(f"/api/tasks/{task['id']}", json={"status": "review", "handoffNotes": "done"})
    assert ungated.status_code == 400 and (await ungated.get_json())["code"] == "MISSING_REVIEW_CHECKLIST"
    review = await agent.patch(f"/api/tasks/{task['id']}", json={"status": "review", "handoffNotes": CHECKLIST})
    assert review.status_code == 200
    reviewed = await review.get_json()
    assert reviewed["status"] == "review" and reviewed["commitHash"] == "3f2a9c1d"  # taken from the notes

    done = await agent.patch(f"/api/tasks/{task['id']}", json={
        "status": "done", "linesChanged": {"added": 30, "removed": 10}, "cost": 0.42, "runtime": 600_000,
        "model": "anthropic/claude-sonnet-4-5", "tokens": {"input": 12_000, "output": 3_000, "total": 15_000}})
    assert done.status_code == 200, await done.get_json()
    finished = await done.get_json()
    assert finished["status"] == "done" and finished["completedAt"]
    assert finished["linesChanged"] == {"added": 30, "removed": 10, "total": 40}
    assert finished["estimatedHumanMinutes"] == 120 and finished["humanCost"] == 240  # 40 lines × 3 min at $120/h

    summary = await (await agent.get("/api/costs/summary")).get_json()
    assert summary["totalTasks"] == 1 and summary["totalLines"] == 40 and summary["totalAiCost"] == 0.42
    assert summary["totalHumanCost"] == 240 and summary["netSavings"] == pytest.approx(239.58)
    assert summary["hoursSaved"] == round((120 - 10) / 60, 2)  # 120 human minutes − 10 AI minutes
    by_agent = (await (await agent.get("/api/costs/by-agent")).get_json())["agents"]
    assert by_agent == [{**by_agent[0], "agentId": "senior-dev", "tasks": 1, "lines": 40}]
    by_project = (await (await agent.get("/api/costs/by-project")).get_json())["projects"]
    assert by_project[0]["projectId"] == "website" and by_project[0]["savings"] == pytest.approx(239.58)
    [recent] = (await (await agent.get("/api/costs/recent?limit=10")).get_json())["tasks"]
    assert recent["id"] == task["id"] and recent["savings"] == pytest.approx(239.58)
