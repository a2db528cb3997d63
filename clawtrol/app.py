"""The Quart application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from pathlib import Path

from quart import Quart, g, request, url_for

from . import __version__, audit, errors, formatting, payload, proxy, security
from .agents.health import HealthTracker
from .agents.health_poller import HealthPoller
from .agents.usage import UsagePuller
from .approvals.gate import pending_count
from .approvals.sync import ApprovalSync
from .auth import guard
from .auth.activity import Activity
from .auth.token_cache import TokenCache
from .blueprints import BLUEPRINTS, NAVIGATION
from .config import Config, load_config
from .db import Database, DatabaseUnavailable
from .domain_events import DomainEvents
from .gateway.identity import KEY_FILE_NAME
from .gateways import bootstrap
from .gateways.registry import CHANGED_EVENT, GatewayRegistry
from .gateways.secrets import TokenBox
from .live import Hub
from .paths import STATIC, TEMPLATES
from .services import EXTENSION, Services
from .settings import THEME_COOKIE, page_theme
from .signed_session import SignedSessionInterface
from .templating import App
from .webhooks import outbox as webhook_outbox
from .webhooks.sender import WebhookSender

MAX_BODY_BYTES = 1024 * 1024
STOP_STEP_SECONDS = 2.0  # what one shutdown step may take before the next one goes on regardless

log = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Quart:
    config = config or load_config()
    app = App(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    app.config.update(
        CLAWTROL=config,
        SECRET_KEY=config.session_secret,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_SECURE=config.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TEMPLATES_AUTO_RELOAD=not config.is_production,
        JSON_SORT_KEYS=False,
    )
    app.session_interface = SignedSessionInterface()
    app.json.sort_keys = False

    services = app.extensions[EXTENSION] = build_services(config)
    app.add_template_global(services.agent_health.session_state, "session_health")  # a dict lookup per card
    _install_lifecycle(app, services)
    if not services.db.is_sqlite:
        _pin_a_connection_per_request(app, services.db)
    _install_layout_context(app, services.db)

    errors.install(app)
    security.install(app)
    formatting.install(app)
    guard.install(app)  # before payload: an anonymous request is refused before its body is parsed
    payload.install(app)
    proxy.install(app)  # the real client behind TRUSTED_PROXIES (wraps app.asgi_app)

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def build_services(config: Config) -> Services:
    """The app's objects, wired to each other (nothing connects yet: that is `before_serving`'s)."""
    db = Database.open(config.database_url)
    hub = Hub(db, config.database_url)
    box = TokenBox(config.session_secret)
    gateways = GatewayRegistry(db, box, Path(config.data_dir) / KEY_FILE_NAME)
    hub.on_event(CHANGED_EVENT, gateways.changed)  # a record changed in any process: reconnect accordingly
    events = DomainEvents()
    health = HealthTracker(config.stall_minutes, connected=gateways.is_connected)
    services = Services(
        config=config, db=db, hub=hub, events=events, gateway_tokens=box, gateways=gateways,
        approvals=ApprovalSync(db, hub, gateways), usage=UsagePuller(db, hub, events, gateways),
        agent_health=health, agent_health_poller=HealthPoller(db, hub, gateways, health),
        activity=Activity(db), webhook_sender=WebhookSender(db, config.public_url), token_cache=TokenCache(),
        started_at=time.monotonic())
    audit.watch(webhook_outbox.from_audit)  # audited changes queue their webhook deliveries
    hub.on_revocation(services.token_cache.clear)
    return services


def _install_lifecycle(app: Quart, services: Services) -> None:
    """Connect and start the background workers when serving starts; stop them, then disconnect, at the end."""
    db, hub, gateways, config = services.db, services.hub, services.gateways, services.config
    workers = (services.approvals, services.usage, services.agent_health_poller, services.activity,
               services.webhook_sender)

    @app.before_serving
    async def open_database() -> None:
        await db.connect()
        await hub.start()
        for worker in workers:
            await worker.start()
        with contextlib.suppress(DatabaseUnavailable):  # the database may be down at start; the app degrades
            await bootstrap.default_from_environment(db, services.gateway_tokens, config.gateway_url,
                                                     config.gateway_token)
        await gateways.start()  # each connects in the background; the app works (degraded) while one is down

    @app.after_serving
    async def close_database() -> None:
        # Each step is bounded: one that hangs is logged by name and the others still run.
        await _bounded("domain events", services.events.stop())  # a usage pull under way is abandoned
        await _bounded("gateways", gateways.stop())
        for worker in workers:  # Activity writes the last token and session use times
            await _bounded(type(worker).__name__, worker.stop())
        await _bounded("live hub", hub.stop())  # release the LISTEN connection first, or shutdown waits on it
        await _bounded("database", db.disconnect())


async def _bounded(step: str, stopping: Awaitable[None], seconds: float = STOP_STEP_SECONDS) -> None:
    try:
        await asyncio.wait_for(stopping, seconds)
    except TimeoutError:
        log.warning("shutdown: %s did not stop within %s s; going on", step, seconds)


def _pin_a_connection_per_request(app: Quart, db: Database) -> None:
    """PostgreSQL: one pooled connection per request, shared by its queries (acquiring one per query costs more
    than the query). SQLite needs none: its queries run on the process's long-lived connections."""

    @app.before_request
    async def pin_connection() -> None:
        try:
            g.db_pin = await db.pin()
        except DatabaseUnavailable:
            g.database_unavailable = True  # each query will report it (503), and /api/health can still answer

    @app.teardown_request
    async def release_connection(exc: BaseException | None) -> None:
        pinned = g.pop("db_pin", None)
        if pinned is not None:
            try:
                await db.unpin(pinned)
            except DatabaseUnavailable:
                pass  # the server closed it (restart, failover): the pool replaces it; the answer stands


def _install_layout_context(app: Quart, db: Database) -> None:
    """What every page's layout shows: version, menu, theme and the header's pending approvals badge."""

    async def header_pending() -> int | None:
        try:
            return await pending_count(db)
        except DatabaseUnavailable:
            return None  # error pages (the 503 among them) render without the badge

    @app.context_processor
    async def layout_context() -> dict:
        theme = await page_theme(db, request.cookies.get(THEME_COOKIE))
        context = {"app_version": __version__, "nav_items": _nav_items(app), "theme": theme}
        if g.get("principal") is not None and not g.get("database_unavailable"):
            # called (and awaited) by the page layout only, so fragments don't pay for the query
            context["header_pending_approvals"] = header_pending
        return context


def _nav_items(app: Quart) -> list[tuple[str, str, str]]:
    return [(label, url_for(endpoint), endpoint) for label, endpoint in NAVIGATION if endpoint in app.view_functions]
