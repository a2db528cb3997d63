"""Who may do what to a task (DESIGN §4)."""

from __future__ import annotations

from ..auth.principal import Principal
from ..errors import Forbidden


def can_create(principal: Principal | None) -> bool:
    return principal is not None and principal.has_role("member")


def can_edit(principal: Principal | None, task: dict) -> bool:
    """Admins: every task. Members: tasks they created or are assigned to, or in a project they own
    (a member token: tasks it created). Viewers: none."""
    if principal is None or not principal.has_role("member"):
        return False
    if principal.is_admin:
        return True
    if principal.kind == "token":
        return task.get("created_by_token") == principal.id
    return principal.id in (task.get("created_by"), task.get("assigned_to"), task.get("project_owner_id"))


def require_create(principal: Principal) -> None:
    if not can_create(principal):
        raise Forbidden(f"Your role ({principal.role}) cannot create tasks or comments.", code="FORBIDDEN")


def require_edit(principal: Principal, task: dict) -> None:
    if not can_edit(principal, task):
        if principal.has_role("member"):
            message = "You can only change tasks you created, are assigned to, or that belong to a project you own."
        else:
            message = f"Your role ({principal.role}) cannot change tasks."
        raise Forbidden(message, code="FORBIDDEN")


def can_moderate_comment(principal: Principal | None, comment: dict) -> bool:
    """Authors edit and delete their own comments; admins any."""
    if principal is None or not principal.has_role("member"):
        return False
    if principal.is_admin:
        return True
    own = comment.get("token_id") if principal.kind == "token" else comment.get("user_id")
    return own == principal.id
