"""The app's gateway connections: one GatewayClient per enabled gateway record, kept in step with the `gateways`
table at runtime, in every process.

    registry.on_event("exec.approval.requested", handler)   # handler(gateway_id, GatewayEvent), every gateway
    registry.on_connect(callback)                           # callback(gateway_id, hello), after each hello-ok
    client = registry.client(gateway_id)                    # 404 ApiError when unknown, removed or disabled
    gateway_id = registry.pick(requested, preferred)        # the one to use when a caller may leave it out

A change to a record (clawtrol/gateways/service.py) publishes the live event `gateway.changed`; every process
reloads on it, and also every RELOAD_SECONDS in case it missed one. A reload starts clients for new or enabled
gateways, stops those removed or disabled, and replaces those whose url or token changed. Clients connect in the
background, each on its own tasks: a gateway that is down never slows the others or the pages. All clients use
the app's one device identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import background
from ..db import Database
from ..errors import GatewayUnreachable, InvalidInput, NotFound
from ..gateway.client import GatewayClient
from .secrets import TokenBox, UnreadableToken

log = logging.getLogger(__name__)

RELOAD_SECONDS = 10.0
CHANGED_EVENT = "gateway.changed"


@dataclass
class Connection:
    """An enabled gateway record and its client (None when its token cannot be decrypted)."""

    id: str
    name: str
    url: str
    sealed_token: str | None
    client: GatewayClient | None
    problem: str | None = None  # why there is no client
    detach: dict = field(default_factory=dict, repr=False)  # subscription id -> the client's unsubscribe

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    @property
    def last_error(self) -> str | None:
        return self.problem or (self.client.state.last_error if self.client else None)


class GatewayRegistry:
    def __init__(self, db: Database, box: TokenBox, identity_path: Path, *, reload_seconds: float = RELOAD_SECONDS,
                 **client_options: Any):
        self.db = db
        self.box = box
        self.identity_path = identity_path
        self.reload_seconds = reload_seconds
        self.client_options = client_options
        self._connections: dict[str, Connection] = {}
        self._names: dict[str, str] = {}  # every gateway ever recorded, removed ones too: history names them
        self._subscriptions: list[tuple] = []  # (kind, event name or None, callback)
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        self._reloads: set[asyncio.Task] = set()
        self._running = False

    # --- subscriptions (apply to every gateway, present and future; each returns an unsubscribe) --------

    def on_event(self, event: str, handler: Callable) -> Callable[[], None]:
        """Call `handler(gateway_id, GatewayEvent)` for `event` frames of every gateway ("*": all)."""
        return self._subscribe(("event", event, handler))

    def on_connect(self, callback: Callable) -> Callable[[], None]:
        """Call `callback(gateway_id, hello)` after every successful (re)connect of any gateway."""
        return self._subscribe(("connect", None, callback))

    def on_disconnect(self, callback: Callable) -> Callable[[], None]:
        """Call `callback(gateway_id, reason)` when any gateway's established connection ends."""
        return self._subscribe(("disconnect", None, callback))

    def _subscribe(self, subscription: tuple) -> Callable[[], None]:
        self._subscriptions.append(subscription)
        for connection in self._connections.values():
            self._attach(connection, subscription)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscriptions.remove(subscription)
            for connection in self._connections.values():
                detach = connection.detach.pop(id(subscription), None)
                if detach is not None:
                    detach()
        return unsubscribe

    @staticmethod
    def _attach(connection: Connection, subscription: tuple) -> None:
        if connection.client is None:
            return
        kind, event, callback = subscription
        bound = functools.partial(callback, connection.id)
        if kind == "event":
            detach = connection.client.on_event(event, bound)
        elif kind == "connect":
            detach = connection.client.on_connect(bound)
        else:
            detach = connection.client.on_disconnect(bound)
        connection.detach[id(subscription)] = detach

    # --- lookups ------------------------------------------------------------------------------------

    def connections(self) -> list[Connection]:
        """The enabled gateways, by name."""
        return sorted(self._connections.values(), key=lambda connection: (connection.name, connection.id))

    def get(self, gateway_id: str | None) -> Connection | None:
        return self._connections.get(gateway_id) if gateway_id else None

    def client(self, gateway_id: str) -> GatewayClient:
        """The client of an enabled gateway; 404 when there is none by this id (unknown, removed, disabled)."""
        connection = self._connections.get(gateway_id)
        if connection is None:
            raise NotFound(f"gatewayId: no enabled gateway {gateway_id!r}", field="gatewayId", code="NOT_FOUND")
        if connection.client is None:
            raise GatewayUnreachable(f"The gateway {connection.name} cannot connect: {connection.problem}",
                                     code="GATEWAY_UNAVAILABLE")
        return connection.client

    def name(self, gateway_id: str | None) -> str | None:
        return self._names.get(gateway_id) if gateway_id else None

    def is_connected(self, gateway_id: str | None) -> bool:
        connection = self.get(gateway_id)
        return connection is not None and connection.connected

    @property
    def connected(self) -> bool:
        """The aggregate: every enabled gateway connected (and there is at least one)."""
        return bool(self._connections) and all(connection.connected for connection in self._connections.values())

    @property
    def any_connected(self) -> bool:
        return any(connection.connected for connection in self._connections.values())

    def pick(self, requested: object = None, preferred: str | None = None) -> str:
        """The gateway a request means: the one it names, else `preferred` (e.g. its project's default gateway)
        when enabled, else the only enabled one. With several and none named: 400 naming the choices."""
        if requested not in (None, ""):
            if not isinstance(requested, str) or requested not in self._connections:
                raise InvalidInput(f"gatewayId: no enabled gateway {requested!r} (enabled: "
                                   f"{', '.join(self._connections) or 'none'})", field="gatewayId")
            return requested
        if preferred in self._connections:
            return preferred  # type: ignore[return-value]
        if len(self._connections) == 1:
            return next(iter(self._connections))
        if not self._connections:
            raise GatewayUnreachable("No OpenClaw gateway is configured; an admin adds one on Admin › Gateways.",
                                     code="GATEWAY_UNAVAILABLE")
        choices = ", ".join(f"{c.id} ({c.name})" for c in self.connections())
        raise InvalidInput(f"gatewayId: required, several gateways are enabled: {choices}", field="gatewayId")

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        with contextlib.suppress(Exception):  # the database may be down at start: the poller retries
            await self.reload()
        if self._poller is None:
            self._poller = asyncio.create_task(self._reload_forever(), name="gateway-registry")

    async def stop(self) -> None:
        self._running = False
        await background.stop(self._poller)
        self._poller = None
        for task in list(self._reloads):
            await background.stop(task)
        async with self._lock:
            connections, self._connections = list(self._connections.values()), {}
            await asyncio.gather(*(c.client.stop() for c in connections if c.client is not None))

    def changed(self, _event: dict | None = None) -> None:
        """A record changed (here or in another process): reload soon, without holding up the caller."""
        if not self._running:
            return
        task = asyncio.get_running_loop().create_task(self._reload_quietly(), name="gateway-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> None:
        rows = await self.db.all("gateways.live")
        names = {row["id"]: row["name"] for row in await self.db.all("gateways.names")}
        async with self._lock:
            if not self._running:
                return
            self._names = names
            wanted = {row["id"]: row for row in rows if row["enabled"]}
            stopping = []
            for gateway_id, connection in list(self._connections.items()):
                row = wanted.get(gateway_id)
                if row is None or (row["url"], row["token_encrypted"]) != (connection.url, connection.sealed_token):
                    stopping.append(self._connections.pop(gateway_id))
                elif row["name"] != connection.name:
                    connection.name = row["name"]
            await asyncio.gather(*(c.client.stop() for c in stopping if c.client is not None))
            for gateway_id, row in wanted.items():
                if gateway_id not in self._connections:
                    self._connections[gateway_id] = connection = self._connect(row)
                    if connection.client is not None:
                        await connection.client.start()
        for connection in stopping:
            log.info("gateway connection stopped", extra={"gateway": connection.id, "gatewayName": connection.name})

    def _connect(self, row: dict) -> Connection:
        connection = Connection(row["id"], row["name"], row["url"], row["token_encrypted"], None)
        try:
            token = self.box.open(row["token_encrypted"])
        except UnreadableToken as problem:
            connection.problem = str(problem)
            log.warning("gateway %s: %s", row["name"], problem)
            return connection
        connection.client = GatewayClient(row["url"], token, identity_path=self.identity_path,
                                          **self.client_options)
        for subscription in self._subscriptions:
            self._attach(connection, subscription)
        log.info("gateway connection starting",
                 extra={"gateway": row["id"], "gatewayName": row["name"], "url": row["url"]})
        return connection

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not reload the gateways: %s", exc)

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            await self._reload_quietly()

