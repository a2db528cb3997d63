"""People: sign-in upserts under the sign-up policy (allow-list, admin logins, default role, the first-admin
rule), roles, review of new accounts, deactivation, with last-admin protection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..audit import Actor, record
from ..clock import new_id, now_iso
from ..db import Database, UniqueViolation
from ..errors import InvalidInput, NotFound
from . import sessions
from .principal import ROLES
from .signup import SignupPolicy

if TYPE_CHECKING:
    from ..services import Call

OPEN_POLICY = SignupPolicy()


@dataclass(frozen=True)
class Identity:
    """Who a sign-in says the person is: a GitHub account, or a local dev account (github_id None)."""

    login: str
    github_id: int | None
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None

    @property
    def method(self) -> str:
        return "github" if self.github_id is not None else "dev"


class SignInRefused(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def to_json(user: dict) -> dict:
    """The original's user shape, plus `active` and timestamps."""
    return {
        "id": user["id"],
        "githubId": user.get("github_id"),
        "githubLogin": user["login"],
        "name": user["name"],
        "email": user["email"],
        "avatarUrl": user["avatar_url"],
        "role": user["role"],
        "active": bool(user["active"]),
        "createdAt": user.get("created_at"),
        "lastLoginAt": user.get("last_login_at"),
    }


async def list_all(db: Database) -> list[dict]:
    return await db.all("users.list")


async def get(db: Database, user_id: str) -> dict:
    """The user, or NotFound."""
    user = await db.one("users.get", id=user_id)
    if user is None:
        raise NotFound("User not found")
    return user


async def _existing(db: Database, identity: Identity) -> dict | None:
    if identity.github_id is not None:
        return await db.one("users.get_by_github_id", github_id=identity.github_id)
    return await db.one("users.get_local", login=identity.login)


async def sign_in(db: Database, identity: Identity, ip: str | None, user_agent: str | None,
                  policy: SignupPolicy = OPEN_POLICY) -> tuple[dict, str]:
    """Upsert the user and open a session; return (user, raw session id). Raises SignInRefused.

    `policy` decides who may sign in and the role of new accounts (the app passes the configured one)."""
    await sessions.purge_expired(db)  # sign-ins are rare enough to carry the housekeeping
    for attempt in range(2):
        try:
            return await _sign_in_once(db, identity, ip, user_agent, policy)
        except UniqueViolation:
            if attempt:  # the same account signing in twice at once: the second pass sees the row
                raise
    raise AssertionError("unreachable")


async def _sign_in_once(db: Database, identity: Identity, ip: str | None, user_agent: str | None,
                        policy: SignupPolicy) -> tuple[dict, str]:
    now = now_iso()
    async with db.transaction():
        if not policy.admits(identity.login):
            raise SignInRefused("not_in_allowed_users", f"The account {identity.login} is not on this Mission "
                                "Clawtrol's list of allowed users (ALLOWED_USERS). Ask an administrator to add it.")
        user = await _existing(db, identity)
        if user is not None and not user["active"]:
            raise SignInRefused("deactivated", "Your account has been deactivated by an administrator.")
        details: dict = {"method": identity.method}
        if user is None:
            user_id = new_id()
            role = await _role_for_new_user(db, policy, identity, user_id, now, details)
            await db.changed("users.insert", id=user_id, github_id=identity.github_id, login=identity.login,
                             name=identity.name, email=identity.email, avatar_url=identity.avatar_url,
                             role=role, now=now, reviewed_at=now if role == "admin" else None)
            details["signedUp"] = True
        else:
            user_id = user["id"]
            if identity.github_id is not None:
                await db.changed("users.update_profile", id=user_id, login=identity.login, name=identity.name,
                                 email=identity.email, avatar_url=identity.avatar_url, now=now)
            else:
                await db.changed("users.record_login", id=user_id, now=now)
            if policy.names_admin(identity.login) and user["role"] != "admin":
                await _promote_listed_admin(db, user, now, ip, user_agent)
                details["adminLogin"] = True
        user = await db.one("users.get", id=user_id)
        raw_session = await sessions.create(db, user_id, ip, user_agent)
        actor = Actor(kind="user", label=user["login"], user_id=user_id, ip=ip, user_agent=user_agent)
        await record(db, actor, "auth.signed_in", "user", user_id, {**details, "role": user["role"]})
    return user, raw_session


async def _role_for_new_user(db: Database, policy: SignupPolicy, identity: Identity, user_id: str, now: str,
                             details: dict) -> str:
    """ADMIN_LOGINS are admins; without that list the first user is (race-safe); others get the default."""
    if policy.names_admin(identity.login):
        details["adminLogin"] = True
        return "admin"
    if policy.first_user_becomes_admin and await db.one("users.claim_first_admin", user_id=user_id, now=now):
        details["firstAdmin"] = True
        return "admin"
    return policy.default_role


