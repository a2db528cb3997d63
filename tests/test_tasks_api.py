"""The tasks JSON API: create/read/list/update/delete, strict validation, roles and ownership (DESIGN §4),
optimistic versions, the review gate, done enrichment and the audit trail, on /api/tasks."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from clawtrol import audit
from clawtrol.clock import now_iso

from .conftest import BACKEND, Agent, sign_in_as

TASK_KEYS = {
    "id", "title", "description", "status", "priority", "projectId", "agentId", "sessionKey", "sessionGatewayId",
    "handoffNotes",
    "commitHash", "estimatedHumanMinutes", "humanCost", "cost", "runtime", "model", "createdAt", "updatedAt",
    "completedAt", "createdBy", "createdByToken", "assignedTo", "dueDate", "version",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

CHECKLIST = ("## Files changed\nclawtrol/tasks/rules.py\n## How tested\npytest\n## Edge cases\nempty notes\n"
             "## Rollback\nrevert the merge\n## Commit hash\n")
NOTES_WITHOUT_HASH = CHECKLIST + "(pending)"
NOTES_WITH_HASH = CHECKLIST + "Commit hash: abc1234"
NOTES_NO_COMMIT = CHECKLIST + "NO_COMMIT (documentation only)"


# --- helpers ----------------------------------------------------------------------------------------

def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


async def create(client, **fields) -> dict:
    """POST /api/tasks (title defaults to "Task") and insist on 201."""
    response = await client.post("/api/tasks", json={"title": "Task", **fields})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


async def patch(client, task_id: str, **fields):
    return await client.patch(f"/api/tasks/{task_id}", json=fields)


async def patched(client, task_id: str, **fields) -> dict:
    """PATCH and insist on 200."""
    response = await patch(client, task_id, **fields)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def fetch(client, task_id: str) -> dict:
    response = await client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def listing(client, query: str = "") -> dict:
    response = await client.get(f"/api/tasks{query}")
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def total(client) -> int:
    return (await listing(client))["total"]


async def titles(client, query: str) -> set[str]:
    return {task["title"] for task in (await listing(client, query))["tasks"]}


async def task_audit(db, task_id: str) -> list[dict]:
    """The task's audit entries, oldest first."""
    return list(reversed(await audit.search(db, entity_type="task", entity_id=task_id)))


async def actions(db, task_id: str) -> list[str]:
    return [entry["action"] for entry in await task_audit(db, task_id)]


async def token_id(db, name: str) -> str:
    return next(row["id"] for row in await db.all("tokens.list") if row["name"] == name)


async def set_hourly_rate(db, rate: str) -> None:
    await db.changed("settings.upsert", key="humanHourlyRate", value=rate, updated_at=now_iso(), updated_by=None)


async def tick() -> None:
    """Let the millisecond clock move on, so creation order is visible in created_at."""
    await asyncio.sleep(0.003)


@pytest.fixture
async def meg(app, admin):
    """A second member, who owns nothing of mel's."""
    return await sign_in_as(app, "meg", "member")


# --- create -----------------------------------------------------------------------------------------

async def test_create_minimal_task_has_the_original_shape(member):
    response = await member.post("/api/tasks", json={"title": "Ship the board"})
    assert response.status_code == 201
    task = await response.get_json()
    assert set(task) == TASK_KEYS  # no linesChanged / tokens keys while unset
    assert task["title"] == "Ship the board"
    assert task["description"] is None
    assert task["status"] == "backlog" and task["priority"] == "P2"
    for key in ("projectId", "agentId", "sessionKey", "handoffNotes", "commitHash", "completedAt",
                "assignedTo", "dueDate", "createdByToken"):
        assert task[key] is None, key
    assert task["createdBy"] == member.user["id"]
    assert task["version"] == 1
    assert ISO_UTC.match(task["createdAt"]) and task["updatedAt"] == task["createdAt"]
    assert await fetch(member, task["id"]) == task


async def test_create_with_every_common_field(member, admin):
    task = await create(admin, title="  Padded title  ", description="Details", status="todo", priority="P0",
                        agentId="claw-1", sessionKey="agent:claw-1:main", assignedTo=member.user["id"],
                        dueDate="2026-03-31", cost=1.25, runtime=42_000, model="opus")
    assert task["title"] == "Padded title"
    assert (task["status"], task["priority"], task["agentId"]) == ("todo", "P0", "claw-1")
    assert task["sessionKey"] == "agent:claw-1:main"
    assert task["assignedTo"] == member.user["id"]
    assert task["dueDate"] == "2026-03-31T23:59:59.000Z"  # a plain date means the end of that day, UTC
    assert (task["cost"], task["runtime"], task["model"]) == (1.25, 42_000, "opus")


