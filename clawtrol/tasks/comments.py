"""Comment threads on tasks: members and up write; authors (or admins) edit and delete."""

from __future__ import annotations

from ..audit import record
from ..auth.principal import Principal
from ..clock import new_id, now_iso
from ..db import Database
from ..errors import Forbidden, InvalidInput, NotFound
from ..services import Call
from . import access

MAX_LENGTH = 10_000


def to_json(comment: dict) -> dict:
    return {
        "id": comment["id"], "taskId": comment["task_id"], "userId": comment["user_id"],
        "tokenId": comment["token_id"], "userName": comment["user_name"], "userAvatar": comment["user_avatar"],
        "content": comment["content"], "createdAt": comment["created_at"], "updatedAt": comment["updated_at"],
    }


def validate_content(content: object) -> str:
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput("content: required, a non-blank string", field="content")
    if "\x00" in content:
        raise InvalidInput("content: must not contain NUL characters", field="content")
    if len(content) > MAX_LENGTH:
        raise InvalidInput(f"content: at most {MAX_LENGTH} characters", field="content")
    return content.strip()


async def list_for_task(db: Database, task_id: str) -> list[dict]:
    await _task(db, task_id)
    return await db.all("comments.list_for_task", task_id=task_id)


async def _get(db: Database, task_id: str, comment_id: str) -> dict:
    comment = await db.one("comments.get", id=comment_id, task_id=task_id)
    if comment is None:
        raise NotFound("Comment not found")
    return comment


async def _task(db: Database, task_id: str) -> dict:
    """The task's id and title; 404 if there is no such task."""
    task = await db.one("tasks.title", id=task_id)
    if task is None:
        raise NotFound("Task not found")
    return task


def _require_author(principal: Principal, comment: dict) -> None:
    if not access.can_moderate_comment(principal, comment):
        raise Forbidden("Only the comment's author or an admin can change it.", code="FORBIDDEN")


async def create(call: Call, task_id: str, content: object) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    access.require_create(principal)
    text = validate_content(content)
    comment_id = new_id()
    async with db.transaction():
        comment = await db.one("comments.insert", id=comment_id, task_id=task_id, user_id=principal.user_id,
                               token_id=principal.token_id, user_name=principal.display_name,
                               user_avatar=principal.avatar_url, content=text, now=now_iso())
        if comment is None:
            raise NotFound("Task not found")
        title = comment.pop("task_title")
        await record(db, actor, "comment.created", "task", task_id, {"commentId": comment_id, "title": title})
    await call.hub.publish("comment.created", {"taskId": task_id, "comment": to_json(comment), "title": title,
                                          "actor": actor.label, "actorId": principal.id})
    return comment


async def update(call: Call, task_id: str, comment_id: str, content: object) -> dict:
    db, principal, actor = call.db, call.principal, call.actor
    text = validate_content(content)
    async with db.transaction():
        comment = await _get(db, task_id, comment_id)
        _require_author(principal, comment)
        await db.changed("comments.update", id=comment_id, task_id=task_id, content=text, now=now_iso())
        await record(db, actor, "comment.updated", "task", task_id, {"commentId": comment_id})
    comment = await _get(db, task_id, comment_id)
    await call.hub.publish("comment.updated", {"taskId": task_id, "comment": to_json(comment), "actor": actor.label,
                                          "actorId": principal.id})
    return comment


async def delete(call: Call, task_id: str, comment_id: str) -> None:
    db, principal, actor = call.db, call.principal, call.actor
    async with db.transaction():
        comment = await _get(db, task_id, comment_id)
        _require_author(principal, comment)
        await db.changed("comments.delete", id=comment_id, task_id=task_id)
        await record(db, actor, "comment.deleted", "task", task_id, {"commentId": comment_id})
    await call.hub.publish("comment.deleted", {"taskId": task_id, "commentId": comment_id, "actor": actor.label,
                                          "actorId": principal.id})
