"""The authenticated caller of a request and the role rules that apply to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from quart import g

from ..audit import Actor
from ..errors import Forbidden, Unauthenticated
from ..incoming import incoming

log = logging.getLogger(__name__)

ROLES = ("viewer", "member", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


class UserOrToken:
    """Something that is a user (kind "user") or an API token (kind "token"), with its id."""

    kind: str
    id: str

    @property
    def user_id(self) -> str | None:
        return self.id if self.kind == "user" else None

    @property
    def token_id(self) -> str | None:
        return self.id if self.kind == "token" else None


@dataclass(frozen=True)
class Principal(UserOrToken):
    """A signed-in user (kind "user") or an API token (kind "token")."""

    kind: str
    id: str
    role: str
    label: str  # login of a user, name of a token
    name: str | None = None
    avatar_url: str | None = None
    session_id: str | None = None  # the raw cookie session id (users signed in through a browser)

    @property
    def display_name(self) -> str:
        return self.name or self.label

    def has_role(self, minimum: str) -> bool:
        return _RANK[self.role] >= _RANK[minimum]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def current_principal() -> Principal | None:
    return g.get("principal")


def require_principal() -> Principal:
    principal = current_principal()
    if principal is None:
        raise Unauthenticated("Not authenticated")
    return principal


def log_refusal(action: str, reason: str) -> None:
    """One structured log line for a refused attempt at something sensitive: who (user login or token
    name, or anonymous), from which client address, on which path, and why. Works in HTTP and WebSocket
    handlers and hooks; writes nothing to the database."""
    principal = current_principal()
    log.warning("refused", extra={
        "action": action,
        "reason": reason,
        "actor": principal.label if principal else "anonymous",
        "actor_kind": principal.kind if principal else None,
        "role": principal.role if principal else None,
        "ip": client_ip(),
        "method": getattr(incoming(), "method", "WEBSOCKET"),
        "path": incoming().path,
    })


def require_role(minimum: str, action: str = "do this") -> Principal:
    """The caller, if their role is at least `minimum`; otherwise a 403 that says what was refused (and a
    log_refusal line)."""
    principal = require_principal()
    if not principal.has_role(minimum):
        log_refusal(action, f"role {principal.role} needs {minimum}")
        raise Forbidden(f"Your role ({principal.role}) cannot {action}; it needs {minimum} or higher.",
                        code="FORBIDDEN")
    return principal


def client_ip() -> str | None:
    """The client's address: the socket peer, or behind a proxy in TRUSTED_PROXIES the forwarded client
    (clawtrol/proxy.py rewrites the ASGI scope before Quart sees it)."""
    return incoming().remote_addr


def current_actor() -> Actor:
    """The audit-log actor for this request."""
    principal = require_principal()
    return Actor(
        kind=principal.kind,
        label=principal.label,
        user_id=principal.user_id,
        token_id=principal.token_id,
        ip=client_ip(),
        user_agent=incoming().headers.get("User-Agent"),
    )
