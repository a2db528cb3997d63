"""Who may sign up, and with what role: least privilege unless the operator chose more (DESIGN §4).

- ALLOWED_USERS (GitHub logins): when set, only those logins (and ADMIN_LOGINS) may sign in.
- ADMIN_LOGINS: those logins are admins, made so at every sign-in; when it is set nobody else becomes the
  "first admin". Without it the first person to sign in becomes admin (race-safe, see users.sql).
- DEFAULT_ROLE: the role of everyone else on their first sign-in (viewer, or member when ALLOWED_ORG is set).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config

OPEN_SIGNUP_WARNING = ("sign-up is open: anyone with a GitHub account who can reach this server can sign in "
                       "(as {role}), and while there is no admin the first to sign in becomes one; set "
                       "ALLOWED_ORG, ALLOWED_USERS or ADMIN_LOGINS")


@dataclass(frozen=True)
class SignupPolicy:
    default_role: str = "viewer"
    allowed_users: frozenset[str] = frozenset()
    admin_logins: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Config) -> SignupPolicy:
        return cls(config.default_role, config.allowed_users, config.admin_logins)

    def admits(self, login: str) -> bool:
        """May this login sign in at all (the org check, when configured, comes on top)?"""
        if not self.allowed_users:
            return True
        return login.lower() in self.allowed_users or self.names_admin(login)

    def names_admin(self, login: str) -> bool:
        return login.lower() in self.admin_logins

    @property
    def first_user_becomes_admin(self) -> bool:
        return not self.admin_logins


def open_signup_warning(config: Config) -> str | None:
    """The warning `serve` logs and the users page shows when a production server lets anyone in."""
    if not config.is_production or config.allowed_org or config.allowed_users or config.admin_logins:
        return None
    return OPEN_SIGNUP_WARNING.format(role=config.default_role)
