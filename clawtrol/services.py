"""The app's long-lived objects in one place, and who is calling in a request.

`Services` is built once by the app factory (clawtrol/app.py) and kept on the app; `services()` returns it
inside a request or app context, `services_of(app)` outside one (tests, the CLI). `Call` is one request's
caller — the principal the rules look at and the actor the audit trail records, derived once — together
with the services; area functions that write take a `Call` instead of (db, hub, principal, actor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Quart, current_app, g

if TYPE_CHECKING:
    from .agents.health import HealthTracker
    from .agents.health_poller import HealthPoller
    from .agents.usage import UsagePuller
    from .approvals.sync import ApprovalSync
    from .audit import Actor
    from .auth.activity import Activity
    from .auth.principal import Principal
    from .auth.ratelimit import FailureLimiter
    from .auth.token_cache import TokenCache
    from .config import Config
    from .db import Database
    from .domain_events import DomainEvents
    from .gateways.registry import GatewayRegistry
    from .gateways.secrets import TokenBox
    from .hosts import HostPolicy
    from .live import Hub
    from .webhooks.sender import WebhookSender

EXTENSION = "clawtrol"


@dataclass
class Services:
    """What the app runs on: the database, the live hub, the gateways and the background workers."""

    config: Config
    db: Database
    hub: Hub
    events: DomainEvents  # reactions inside the app (the usage pull); the browser's stream is `hub`
    gateway_tokens: TokenBox
    gateways: GatewayRegistry
    approvals: ApprovalSync
    usage: UsagePuller
    agent_health: HealthTracker
    agent_health_poller: HealthPoller
    activity: Activity
    webhook_sender: WebhookSender
    token_cache: TokenCache
    started_at: float
    # set by the request guard when it is installed (clawtrol/auth/guard.py)
    host_policy: HostPolicy | None = None
    token_failures: FailureLimiter | None = None
    signin_failures: FailureLimiter | None = None


def services_of(app: Quart) -> Services:
    return app.extensions[EXTENSION]


def services() -> Services:
    """The running app's services (inside a request, a WebSocket or an app context)."""
    return current_app.extensions[EXTENSION]


def current_db() -> Database:
    return services().db


def current_hub() -> Hub:
    return services().hub


def current_registry() -> GatewayRegistry:
    return services().gateways


@dataclass(frozen=True)
class Call:
    """One request's caller and the services it acts through."""

    services: Services
    principal: Principal
    actor: Actor

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def hub(self) -> Hub:
        return self.services.hub

    @property
    def gateways(self) -> GatewayRegistry:
        return self.services.gateways


def current_call() -> Call:
    """The signed-in caller of this request (401 when there is none), derived once per request."""
    call = g.get("call")
    if call is None:
        from .auth.principal import current_actor, require_principal

        call = g.call = Call(services(), require_principal(), current_actor())
    return call
