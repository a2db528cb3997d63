"""The host names this server answers to: PUBLIC_URL's, loopback names, and ALLOWED_HOSTS.

A request for any other Host is refused (400), so a page on a DNS-rebinding domain that resolves to
this server cannot talk to it with the browser's same-origin privileges. Loopback names are always
accepted: `localhost`, `*.localhost` (browsers resolve these to loopback themselves, without DNS),
127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_HOST_HEADER = re.compile(r"^(?:(?P<name>[A-Za-z0-9._-]+)|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])(?::(?P<port>\d{1,5}))?$")


def hostname_of(host: str | None) -> str | None:
    """The lowercased name in a Host header ('Example.COM.:3001' → 'example.com', '[::1]:80' → '::1'),
    or None when it is not a well-formed host."""
    match = _HOST_HEADER.match((host or "").strip())
    if not match:
        return None
    if match["ipv6"]:
        try:
            return str(ipaddress.IPv6Address(match["ipv6"]))
        except ValueError:
            return None
    name = match["name"].lower().rstrip(".")
    return name or None


def is_loopback_name(name: str | None) -> bool:
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def url_hostname(url: str | None) -> str | None:
    """The host name of an absolute URL (an Origin header, PUBLIC_URL), lowercased, or None."""
    try:
        parts = urlsplit(url or "")
        return hostname_of(parts.netloc.rpartition("@")[2]) if parts.scheme and parts.netloc else None
    except ValueError:
        return None


def parse_allowed_hosts(raw: str) -> tuple[frozenset[str], list[str]]:
    """(host names, entries that are not a bare host name or IP address) from a comma-separated list."""
    names, bad = set(), []
    for item in raw.split(","):
        entry = item.strip()
        if not entry:
            continue
        name = entry.lower().rstrip(".")
        bare = name.strip("[]")
        try:
            names.add(str(ipaddress.ip_address(bare)))
            continue
        except ValueError:
            pass
        if HOST_NAME.match(name):
            names.add(name)
        else:
            bad.append(entry)
    return frozenset(names), bad


class HostPolicy:
    """Which Host headers are ours."""

    def __init__(self, public_url: str, allowed_hosts: frozenset[str] | tuple[str, ...] = ()):
        public = url_hostname(public_url)
        self.names = frozenset(allowed_hosts) | ({public} if public else set())
        # Every request asks about the same one or two Host headers: remember the answers (bounded, so a
        # client sending random Host values cannot grow it).
        self.allows = functools.lru_cache(maxsize=64)(self._allows)

    def allows_name(self, name: str | None) -> bool:
        return bool(name) and (name in self.names or is_loopback_name(name))

    def _allows(self, host_header: str | None) -> bool:
        return self.allows_name(hostname_of(host_header))