async def test_lines_changed_total_is_computed(member):
    task = await create(member, linesChanged={"added": 30, "removed": 12})
    assert task["linesChanged"] == {"added": 30, "removed": 12, "total": 42}
    only_added = await create(member, linesChanged={"added": 5})
    assert only_added["linesChanged"] == {"added": 5, "removed": None, "total": 5}


async def test_created_by_in_the_body_is_refused(member):
    response = await member.post("/api/tasks", json={"title": "Mine", "createdBy": "someone-else"})
    assert response.status_code == 400
    body = await response.get_json()
    assert body["field"] == "createdBy" and "cannot be set by clients" in body["error"]
    assert await total(member) == 0


async def test_read_only_fields_on_patch_say_they_cannot_be_set(member):
    task = await create(member)
    for field, value in (("createdBy", "someone"), ("id", "x"), ("createdAt", now_iso()),
                         ("completedAt", now_iso())):
        response = await patch(member, task["id"], **{field: value})
        assert response.status_code == 400, field
        body = await response.get_json()
        assert body["field"] == field and "cannot be set by clients" in body["error"]
    assert await fetch(member, task["id"]) == task


# --- validation -------------------------------------------------------------------------------------

INVALID_BODIES = [
    pytest.param({"description": "no title"}, "title", id="missing-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"title": 42}, "title", id="title-not-a-string"),
    pytest.param({"title": "x" * 501}, "title", id="title-501-chars"),
    pytest.param({"title": "t", "status": "doing"}, "status", id="unknown-status"),
    pytest.param({"title": "t", "priority": "P9"}, "priority", id="unknown-priority"),
    pytest.param({"title": "t", "colour": "red"}, "colour", id="unknown-field"),
    pytest.param({"title": "t", "cost": "12"}, "cost", id="cost-string"),
    pytest.param({"title": "t", "cost": -1}, "cost", id="cost-negative"),
    pytest.param({"title": "t", "cost": True}, "cost", id="cost-bool"),
    pytest.param({"title": "t", "runtime": 1.5}, "runtime", id="runtime-fraction"),
    pytest.param({"title": "t", "linesChanged": "10"}, "linesChanged", id="lines-not-object"),
    pytest.param({"title": "t", "linesChanged": {"added": -1}}, "linesChanged.added", id="lines-negative"),
    pytest.param({"title": "t", "linesChanged": {"foo": 1}}, "linesChanged", id="lines-unknown-key"),
    pytest.param({"title": "t", "dueDate": "tomorrow"}, "dueDate", id="due-date-not-iso"),
    pytest.param({"title": "t", "assignedTo": "no-such-user"}, "assignedTo", id="unknown-assignee"),
    pytest.param({"title": "t", "projectId": "no-such-project"}, "projectId", id="unknown-project"),
    pytest.param({"title": "t", "description": "x" * 20_001}, "description", id="description-20001-chars"),
    pytest.param({"title": "t", "id": "my-own-id"}, "id", id="id-in-body"),
    pytest.param({"title": "t", "createdAt": "2020-01-01T00:00:00.000Z"}, "createdAt", id="createdAt-in-body"),
]


@pytest.mark.parametrize("body, field", INVALID_BODIES)
async def test_invalid_create_is_refused_naming_the_field(member, db, body, field):
    response = await member.post("/api/tasks", json=body)
    assert response.status_code == 400
    error = await response.get_json()
    assert error["field"] == field
    assert field.split(".")[0] in error["error"]
    assert await total(member) == 0
    assert await audit.search(db, action="task.created") == []


@pytest.mark.parametrize("body, field", [b for b in INVALID_BODIES if "title" in b.values[0]
                                         and b.values[1] not in ("title", "colour", "id", "createdAt")])
async def test_invalid_patch_is_refused_and_changes_nothing(member, db, body, field):
    task = await create(member, title="Original")
    body = {k: v for k, v in body.items() if k != "title"}
    response = await patch(member, task["id"], **body)
    assert response.status_code == 400
    assert (await response.get_json())["field"] == field
    assert await fetch(member, task["id"]) == task
    assert await actions(db, task["id"]) == ["task.created"]


async def test_title_boundaries(member):
    assert (await create(member, title="x" * 500))["title"] == "x" * 500
    assert (await create(member, description="d" * 20_000))["description"] == "d" * 20_000


async def test_malformed_json_is_refused(member):
    response = await member.post("/api/tasks", data='{"title": "oops",', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "Malformed JSON" in (await response.get_json())["error"]
    assert await total(member) == 0


async def test_a_json_array_is_refused(member):
    response = await member.post("/api/tasks", json=[{"title": "one"}, {"title": "two"}])
    assert response.status_code == 400
    assert "JSON object" in (await response.get_json())["error"]
    assert await total(member) == 0


async def test_form_bodies_are_unsupported(member):
    response = await member.post("/api/tasks", form={"title": "From a form"})
    assert response.status_code == 415
    assert await total(member) == 0


async def test_inactive_user_cannot_be_assigned(member, meg, db):
    await db.changed("users.set_active", id=meg.user["id"], active=False, now=now_iso())
    response = await member.post("/api/tasks", json={"title": "t", "assignedTo": meg.user["id"]})
    assert response.status_code == 400 and (await response.get_json())["field"] == "assignedTo"


@pytest.mark.parametrize("runtime", [10**400, 10**19], ids=["beyond-float", "beyond-bigint"])
async def test_huge_integers_are_a_validation_error(member, runtime):
    """Regression: these were a 500 (float overflow in math.isfinite; BIGINT overflow)."""
    response = await member.post("/api/tasks", json={"title": "t", "runtime": runtime})
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "runtime"


async def test_line_counts_beyond_32_bits_are_a_validation_error(member):
    """Regression: lines_* are 32-bit INTEGER on PostgreSQL (was a 500 there, stored on SQLite)."""
    response = await member.post("/api/tasks", json={"title": "t", "linesChanged": {"added": 3_000_000_000}})
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "linesChanged.added"


async def test_computed_line_total_beyond_32_bits_is_a_validation_error(member):
    response = await member.post("/api/tasks", json={"title": "t",
                                                     "linesChanged": {"added": 2**31 - 1, "removed": 1}})
    assert response.status_code == 400
    assert (await response.get_json())["field"].startswith("linesChanged")


@pytest.mark.parametrize("due", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
async def test_out_of_range_due_date_is_a_validation_error(member, due):
    """Regression: converting these to UTC overflows the calendar (was a 500)."""
    response = await member.post("/api/tasks", json={"title": "t", "dueDate": due})
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "dueDate"


async def test_nul_characters_in_text_are_a_validation_error(member):
    """Regression: PostgreSQL cannot store NUL in text (was a 500 there, stored on SQLite)."""
    response = await member.post("/api/tasks", json={"title": "bad\x00title"})
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "title"
    task = await create(member)
    response = await patch(member, task["id"], description="bad\x00description")
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "description"
    assert await total(member) == 1


async def test_nul_characters_in_filters_and_ids_are_not_server_errors(member):
    """Regression: a NUL in a filter or task id reached PostgreSQL as a parameter (500)."""
    for query in ("?q=a%00b", "?agentId=a%00b", "?assignee=a%00b"):
        response = await member.get(f"/api/tasks{query}")
        assert response.status_code == 400, query
    response = await member.get("/api/tasks/a%00b")
    assert response.status_code == 400


# --- roles and ownership (DESIGN §4) ----------------------------------------------------------------

async def test_viewer_cannot_create(viewer):
    response = await viewer.post("/api/tasks", json={"title": "Not allowed"})
    assert response.status_code == 403
    body = await response.get_json()
    assert body["code"] == "FORBIDDEN" and "viewer" in body["error"]
    assert await total(viewer) == 0


async def test_viewer_can_read_but_not_change(member, viewer, db):
    task = await create(member)
    assert await fetch(viewer, task["id"]) == task
    assert (await patch(viewer, task["id"], title="Hijacked")).status_code == 403
    assert (await viewer.delete(f"/api/tasks/{task['id']}")).status_code == 403
    assert await fetch(member, task["id"]) == task
    assert await actions(db, task["id"]) == ["task.created"]


async def test_member_changes_and_deletes_own_task(member):
    task = await create(member)
    assert (await patched(member, task["id"], title="Renamed"))["title"] == "Renamed"
    assert (await member.delete(f"/api/tasks/{task['id']}")).status_code == 200


async def test_member_changes_and_deletes_a_task_assigned_to_them(admin, member):
    task = await create(admin, assignedTo=member.user["id"])
    assert (await patched(member, task["id"], status="in-progress"))["status"] == "in-progress"
    assert (await member.delete(f"/api/tasks/{task['id']}")).status_code == 200


async def test_member_cannot_change_another_members_task(member, meg):
    task = await create(member)
    for response in (await patch(meg, task["id"], title="Mine now"),
                     await meg.delete(f"/api/tasks/{task['id']}")):
        assert response.status_code == 403
        body = await response.get_json()
        assert body["code"] == "FORBIDDEN" and "only change tasks you created" in body["error"]
    assert await fetch(member, task["id"]) == task


async def test_admin_changes_and_deletes_anything(admin, member):
    task = await create(member)
    assert (await patched(admin, task["id"], priority="P0"))["priority"] == "P0"
    assert (await admin.delete(f"/api/tasks/{task['id']}")).status_code == 200


async def test_member_token_edits_only_what_it_created(app, api_token, db, member):
    agent = Agent(app, await api_token("member", name="claw-agent"))
    response = await agent.post("/api/tasks", json={"title": "Agent work"})
    assert response.status_code == 201
    task = await response.get_json()
    assert task["createdByToken"] == await token_id(db, "claw-agent")
    assert task["createdBy"] is None
    response = await agent.patch(f"/api/tasks/{task['id']}", json={"status": "todo"})
    assert response.status_code == 200 and (await response.get_json())["status"] == "todo"

    human_task = await create(member)
    response = await agent.patch(f"/api/tasks/{human_task['id']}", json={"status": "todo"})
    assert response.status_code == 403
    assert (await agent.delete(f"/api/tasks/{human_task['id']}")).status_code == 403
    # and the human member does not own the token's task either
    assert (await patch(member, task["id"], title="Mine")).status_code == 403


async def test_viewer_token_cannot_create(app, api_token):
    agent = Agent(app, await api_token("viewer"))
    response = await agent.post("/api/tasks", json={"title": "Nope"})
    assert response.status_code == 403
    assert (await agent.get("/api/tasks")).status_code == 200


async def test_unauthenticated_calls_get_401(app, member):
    task = await create(member)
    anonymous = app.test_client()
    assert (await anonymous.get("/api/tasks")).status_code == 401
    assert (await anonymous.get(f"/api/tasks/{task['id']}")).status_code == 401


# --- read and list ----------------------------------------------------------------------------------

async def test_get_unknown_task_is_404(member):
    response = await member.get("/api/tasks/no-such-task")
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "Task not found"


@pytest.fixture
async def board(admin, member):
    """Four tasks spread over statuses, agents, assignees and searchable text."""
    await create(admin, title="Fix login bug", status="todo", agentId="claw-1", assignedTo=member.user["id"])
    await tick()
    await create(admin, title="Write docs", description="Explain the LOGIN flow", status="todo", agentId="claw-2")
    await tick()
    await create(admin, title="Reach 100% coverage", status="in-progress", agentId="claw-1",
                 assignedTo=admin.user["id"])
    await tick()
    await create(admin, title="Rename snake_case helpers")


@pytest.mark.parametrize("query, expected", [
    ("", {"Fix login bug", "Write docs", "Reach 100% coverage", "Rename snake_case helpers"}),
    ("?status=todo", {"Fix login bug", "Write docs"}),
    ("?agentId=claw-1", {"Fix login bug", "Reach 100% coverage"}),
    ("?status=todo&agentId=claw-1", {"Fix login bug"}),
    ("?assignee=unassigned", {"Write docs", "Rename snake_case helpers"}),
    ("?q=login", {"Fix login bug", "Write docs"}),  # title or description, any case
    ("?q=LOGIN&status=todo&assignee=unassigned", {"Write docs"}),
    ("?q=%25", {"Reach 100% coverage"}),  # "%" is literal, not a wildcard
    ("?q=_", {"Rename snake_case helpers"}),  # so is "_"
    ("?q=nothing-like-this", set()),
])
async def test_list_filters_combine(member, board, query, expected):
    body = await listing(member, query)
    assert {task["title"] for task in body["tasks"]} == expected
    assert body["total"] == body["count"] == len(expected)


async def test_assignee_filter_by_id_and_me(admin, member, board):
    assert await titles(member, f"?assignee={member.user['id']}") == {"Fix login bug"}
    assert await titles(member, "?assignee=me") == {"Fix login bug"}
    assert await titles(admin, "?assignee=me") == {"Reach 100% coverage"}
    assert await titles(admin, "?assignee=me&status=todo") == set()


async def test_invalid_status_filter_is_400(member):
    response = await member.get("/api/tasks?status=doing")
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "status"


async def test_paging_newest_first_with_total(member):
    for n in range(5):
        await create(member, title=f"Task {n}")
        await tick()
    first = await listing(member, "?limit=2")
    assert [t["title"] for t in first["tasks"]] == ["Task 4", "Task 3"]
    assert (first["count"], first["total"], first["limit"], first["offset"]) == (2, 5, 2, 0)
    last = await listing(member, "?limit=2&offset=4")
    assert [t["title"] for t in last["tasks"]] == ["Task 0"]
    assert (last["count"], last["total"]) == (1, 5)
    everything = await listing(member)
    assert [t["title"] for t in everything["tasks"]] == [f"Task {n}" for n in (4, 3, 2, 1, 0)]
    assert everything["limit"] == 200


@pytest.mark.parametrize("query, field", [("?limit=0", "limit"), ("?limit=1001", "limit"), ("?limit=x", "limit"),
                                          ("?limit=-1", "limit"), ("?offset=-1", "offset"),
                                          ("?offset=x", "offset")])
async def test_bad_paging_is_400(member, query, field):
    response = await member.get(f"/api/tasks{query}")
    assert response.status_code == 400
    assert (await response.get_json())["field"] == field


# --- PATCH semantics --------------------------------------------------------------------------------

async def test_partial_update_keeps_other_fields(member):
    task = await create(member, description="Keep me", priority="P1", agentId="claw-1")
    updated = await patched(member, task["id"], title="New title")
    assert updated["title"] == "New title"
    assert {k: updated[k] for k in ("description", "priority", "agentId", "status", "createdBy", "createdAt")} == \
           {k: task[k] for k in ("description", "priority", "agentId", "status", "createdBy", "createdAt")}
    assert updated["version"] == 2
    assert updated["updatedAt"] >= task["updatedAt"]


async def test_null_clears_optional_fields(admin, member):
    task = await create(member, description="Some text", agentId="claw-1", assignedTo=admin.user["id"],
                        dueDate="2026-03-31")
    cleared = await patched(member, task["id"], description=None, agentId=None, assignedTo=None, dueDate=None)
    assert {k: cleared[k] for k in ("description", "agentId", "assignedTo", "dueDate")} == \
           {"description": None, "agentId": None, "assignedTo": None, "dueDate": None}
    assert cleared["title"] == task["title"]


async def test_title_cannot_be_cleared(member):
    task = await create(member)
    response = await patch(member, task["id"], title=None)
    assert response.status_code == 400 and (await response.get_json())["field"] == "title"


async def test_version_counts_real_changes_only(member):
    task = await create(member, title="Same", priority="P1")
    assert (await patched(member, task["id"], priority="P0"))["version"] == 2
    assert (await patched(member, task["id"], status="todo"))["version"] == 3
    unchanged = await patched(member, task["id"], title="Same", priority="P0", status="todo")
    assert unchanged["version"] == 3
    assert unchanged == await fetch(member, task["id"])


async def test_no_op_patch_changes_nothing(member, db):
    task = await create(member, title="Same", dueDate="2026-03-31")
    same = await patched(member, task["id"], title="  Same  ", dueDate="2026-03-31")
    assert same == task  # same version and updatedAt
    assert await actions(db, task["id"]) == ["task.created"]


async def test_stale_version_is_a_conflict(member, admin):
    task = await create(member, title="Original")
    await patched(admin, task["id"], title="Changed by admin")
    current = await fetch(member, task["id"])
    response = await patch(member, task["id"], title="My edit", version=1)
    assert response.status_code == 409
    body = await response.get_json()
    assert body["code"] == "VERSION_CONFLICT"
    assert body["task"] == current
    assert await fetch(member, task["id"]) == current
    # with the version just read, the edit goes through
    updated = await patched(member, task["id"], title="My edit", version=current["version"])
    assert updated["title"] == "My edit" and updated["version"] == current["version"] + 1


async def test_version_must_be_a_whole_number(member):
    task = await create(member)
    for version in ("1", 1.5, True):
        response = await patch(member, task["id"], title="x", version=version)
        assert response.status_code == 400 and (await response.get_json())["field"] == "version"


async def test_concurrent_edits_with_the_same_version_conflict(member, admin):
    """The conditional write makes the version check atomic: of two edits from version 1, exactly one wins."""
    task = await create(member)
    first, second = await asyncio.gather(patch(member, task["id"], title="Mel's", version=1),
                                         patch(admin, task["id"], title="Ada's", version=1))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert (await fetch(member, task["id"]))["version"] == 2


async def test_concurrent_edits_without_a_version_all_apply(member):
    """Edits of different fields, sent at once without a version: none is lost, each is one version."""
    task = await create(member)
    fields = [("title", "Renamed"), ("priority", "P0"), ("description", "Now described"), ("agentId", "qa")]
    responses = await asyncio.gather(*(patch(member, task["id"], **{name: value}) for name, value in fields))
    assert [r.status_code for r in responses] == [200] * len(fields)
    final = await fetch(member, task["id"])
    assert {name: final[name] for name, _ in fields} == dict(fields)
    assert final["version"] == 1 + len(fields)


@pytest.mark.skipif(BACKEND != "postgres", reason="on SQLite a transaction holds the write lock from its first read")
async def test_a_write_that_lost_the_race_starts_over_on_the_new_row(member, db, monkeypatch):
    """Another writer commits between this PATCH's read and its write: the PATCH reads again and applies
    its change on top; nothing of the other write is lost."""
    from clawtrol.tasks import service
    task = await create(member)
    real_get = service.get
    interfered = []

    async def get_then_interfere(database, task_id):
        row = await real_get(database, task_id)
        if not interfered:
            interfered.append(True)
            other = await asyncpg.connect(str(db.url).replace("postgresql+asyncpg", "postgresql"))
            try:
                await other.execute("UPDATE tasks SET priority = 'P0', version = version + 1 WHERE id = $1",
                                    task_id)
            finally:
                await other.close()
        return row
    monkeypatch.setattr(service, "get", get_then_interfere)
    updated = await patched(member, task["id"], title="Mine")
    assert len(interfered) == 1
    assert updated["title"] == "Mine" and updated["priority"] == "P0" and updated["version"] == 3
    assert await actions(db, task["id"]) == ["task.created", "task.updated"]


async def test_empty_patch_is_refused(member):
    task = await create(member)
    response = await patch(member, task["id"])
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "No updates provided"


async def test_patch_unknown_task_is_404(member):
    response = await patch(member, "no-such-task", title="x")
    assert response.status_code == 404


async def test_session_key_is_unique(admin):
    await create(admin, title="First", sessionKey="agent:claw:main")
    response = await admin.post("/api/tasks", json={"title": "Second", "sessionKey": "agent:claw:main"})
    assert response.status_code == 409
    assert (await response.get_json())["field"] == "sessionKey"
    assert await total(admin) == 1

    other = await create(admin, title="Other", sessionKey="agent:claw:other")
    response = await patch(admin, other["id"], sessionKey="agent:claw:main")
    assert response.status_code == 409
    assert (await response.get_json())["field"] == "sessionKey"
    assert await fetch(admin, other["id"]) == other


# --- the review gate --------------------------------------------------------------------------------

async def test_review_needs_the_checklist(member, db):
    task = await create(member, status="in-progress")
    response = await patch(member, task["id"], status="review")
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "MISSING_REVIEW_CHECKLIST" and body["field"] == "handoffNotes"
    assert body["missing"] == ["Files changed", "How tested", "Edge cases", "Rollback", "Commit hash"]
    partial = await patch(member, task["id"], status="review", handoffNotes="Files changed: a.py\nHow tested: no")
    assert (await partial.get_json())["missing"] == ["Edge cases", "Rollback", "Commit hash"]
    assert await fetch(member, task["id"]) == task


async def test_review_needs_a_commit_hash(member):
    task = await create(member, status="in-progress")
    response = await patch(member, task["id"], status="review", handoffNotes=NOTES_WITHOUT_HASH)
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "MISSING_COMMIT_HASH"
    assert await fetch(member, task["id"]) == task


async def test_review_takes_the_hash_from_the_notes(member):
    task = await create(member, status="in-progress")
    updated = await patched(member, task["id"], status="review", handoffNotes=NOTES_WITH_HASH)
    assert updated["status"] == "review" and updated["commitHash"] == "abc1234"


async def test_review_takes_the_hash_from_the_body(member):
    task = await create(member, status="in-progress")
    updated = await patched(member, task["id"], status="review", handoffNotes=NOTES_WITHOUT_HASH,
                            commitHash="def5678")
    assert updated["status"] == "review" and updated["commitHash"] == "def5678"


async def test_review_accepts_no_commit(member):
    task = await create(member, status="in-progress")
    updated = await patched(member, task["id"], status="review", handoffNotes=NOTES_NO_COMMIT)
    assert updated["status"] == "review" and updated["commitHash"] is None


async def test_creating_in_review_is_gated_the_same_way(member):
    response = await member.post("/api/tasks", json={"title": "Straight to review", "status": "review"})
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "MISSING_REVIEW_CHECKLIST"
    response = await member.post("/api/tasks", json={"title": "t", "status": "review",
                                                     "handoffNotes": NOTES_WITHOUT_HASH})
    assert (await response.get_json())["code"] == "MISSING_COMMIT_HASH"
    assert await total(member) == 0
    task = await create(member, status="review", handoffNotes=NOTES_WITH_HASH)
    assert task["status"] == "review" and task["commitHash"] == "abc1234"


# --- done enrichment --------------------------------------------------------------------------------

async def test_done_estimates_from_lines_changed(member, db):
    await set_hourly_rate(db, "120")
    task = await create(member, status="in-progress")
    done = await patched(member, task["id"], status="done", linesChanged={"added": 30, "removed": 10})
    assert done["completedAt"] is not None and ISO_UTC.match(done["completedAt"])
    assert done["estimatedHumanMinutes"] == 120.0  # 40 lines × 3 minutes
    assert done["humanCost"] == 240.0  # 2 hours at $120/h


async def test_done_estimates_from_runtime_without_lines(member, db):
    await set_hourly_rate(db, "120")
    task = await create(member, runtime=600_000)
    done = await patched(member, task["id"], status="done")
    assert done["estimatedHumanMinutes"] == 100.0  # ceil(600 s × 10 / 60)
    assert done["humanCost"] == 200.0


async def test_done_uses_the_default_rate_without_a_setting(member):
    task = await create(member, linesChanged={"added": 20})
    done = await patched(member, task["id"], status="done")
    assert (done["estimatedHumanMinutes"], done["humanCost"]) == (60.0, 100.0)


async def test_done_keeps_an_explicit_human_cost(member, db):
    await set_hourly_rate(db, "120")
    task = await create(member, linesChanged={"added": 30, "removed": 10})
    done = await patched(member, task["id"], status="done", humanCost=55.5)
    assert done["humanCost"] == 55.5


async def test_done_without_lines_or_runtime_has_no_estimate(member):
    task = await create(member)
    done = await patched(member, task["id"], status="done")
    assert done["completedAt"] is not None
    assert done["estimatedHumanMinutes"] is None and done["humanCost"] is None


async def test_created_done_is_enriched_too(member):
    task = await create(member, status="done", linesChanged={"added": 10})
    assert task["completedAt"] is not None and task["estimatedHumanMinutes"] == 30.0


async def test_returning_to_done_stamps_completion_again(member):
    task = await create(member)
    done = await patched(member, task["id"], status="done")
    await tick()
    reopened = await patched(member, task["id"], status="todo")
    await tick()
    again = await patched(member, task["id"], status="done")
    assert again["status"] == "done" and again["completedAt"] is not None
    assert again["completedAt"] > done["completedAt"]
    assert reopened["version"] < again["version"]


# --- audit trail ------------------------------------------------------------------------------------

async def test_audit_trail_of_a_task(admin, member, db):
    task = await create(member, title="Audited", priority="P1")
    [created] = await task_audit(db, task["id"])
    assert created["action"] == "task.created"
    assert created["details"] == {"title": "Audited", "priority": "P1", "status": "backlog", "projectId": None}
    assert (created["actor_kind"], created["user_id"], created["token_id"]) == ("user", member.user["id"], None)
    assert created["actor_label"] == "mel"

    await patched(member, task["id"], status="todo")
    await patched(member, task["id"], assignedTo=admin.user["id"])
    await patched(admin, task["id"], description="More", priority="P0", linesChanged={"added": 3})
    response = await admin.delete(f"/api/tasks/{task['id']}")
    assert response.status_code == 200

    entries = await task_audit(db, task["id"])
    assert [e["action"] for e in entries] == ["task.created", "task.status_changed", "task.assigned",
                                              "task.updated", "task.deleted"]
    _, status, assigned, updated, deleted = entries
    assert status["details"]["from"] == "backlog" and status["details"]["to"] == "todo"
    assert assigned["details"]["from"] is None and assigned["details"]["to"] == admin.user["id"]
    assert updated["details"]["fields"] == ["description", "linesChanged", "priority"]
    assert updated["user_id"] == admin.user["id"]
    assert deleted["details"]["title"] == "Audited"


async def test_creating_assigned_audits_the_assignment(admin, member, db):
    task = await create(admin, assignedTo=member.user["id"])
    assert await actions(db, task["id"]) == ["task.created", "task.assigned"]
    assigned = (await task_audit(db, task["id"]))[1]
    assert (assigned["details"]["from"], assigned["details"]["to"]) == (None, member.user["id"])


async def test_token_actions_are_audited_as_the_token(app, api_token, db):
    agent = Agent(app, await api_token("member", name="claw-agent"))
    task = await (await agent.post("/api/tasks", json={"title": "By token"})).get_json()
    await agent.patch(f"/api/tasks/{task['id']}", json={"status": "todo"})
    expected_token = await token_id(db, "claw-agent")
    entries = await task_audit(db, task["id"])
    assert [e["action"] for e in entries] == ["task.created", "task.status_changed"]
    for entry in entries:
        assert (entry["actor_kind"], entry["token_id"], entry["user_id"]) == ("token", expected_token, None)
        assert entry["actor_label"] == "claw-agent"


async def test_refused_changes_write_no_audit(member, meg, viewer, db):
    task = await create(member, status="in-progress")
    await patched(member, task["id"], title="v2")
    before = await actions(db, task["id"])
    refused = [
        await patch(member, task["id"], status="review"),  # 400: review gate
        await patch(member, task["id"], cost=-1),  # 400: validation
        await patch(meg, task["id"], title="not mine"),  # 403
        await patch(viewer, task["id"], title="viewer"),  # 403
        await patch(member, task["id"], title="stale", version=1),  # 409
        await meg.delete(f"/api/tasks/{task['id']}"),  # 403
    ]
    assert [r.status_code for r in refused] == [400, 400, 403, 403, 409, 403]
    assert await actions(db, task["id"]) == before


# --- delete -----------------------------------------------------------------------------------------

async def test_delete_then_gone(member):
    task = await create(member)
    response = await member.delete(f"/api/tasks/{task['id']}")
    assert response.status_code == 200
    assert await response.get_json() == {"success": True, "id": task["id"]}
    assert (await member.get(f"/api/tasks/{task['id']}")).status_code == 404
    assert (await member.delete(f"/api/tasks/{task['id']}")).status_code == 404
    assert await total(member) == 0


# --- data is returned verbatim ----------------------------------------------------------------------

async def test_markup_is_stored_and_returned_verbatim(member):
    """The JSON API does not mangle data; escaping is the board's job."""
    payload = "<img src=x onerror=alert(1)>"
    task = await create(member, title=payload, description="<script>alert('x')</script> & more")
    assert task["title"] == payload
    fetched = await fetch(member, task["id"])
    assert fetched["title"] == payload
    assert fetched["description"] == "<script>alert('x')</script> & more"


async def test_the_patch_answer_is_the_stored_task(admin, member):
    """PATCH answers with the row as stored (built from the change, or read again when a joined name changed)."""
    task = await create(admin, title="Round trip", agentId="dev")
    for change in ({"priority": "P0", "cost": 1.5, "runtime": 1200, "dueDate": "2026-05-01",
                    "linesChanged": {"added": 3, "removed": 1}, "tokens": {"input": 5, "output": 7, "total": 12}},
                   {"assignedTo": member.user["id"]}, {"description": None, "model": "opus"}):
        response = await patch(admin, task["id"], **change)
        assert response.status_code == 200
        assert await response.get_json() == await fetch(admin, task["id"])
