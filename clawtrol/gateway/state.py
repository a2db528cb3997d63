"""What the app knows about its OpenClaw gateway connection, shared by health checks and pages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GatewayState:
    connected: bool = False
    server_version: str | None = None
    last_error: str | None = None

    def as_json(self) -> dict:
        return {"connected": self.connected, "version": self.server_version}
