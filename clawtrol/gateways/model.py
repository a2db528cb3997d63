"""A gateway record as the API takes and shows it. The token is write-only: never returned, never audited."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidInput

MAX_NAME = 60
MAX_URL = 500
MAX_TOKEN = 500
FIELDS = ("name", "url", "token", "enabled")


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("name: required, a non-empty string", field="name")
    if len(value.strip()) > MAX_NAME:
        raise InvalidInput(f"name: at most {MAX_NAME} characters", field="name")
    return value.strip()


def parse_url(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("url: required, a ws:// or wss:// address", field="url")
    url = value.strip()
    if len(url) > MAX_URL:
        raise InvalidInput(f"url: at most {MAX_URL} characters", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise InvalidInput("url: not a valid address", field="url") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise InvalidInput("url: must start with ws:// or wss:// and name a host", field="url")
    if parts.username or parts.password:
        raise InvalidInput("url: must not carry credentials; use the token field", field="url")
    return url


def _token(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("token: must be a string", field="token")
    if len(value) > MAX_TOKEN:
        raise InvalidInput(f"token: at most {MAX_TOKEN} characters", field="token")
    return value.strip()


def _enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("enabled: must be true or false", field="enabled")
    return value


def validate(body: dict, before: dict | None = None) -> dict:
    """Values for gateways.insert / update: name, url, token (None = keep the stored one), enabled."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown field (expected {', '.join(FIELDS)})", field=unknown[0])
    if before is None:
        return {"name": _name(body.get("name")), "url": parse_url(body.get("url")),
                "token": _token(body.get("token")), "enabled": _enabled(body.get("enabled", True))}
    return {"name": _name(body["name"]) if "name" in body else before["name"],
            "url": parse_url(body["url"]) if "url" in body else before["url"],
            "token": _token(body["token"]) if "token" in body else None,
            "enabled": _enabled(body["enabled"]) if "enabled" in body else bool(before["enabled"])}


def described(row: dict) -> dict:
    """What the audit trail records of a gateway (never the token)."""
    return {"name": row["name"], "url": row["url"], "enabled": bool(row["enabled"])}


def to_json(row: dict, connection=None, pending: int = 0) -> dict:
    """A gateway as the API shows it, with its connection's state (a registry Connection, or None when the
    gateway is disabled or not loaded yet). Never the token: only whether one is stored."""
    enabled = bool(row["enabled"])
    if not enabled:
        connection = None
    client = connection.client if connection is not None else None
    connected = bool(connection is not None and connection.connected)
    return {
        "id": row["id"],
        "name": row["name"],
        "url": row["url"],
        "enabled": enabled,
        "connected": connected,
        "version": client.state.server_version if connected else None,
        "lastError": connection.last_error if connection is not None else None,
        "lastConnectedAt": client.state.connected_at if client is not None else None,
        "latencyMs": client.latency_ms if connected else None,
        "pendingApprovals": int(pending or 0),
        "hasToken": bool(row["token_encrypted"]),
        "createdAt": row["created_at"],
        "createdBy": row["created_by_label"],
        "updatedAt": row["updated_at"],
        "updatedBy": row["updated_by_label"],
    }


def state_of(gateway: dict) -> str:
    """The badge a gateway (to_json) shows: connected, connecting, disconnected or disabled."""
    if not gateway["enabled"]:
        return "disabled"
    if gateway["connected"]:
        return "connected"
    return "disconnected" if gateway["lastError"] else "connecting"
