"""Comment threads on tasks (/api/tasks/:id/comments): listing, writing as a user or a token, author-only
edits and deletes (admins any), validation, and the audit trail on the task."""

from __future__ import annotations

import asyncio

import pytest

from clawtrol import audit
from clawtrol.clock import now_iso

from .conftest import Agent, sign_in_as

COMMENT_KEYS = {"id", "taskId", "userId", "tokenId", "userName", "userAvatar", "content", "createdAt", "updatedAt"}


# --- helpers ----------------------------------------------------------------------------------------

async def create_task(client, title: str = "Task") -> dict:
    response = await client.post("/api/tasks", json={"title": title})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


def comments_url(task_id: str, comment_id: str | None = None) -> str:
    return f"/api/tasks/{task_id}/comments" + (f"/{comment_id}" if comment_id else "")


async def comment(client, task_id: str, content: str = "Looks good", **extra) -> dict:
    """POST a comment and insist on 201."""
    response = await client.post(comments_url(task_id), json={"content": content, **extra})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


async def thread(client, task_id: str) -> dict:
    response = await client.get(comments_url(task_id))
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def task_audit(db, task_id: str, prefix: str = "comment.") -> list[dict]:
    """The task's comment audit entries, oldest first."""
    entries = await audit.search(db, entity_type="task", entity_id=task_id)
    return [e for e in reversed(entries) if e["action"].startswith(prefix)]


async def token_id(db, name: str) -> str:
    return next(row["id"] for row in await db.all("tokens.list") if row["name"] == name)


@pytest.fixture
async def task(member) -> dict:
    return await create_task(member, "Discussed task")


@pytest.fixture
async def meg(app, admin):
    """A second member."""
    return await sign_in_as(app, "meg", "member")


# --- list -------------------------------------------------------------------------------------------

async def test_empty_thread(member, task):
    assert await thread(member, task["id"]) == {"comments": [], "count": 0}


async def test_thread_is_oldest_first(member, admin, viewer, task):
    for author, text in ((member, "first"), (admin, "second"), (member, "third")):
        await comment(author, task["id"], text)
        await asyncio.sleep(0.003)  # distinct millisecond timestamps
    body = await thread(viewer, task["id"])
    assert [c["content"] for c in body["comments"]] == ["first", "second", "third"]
    assert body["count"] == 3
    assert [c["userId"] for c in body["comments"]] == [member.user["id"], admin.user["id"], member.user["id"]]


async def test_threads_are_per_task(member, task):
    other = await create_task(member, "Other")
    await comment(member, task["id"], "on the first")
    await comment(member, other["id"], "on the other")
    assert [c["content"] for c in (await thread(member, other["id"]))["comments"]] == ["on the other"]


async def test_unknown_task_has_no_thread(member):
    response = await member.get(comments_url("no-such-task"))
    assert response.status_code == 404
    response = await member.post(comments_url("no-such-task"), json={"content": "hello"})
    assert response.status_code == 404


# --- create -----------------------------------------------------------------------------------------

async def test_create_comment_shape(member, task):
    response = await member.post(comments_url(task["id"]), json={"content": "  Looks good to me  "})
    assert response.status_code == 201
    created = await response.get_json()
    assert set(created) == COMMENT_KEYS
    assert created["taskId"] == task["id"]
    assert created["userId"] == member.user["id"] and created["tokenId"] is None
    assert created["userName"] == member.user["name"] == "Mel"
    assert created["userAvatar"] == member.user["avatar_url"]
    assert created["content"] == "Looks good to me"
    assert created["createdAt"] and created["updatedAt"] is None
    assert (await thread(member, task["id"]))["comments"] == [created]


async def test_user_name_falls_back_to_the_login(app, db, task):
    """A GitHub account without a display name comments under its login, with its avatar."""
    nameless = await sign_in_as(app, "noname", "member")
    await db.changed("users.update_profile", id=nameless.user["id"], login="noname", name=None, email=None,
                     avatar_url="https://avatars.example/noname.png", now=now_iso())
    created = await comment(nameless, task["id"])
    assert created["userName"] == "noname"
    assert created["userAvatar"] == "https://avatars.example/noname.png"


async def test_author_fields_in_the_body_are_ignored(member, admin, task):
    created = await comment(member, task["id"], "mine", userName="Mallory", userId=admin.user["id"],
                            userAvatar="https://evil.example/a.png")
    assert created["userId"] == member.user["id"]
    assert created["userName"] == "Mel"
    assert created["userAvatar"] == member.user["avatar_url"]


