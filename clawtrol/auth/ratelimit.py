"""Failure counting per client address, to slow down guessing of tokens and abuse of sign-in.

Per process and in memory: a restart forgets, and with several workers each keeps its own count. That is
enough to make brute force impractical (the limit is per worker and per window) without a shared store.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque


class FailureLimiter:
    def __init__(self, max_failures: int, window_seconds: float):
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, key: str, now: float) -> deque[float]:
        stamps = self._failures[key]
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
