"""How gateway trouble reaches an HTTP caller: 503 while it is disconnected or silent, 502 when it refuses.
`outcome` tells the caller what stays true (e.g. "the approval stays pending")."""

from __future__ import annotations

from ..errors import GatewayRefused, GatewayTrouble, GatewayUnreachable
from .client import GatewayClient, GatewayError, GatewayUnavailable


def require_connected(gateway: GatewayClient, outcome: str = "nothing was sent") -> None:
    if not gateway.connected:
        raise GatewayUnreachable(f"The OpenClaw gateway is not connected; {outcome}. Try again when it is back.",
                                 code="GATEWAY_UNAVAILABLE")


def failure(error: GatewayError, outcome: str = "nothing was sent", refused: str = "refused") -> GatewayTrouble:
    if isinstance(error, GatewayUnavailable) or error.code == "TIMEOUT":
        return GatewayUnreachable(f"The OpenClaw gateway did not answer; {outcome}.", code="GATEWAY_UNAVAILABLE")
    return GatewayRefused(f"The OpenClaw gateway {refused}: {error.message}", code="GATEWAY_REFUSED")