async def test_any_member_may_comment_on_any_task(meg, task):
    """Commenting needs the member role, not ownership of the task."""
    created = await comment(meg, task["id"], "drive-by review")
    assert created["userId"] == meg.user["id"]


@pytest.mark.parametrize("body", [
    pytest.param({}, id="missing"),
    pytest.param({"content": ""}, id="empty"),
    pytest.param({"content": "   \n\t "}, id="blank"),
    pytest.param({"content": 42}, id="not-a-string"),
    pytest.param({"content": None}, id="null"),
    pytest.param({"content": "x" * 10_001}, id="too-long"),
    pytest.param({"content": "bad\x00byte"}, id="nul-character"),
])
async def test_invalid_content_is_refused(member, db, task, body):
    response = await member.post(comments_url(task["id"]), json=body)
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "content"
    assert (await thread(member, task["id"]))["count"] == 0
    assert await task_audit(db, task["id"]) == []


async def test_content_at_the_limit_is_accepted(member, task):
    assert len((await comment(member, task["id"], "x" * 10_000))["content"]) == 10_000


async def test_unknown_fields_are_refused(member, task):
    response = await member.post(comments_url(task["id"]), json={"content": "hi", "pinned": True})
    assert response.status_code == 400
    assert (await response.get_json())["field"] == "pinned"


async def test_viewer_cannot_comment(viewer, db, task):
    response = await viewer.post(comments_url(task["id"]), json={"content": "I only read"})
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "FORBIDDEN"
    assert (await thread(viewer, task["id"]))["count"] == 0
    assert await task_audit(db, task["id"]) == []


async def test_viewer_token_cannot_comment(app, api_token, task):
    agent = Agent(app, await api_token("viewer"))
    response = await agent.post(comments_url(task["id"]), json={"content": "beep"})
    assert response.status_code == 403


async def test_token_comment_names_the_token(app, api_token, db, task):
    agent = Agent(app, await api_token("member", name="claw-agent"))
    response = await agent.post(comments_url(task["id"]), json={"content": "Build is green"})
    assert response.status_code == 201
    created = await response.get_json()
    assert created["tokenId"] == await token_id(db, "claw-agent")
    assert created["userId"] is None
    assert created["userName"] == "claw-agent"


async def test_markup_is_returned_verbatim(member, task):
    """The JSON API does not mangle data; escaping is the page's job."""
    payload = "<img src=x onerror=alert(1)> & <b>bold</b>"
    assert (await comment(member, task["id"], payload))["content"] == payload
    assert (await thread(member, task["id"]))["comments"][0]["content"] == payload


# --- edit -------------------------------------------------------------------------------------------

async def test_author_edits_their_comment(member, task):
    created = await comment(member, task["id"], "typo")
    response = await member.patch(comments_url(task["id"], created["id"]), json={"content": "fixed"})
    assert response.status_code == 200
    edited = await response.get_json()
    assert edited["content"] == "fixed"
    assert edited["updatedAt"] is not None and edited["updatedAt"] >= edited["createdAt"]
    assert {k: edited[k] for k in ("id", "userId", "userName", "createdAt")} == \
           {k: created[k] for k in ("id", "userId", "userName", "createdAt")}
    assert (await thread(member, task["id"]))["comments"] == [edited]


async def test_edit_validates_content(member, task):
    created = await comment(member, task["id"], "keep")
    for body in ({"content": "  "}, {"content": "x" * 10_001}, {}):
        response = await member.patch(comments_url(task["id"], created["id"]), json=body)
        assert response.status_code == 400 and (await response.get_json())["field"] == "content"
    response = await member.patch(comments_url(task["id"], created["id"]), json={"content": "x", "userName": "y"})
    assert response.status_code == 400 and (await response.get_json())["field"] == "userName"
    assert (await thread(member, task["id"]))["comments"] == [created]


async def test_others_cannot_edit(member, meg, viewer, task):
    created = await comment(member, task["id"], "original")
    for other in (meg, viewer):
        response = await other.patch(comments_url(task["id"], created["id"]), json={"content": "changed"})
        assert response.status_code == 403
        assert (await response.get_json())["code"] == "FORBIDDEN"
    assert (await thread(member, task["id"]))["comments"] == [created]