async def _promote_listed_admin(db: Database, user: dict, now: str, ip: str | None, user_agent: str | None) -> None:
    """An existing account named in ADMIN_LOGINS becomes admin when it signs in (audited as the system's)."""
    await db.changed("users.set_role", id=user["id"], role="admin", now=now)
    await db.changed("users.mark_reviewed", id=user["id"], reviewed_by=None, now=now)
    actor = Actor(kind="system", label="ADMIN_LOGINS", ip=ip, user_agent=user_agent)
    await record(db, actor, "user.role_changed", "user", user["id"],
                 {"login": user["login"], "from": user["role"], "to": "admin", "reason": "ADMIN_LOGINS"})


async def record_refusal(db: Database, login: str | None, reason: str, ip: str | None, user_agent: str | None) -> None:
    actor = Actor(kind="system", label=login or "unknown", ip=ip, user_agent=user_agent)
    await record(db, actor, "auth.refused", "user", None, {"login": login, "reason": reason})


async def sign_out(call: Call, raw_session: str) -> None:
    db = call.db
    async with db.transaction():
        if await sessions.end(db, raw_session):
            await record(db, call.actor, "auth.signed_out", "user", call.actor.user_id)


async def _target_and_admins(db: Database, user_id: str) -> tuple[dict, list[str]]:
    admins = [row["id"] for row in await db.all("users.lock_admins")]
    return await get(db, user_id), admins


def _refuse_last_admin(user: dict, admins: list[str], what: str) -> None:
    if user["id"] in admins and len(admins) == 1:
        raise InvalidInput(f"{user['login']} is the last active admin and cannot be {what}; make someone else "
                           "an admin first.", code="LAST_ADMIN")


def validate_changes(changes: dict) -> None:
    """Check {role, active} values before anything is written."""
    if "role" in changes and changes["role"] not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}", field="role")
    if "active" in changes and not isinstance(changes["active"], bool):
        raise InvalidInput("active: must be true or false", field="active")


async def update(call: Call, user_id: str, changes: dict) -> tuple[dict, dict]:
    """Apply {role, active} together, both or neither; return the user (before, after)."""
    if not changes:
        raise InvalidInput("No updates provided: send {role} or {active}")
    validate_changes(changes)
    async with call.db.transaction():
        user = before = await get(call.db, user_id)
        if "role" in changes:
            user = await change_role(call, user_id, changes["role"])
        if "active" in changes:
            user = await set_active(call, user_id, changes["active"])
    return before, user


async def change_role(call: Call, user_id: str, role: object) -> dict:
    validate_changes({"role": role})
    db, actor = call.db, call.actor
    async with db.transaction():
        user, admins = await _target_and_admins(db, user_id)
        if user["role"] == role:
            return user
        if role != "admin":
            _refuse_last_admin(user, admins, "demoted")
        await db.changed("users.set_role", id=user_id, role=role, now=now_iso())
        await db.changed("users.mark_reviewed", id=user_id, reviewed_by=actor.user_id, now=now_iso())
        await record(db, actor, "user.role_changed", "user", user_id,
                     {"login": user["login"], "from": user["role"], "to": role})
        return await get(db, user_id)


async def set_active(call: Call, user_id: str, active: object) -> dict:
    validate_changes({"active": active})
    db, actor = call.db, call.actor
    async with db.transaction():
        user, admins = await _target_and_admins(db, user_id)
        if bool(user["active"]) == active:
            return user
        if not active:
            if user_id == actor.user_id:
                raise InvalidInput("You cannot deactivate yourself.")
            _refuse_last_admin(user, admins, "deactivated")
            await sessions.end_all_for_user(db, user_id)
        await db.changed("users.set_active", id=user_id, active=active, now=now_iso())
        await db.changed("users.mark_reviewed", id=user_id, reviewed_by=actor.user_id, now=now_iso())
        await record(db, actor, "user.reactivated" if active else "user.deactivated", "user", user_id,
                     {"login": user["login"]})
        return await get(db, user_id)


async def delete(call: Call, user_id: str) -> None:
    db, actor = call.db, call.actor
    async with db.transaction():
        user, admins = await _target_and_admins(db, user_id)
        if user_id == actor.user_id:
            raise InvalidInput("You cannot delete yourself.")
        _refuse_last_admin(user, admins, "deleted")
        await db.changed("users.delete", id=user_id)
        await record(db, actor, "user.deleted", "user", user_id, {"login": user["login"]})


async def mark_reviewed(call: Call, user_id: str) -> dict:
    """An admin has looked at a new account and keeps its role: it is no longer marked "new"."""
    db, actor = call.db, call.actor
    async with db.transaction():
        user = await get(db, user_id)
        if user["reviewed_at"] is None:
            await db.changed("users.mark_reviewed", id=user_id, reviewed_by=actor.user_id, now=now_iso())
            await record(db, actor, "user.reviewed", "user", user_id, {"login": user["login"], "role": user["role"]})
        return await get(db, user_id)
