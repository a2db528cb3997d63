"""Failure counting per client address, to slow down guessing of tokens and abuse of sign-in.

Per process and in memory: a restart forgets, and with several workers each keeps its own count. That is
enough to make brute force impractical (the limit is per worker and per window) without a shared store.

Keys come from `client_key`: the client's address (behind a proxy listed in TRUSTED_PROXIES, the real
client's, see clawtrol/proxy.py), an IPv6 client by its /64 (one household or host can rotate through a
whole /64). One client's failures never limit another client.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import defaultdict, deque


@functools.lru_cache(maxsize=4096)
def client_key(address: str | None) -> str:
    """The limiter key for a client address: IPv4 as is, IPv6 by its /64 network, else "unknown"."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureLimiter:
    def __init__(self, max_failures: int, window_seconds: float):
        self.max_failures = max_failures
        self.window = window_seconds
        # Only the newest max_failures stamps matter: a client that keeps failing stays blocked, in bounded memory.
        self._failures: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=self.max_failures))

    def _prune(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key)  # not [key]: that would create and drop a deque on every request
        if stamps is None:
            return deque()
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
            return deque()
        return stamps

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not blocked."""
        now = time.monotonic()
        stamps = self._prune(key, now)
        if len(stamps) < self.max_failures:
            return 0
        return max(1, int(stamps[0] + self.window - now) + 1)

    def fail(self, key: str) -> None:
        now = time.monotonic()
        self._prune(key, now)
        self._failures[key].append(now)
        if len(self._failures) > 10_000:  # bound memory under a spray of addresses
            for stale in [k for k, v in self._failures.items() if v[-1] <= now - self.window]:
                del self._failures[stale]

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