async def test_admin_edits_any_comment(admin, member, task):
    created = await comment(member, task["id"], "original")
    response = await admin.patch(comments_url(task["id"], created["id"]), json={"content": "moderated"})
    assert response.status_code == 200
    edited = await response.get_json()
    assert edited["content"] == "moderated" and edited["userId"] == member.user["id"]


async def test_token_owns_its_comments(app, api_token, member, task):
    agent = Agent(app, await api_token("member", name="claw-agent"))
    created = await (await agent.post(comments_url(task["id"]), json={"content": "from the agent"})).get_json()
    response = await agent.patch(comments_url(task["id"], created["id"]), json={"content": "edited by agent"})
    assert response.status_code == 200
    response = await member.patch(comments_url(task["id"], created["id"]), json={"content": "hijack"})
    assert response.status_code == 403
    human = await comment(member, task["id"], "from a human")
    response = await agent.delete(comments_url(task["id"], human["id"]))
    assert response.status_code == 403


# --- delete -----------------------------------------------------------------------------------------

async def test_author_deletes_their_comment(member, task):
    created = await comment(member, task["id"])
    response = await member.delete(comments_url(task["id"], created["id"]))
    assert response.status_code == 200
    assert await response.get_json() == {"success": True}
    assert await thread(member, task["id"]) == {"comments": [], "count": 0}
    assert (await member.delete(comments_url(task["id"], created["id"]))).status_code == 404


async def test_others_cannot_delete_but_admin_can(admin, member, meg, viewer, task):
    created = await comment(member, task["id"])
    for other in (meg, viewer):
        assert (await other.delete(comments_url(task["id"], created["id"]))).status_code == 403
    assert (await thread(member, task["id"]))["count"] == 1
    assert (await admin.delete(comments_url(task["id"], created["id"]))).status_code == 200
    assert (await thread(member, task["id"]))["count"] == 0


async def test_a_comment_is_only_found_under_its_own_task(member, task):
    created = await comment(member, task["id"], "belongs to the first task")
    other = await create_task(member, "Other")
    wrong = comments_url(other["id"], created["id"])
    assert (await member.patch(wrong, json={"content": "moved?"})).status_code == 404
    assert (await member.delete(wrong)).status_code == 404
    assert (await member.patch(comments_url(task["id"], "no-such-comment"), json={"content": "x"})).status_code == 404
    assert (await thread(member, task["id"]))["comments"] == [created]


async def test_deleting_the_task_deletes_its_comments(member, db, task):
    created = await comment(member, task["id"])
    assert (await member.delete(f"/api/tasks/{task['id']}")).status_code == 200
    assert (await member.get(comments_url(task["id"]))).status_code == 404
    assert await db.one("comments.get", id=created["id"], task_id=task["id"]) is None


# --- audit ------------------------------------------------------------------------------------------

async def test_comments_are_audited_on_the_task(member, db, task):
    created = await comment(member, task["id"], "audited")
    await member.patch(comments_url(task["id"], created["id"]), json={"content": "audited again"})
    await member.delete(comments_url(task["id"], created["id"]))
    entries = await task_audit(db, task["id"])
    assert [e["action"] for e in entries] == ["comment.created", "comment.updated", "comment.deleted"]
    for entry in entries:
        assert (entry["entity_type"], entry["entity_id"]) == ("task", task["id"])
        assert entry["details"]["commentId"] == created["id"]
        assert (entry["actor_kind"], entry["user_id"]) == ("user", member.user["id"])
    assert entries[0]["details"]["title"] == "Discussed task"


async def test_token_comments_are_audited_as_the_token(app, api_token, db, task):
    agent = Agent(app, await api_token("member", name="claw-agent"))
    created = await (await agent.post(comments_url(task["id"]), json={"content": "beep"})).get_json()
    [entry] = await task_audit(db, task["id"])
    assert entry["action"] == "comment.created" and entry["details"]["commentId"] == created["id"]
    assert (entry["actor_kind"], entry["token_id"], entry["user_id"]) == \
           ("token", await token_id(db, "claw-agent"), None)


async def test_refused_comment_changes_write_no_audit(member, meg, db, task):
    created = await comment(member, task["id"])
    await meg.patch(comments_url(task["id"], created["id"]), json={"content": "nope"})
    await meg.delete(comments_url(task["id"], created["id"]))
    await member.patch(comments_url(task["id"], created["id"]), json={"content": " "})
    assert [e["action"] for e in await task_audit(db, task["id"])] == ["comment.created"]
