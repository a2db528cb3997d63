"""What the app knows about its OpenClaw gateway connection, shared by health checks and pages.

The gateway client (clawtrol.gateway.client) keeps it up to date; everything else only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GatewayState:
    connected: bool = False
    server_version: str | None = None      # hello-ok server.version while connected
    last_error: str | None = None          # why the last connection attempt failed or the connection ended
    url: str | None = None
    protocol: int | None = None
    conn_id: str | None = None
    scopes: tuple[str, ...] = ()           # the scopes the gateway granted this connection (hello-ok auth.scopes)
    methods: frozenset[str] = frozenset()  # hello-ok features.methods
    events: frozenset[str] = frozenset()   # hello-ok features.events
    device_id: str | None = None
    pairing_request_id: str | None = None  # set while a remote gateway waits for `openclaw devices approve <id>`
    connected_at: str | None = None        # ISO-8601 UTC
    disconnected_at: str | None = None
    connects: int = 0                      # successful handshakes since the process started

    def supports(self, method: str) -> bool:
        return method in self.methods

    def as_json(self) -> dict:
        return {"connected": self.connected, "version": self.server_version}
