"""How gateway trouble reaches an HTTP caller: 503 while it is disconnected or silent, 502 when it refuses.
`outcome` tells the caller what stays true (e.g. "the approval stays pending")."""

from __future__ import annotations

from ..errors import ApiError
from .client import GatewayClient, GatewayError, GatewayUnavailable


def require_connected(gateway: GatewayClient, outcome: str = "nothing was sent") -> None:
    if not gateway.connected:
        raise ApiError(f"The OpenClaw gateway is not connected; {outcome}. Try again when it is back.", 503,
                       code="GATEWAY_UNAVAILABLE")


def failure(error: GatewayError, outcome: str = "nothing was sent", refused: str = "refused") -> ApiError:
    if isinstance(error, GatewayUnavailable) or error.code == "TIMEOUT":
        return ApiError(f"The OpenClaw gateway did not answer; {outcome}.", 503, code="GATEWAY_UNAVAILABLE")
    return ApiError(f"The OpenClaw gateway {refused}: {error.message}", 502, code="GATEWAY_REFUSED")
