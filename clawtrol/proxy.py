"""The real client behind a trusted reverse proxy (TRUSTED_PROXIES).

Only a request whose socket peer is in one of the trusted networks has its forwarding headers read:
`X-Forwarded-For` (or, when that is absent, RFC 7239 `Forwarded: for=…`) and `X-Forwarded-Proto`
(or `Forwarded: proto=…`). The client is the right-most address that is not itself a trusted proxy:
everything left of it was written by the client and may be forged. `X-Forwarded-Host` is never read;
the proxy must pass the Host header through (Caddy does; nginx needs `proxy_set_header Host $host`).

Hypercorn ships `hypercorn.middleware.ProxyFixMiddleware`, but it trusts every peer, takes a fixed
hop count rather than the right-most untrusted address, and rewrites Host from `X-Forwarded-Host`; this
is the small part of it we need, applied only to trusted peers.

The scope is updated in place (client and scheme), so Hypercorn's access log records the real client
as well; the socket peer stays available as scope["clawtrol.peer"].
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = {"http": ("http", "ws"), "https": ("https", "wss"), "ws": ("http", "ws"), "wss": ("https", "wss")}


def parse_trusted_proxies(raw: str) -> tuple[tuple[Network, ...], list[str]]:
    """(networks, entries that are neither an IP address nor a CIDR network) from a comma-separated list."""
    networks, bad = [], []
    for item in raw.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            bad.append(entry)
    return tuple(networks), bad


def parse_address(value: str) -> Address | None:
    """An IP address from a forwarding header entry: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `"[::1]"`, `::1`."""
    text = value.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address | None, networks: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    values: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            values.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [value for value in values if value]


def _forwarded_elements(headers: Iterable[tuple[bytes, bytes]]) -> list[dict[str, str]]:
    elements = []
    for element in _header_values(headers, b"forwarded"):
        pairs = {}
        for pair in element.split(";"):
            key, _, value = pair.partition("=")
            pairs[key.strip().lower()] = value.strip().strip('"')
        elements.append(pairs)
    return elements


def forwarded_client(peer: Address, headers: list[tuple[bytes, bytes]],
                     networks: tuple[Network, ...]) -> tuple[str, str | None]:
    """(client address, forwarded scheme or None) for a request whose peer is a trusted proxy."""
    hops = _header_values(headers, b"x-forwarded-for")
    protos = _header_values(headers, b"x-forwarded-proto")
    if not hops:
        elements = _forwarded_elements(headers)
        hops = [element.get("for", "") for element in elements]
        protos = [element.get("proto", "") for element in elements]
    client, index = str(peer), None
    for position in range(len(hops) - 1, -1, -1):  # right to left: the nearest proxy wrote the last entry
        address = parse_address(hops[position])
        if address is None:
            break  # "unknown", an obfuscated name or garbage: keep the last address we could trust
        client, index = str(address), position
        if not is_trusted(address, networks):
            break
    proto = ""
    if protos:  # the scheme the chosen hop spoke, when each hop added one; else the nearest proxy's
        proto = protos[index] if index is not None and len(protos) == len(hops) else protos[-1]
    return client, proto.lower() or None


class TrustedProxyMiddleware:
    """ASGI middleware: take the client address and scheme from forwarding headers, for trusted peers only."""

    def __init__(self, app, networks: tuple[Network, ...]):
        self.app = app
        self.networks = networks

    async def __call__(self, scope, receive, send):
        if self.networks and scope["type"] in ("http", "websocket"):
            peer_pair = scope.get("client")
            peer = parse_address(str(peer_pair[0])) if peer_pair else None
            if is_trusted(peer, self.networks):
                client, proto = forwarded_client(peer, scope.get("headers") or [], self.networks)
                scope["clawtrol.peer"] = peer_pair
                if client != str(peer):
                    scope["client"] = (client, 0)
                if proto in _SCHEMES:
                    scope["scheme"] = _SCHEMES[proto][0 if scope["type"] == "http" else 1]
        await self.app(scope, receive, send)


def install(app) -> None:
    """Wrap the Quart app's ASGI callable (Hypercorn and the test client both go through it)."""
    networks = app.config["CLAWTROL"].trusted_proxies
    if networks:
        app.asgi_app = TrustedProxyMiddleware(app.asgi_app, networks)
