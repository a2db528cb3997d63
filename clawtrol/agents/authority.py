"""Who holds authority over an agent session: deciding its exec approvals and messaging it (DESIGN §4).

Only facts the server recorded grant it: the admin role, and the start work record (started_sessions)
saying who started the session through the app and in which project. A task's `sessionKey` shows which
session works on a task, but it is a field clients can write, so it never grants anything.

- admins: every session, also ones nobody started through the app;
- members: sessions they started through start work, and sessions started through start work on a task of
  a project they own (the project the task was in when work started);
- member API tokens: may message sessions they started themselves (an agent orchestrating its helpers), but
  never decide approvals: an agent could otherwise approve its own helpers' commands. A person decides;
- viewers: none.

`start` is a row with the started_* columns of `agents.session_start` or the `approval_rows` view (or None
when nobody started the session through the app).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auth.principal import Principal


@dataclass(frozen=True)
class Authority:
    allowed: bool
    reason: str  # why, in a sentence a person can read on the page or in a 403

    def to_json(self, key: str) -> dict:
        return {key: self.allowed, "reason": self.reason}


def started_by(start: dict | None) -> dict | None:
    """The start work record as the API shows it."""
    if not start or not start.get("started_by_label"):
        return None
    return {"label": start["started_by_label"], "userId": start.get("started_by"),
            "tokenId": start.get("started_by_token"), "at": start.get("started_at"),
            "taskId": start.get("started_task_id"), "projectId": start.get("started_project_id"),
            "projectName": start.get("started_project_name")}


def _origin(start: dict) -> str:
    where = f" in project {start['started_project_name']}" if start.get("started_project_name") else ""
    return f"started by {start['started_by_label']} via start work{where}"


def over_session(principal: Principal | None, start: dict | None, *, deciding: bool) -> Authority:
    """May `principal` decide this session's approvals (deciding=True) or message it (deciding=False)?"""
    act = "decide this session's approvals" if deciding else "message this session"
    if principal is None:
        return Authority(False, "Not signed in.")
    if not principal.has_role("member"):
        return Authority(False, f"Your role ({principal.role}) cannot {act}.")
    if principal.is_admin:
        return Authority(True, "You are an admin" + (f"; {_origin(start)}." if start and start.get("started_by_label")
                                                      else "."))
    if not start or not start.get("started_by_label"):
        return Authority(False, f"Nobody started this session through start work, so only an admin can {act}.")
    if principal.kind == "token":
        if deciding:
            return Authority(False, "API tokens with the member role cannot decide approvals: a person must, "
                                    "or an admin.")
        if start.get("started_by_token") == principal.id:
            return Authority(True, "This token started the session via start work.")
    elif start.get("started_by") == principal.id:
        return Authority(True, f"You started this session via start work on {start['started_at'][:16]} UTC.")
    elif start.get("started_project_owner_id") == principal.id:
        return Authority(True, f"You own project {start.get('started_project_name')}, where "
                               f"{start['started_by_label']} started this session via start work.")
    owner = "the owner of that project, " if start.get("started_project_id") else ""
    return Authority(False, f"This session was {_origin(start)}; only they, {owner}or an admin can {act}.")
