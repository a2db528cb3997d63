"""The background sender: every app process runs one. It leases due deliveries (webhooks.sql `claim_due`),
posts each signed body, and records the outcome.

- 2xx: delivered. A network error, a timeout (TIMEOUT s for the whole exchange), 5xx or 429: tried again
  later with exponential backoff (RETRY_BASE s × RETRY_FACTOR per try: 10 s, 36 s, 2 min, 8 min, 28 min,
  1.7 h, 6 h), MAX_TRIES tries in all, then failed; a 429's Retry-After is honoured when it asks for longer.
  Any other answer (3xx — redirects are not followed — or 4xx): failed at once.
- Rows are durable: what is pending when a process stops is picked up by the next one (a lease held by a
  process that died expires after LEASE). A receiver may see a delivery twice in that case; the
  X-Clawtrol-Delivery id tells them apart.
- Woken when this process queues a delivery; otherwise it polls every `poll_interval` seconds (for rows
  other processes queued, and retries falling due).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx2

from .. import background
from ..clock import iso, parse_iso, utcnow
from ..db import Database
from . import outbox, signing

log = logging.getLogger(__name__)

MAX_TRIES = 8
RETRY_BASE = 10.0
RETRY_FACTOR = 3.6
MAX_RETRY_AFTER = 6 * 3600.0
TIMEOUT = 10.0
POLL_INTERVAL = 2.0
SETTLE = 0.05  # after a wake-up: the change that queued the delivery commits first
BATCH = 20
LEASE = timedelta(seconds=60)
KEEP_FINISHED = timedelta(days=30)
PRUNE_EVERY = 3600.0
SNIPPET = 300  # characters of a receiver's error answer kept in last_error


def retry_delay(attempts: int, base: float = RETRY_BASE) -> float:
    """Seconds to wait after `attempts` failed tries."""
    return base * RETRY_FACTOR ** (attempts - 1)


@dataclass(frozen=True)
class Outcome:
    kind: str  # "delivered" | "retry" | "failed"
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER)
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:SNIPPET]


class WebhookSender:
    def __init__(self, db: Database, public_url: str, *, retry_base: float = RETRY_BASE,
                 poll_interval: float = POLL_INTERVAL, timeout: float = TIMEOUT,
                 transport: httpx2.AsyncBaseTransport | None = None):
        self.db = db
        self.public_url = public_url.rstrip("/")
        self.retry_base = retry_base
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        self._woken = asyncio.Event()
        self._forget = None
        self._pruned_at: float | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._client = httpx2.AsyncClient(transport=self._transport, follow_redirects=False)
            self._forget = outbox.on_enqueue(self.wake)
            self._task = asyncio.create_task(self._run_forever(), name="webhook-sender")

    async def stop(self) -> None:
        if self._forget is not None:
            self._forget()
            self._forget = None
        await background.stop(self._task)
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        self._woken.set()

    # --- one round ------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Lease the due deliveries (up to BATCH), send them, record the outcomes; returns how many."""
        now = utcnow()
        claimed = await self.db.all("webhooks.claim_due", now=iso(now), lease_until=iso(now + LEASE),
                                    claimant=self.claimant, limit=BATCH)
        if not claimed:
            return 0
        rows = await self.db.all("webhooks.leased", ids=[row["id"] for row in claimed], claimant=self.claimant)
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: dict) -> None:
        outcome = await self.post(row)
        attempts = row["attempts"] + 1
        now = utcnow()
        status, next_at = "pending", now
        if outcome.kind == "delivered":
            status = "delivered"
        elif outcome.kind == "failed" or attempts >= MAX_TRIES:
            status = "failed"
        else:
            delay = max(retry_delay(attempts, self.retry_base), outcome.retry_after or 0.0)
            next_at = now + timedelta(seconds=delay)
        recorded = await self.db.changed(
            "webhooks.record_attempt", id=row["id"], claimant=self.claimant, status=status,
            status_code=outcome.status_code, error=outcome.error, now=iso(now), next_attempt_at=iso(next_at),
            delivered_at=iso(now) if status == "delivered" else None)
        extra = {"delivery": row["id"], "event": row["event"], "webhook": row["webhook_id"], "attempt": attempts,
                 "statusCode": outcome.status_code}
        if not recorded:
            log.warning("a webhook delivery's lease ran out before its outcome was recorded", extra=extra)
        elif status == "failed":
            log.warning("webhook delivery failed: %s", outcome.error, extra=extra)
        elif status == "pending":
            log.info("webhook delivery will be retried at %s: %s", iso(next_at), outcome.error, extra=extra)

    async def post(self, row: dict) -> Outcome:
        """One attempt: the signed POST and what its answer means."""
        assert self._client is not None, "start() the sender first"
        body = signing.body(row["id"], row["event"], json.loads(row["payload"]), row["format"], self.public_url)
        timestamp = int(time.time())
        headers = signing.headers(row["event"], row["id"], timestamp, signing.sign(row["secret"], timestamp, body))
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("POST", row["url"], content=body, headers=headers) as response:
                    answer = await self._read_some(response)
        except TimeoutError:
            return Outcome("retry", error=f"no answer within {self.timeout:g} s")
        except (httpx2.HTTPError, OSError, ValueError) as exc:
            return Outcome("retry", error=_describe(exc))
        code = response.status_code
        if 200 <= code < 300:
            return Outcome("delivered", code)
        snippet = f"HTTP {code}" + (f": {answer}" if answer else "")
        if code == 429 or code >= 500:
            return Outcome("retry", code, snippet, _retry_after(response.headers.get("Retry-After")))
        if 300 <= code < 400:
            return Outcome("failed", code, f"HTTP {code}: redirects are not followed; point the webhook at "
                                           f"{response.headers.get('Location') or 'the final address'}"[:SNIPPET])
        return Outcome("failed", code, snippet)

    @staticmethod
    async def _read_some(response: httpx2.Response) -> str:
        if response.is_success:
            return ""
        kept = b""
        async for chunk in response.aiter_bytes():
            kept += chunk
            if len(kept) >= SNIPPET:
                break
        return kept[:SNIPPET].decode("utf-8", "replace").strip()

    # --- the loop -------------------------------------------------------------------------------------

    async def _run_forever(self) -> None:
        while True:
            wait = self.poll_interval
            try:
                if await self.run_once() == BATCH:
                    continue  # there may be more due right now
                await self._prune()
                wait = await self._until_next_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be briefly down; try again after a poll interval
                log.warning("webhook sender: %s", exc)
            await self._sleep(wait)

    async def _until_next_due(self) -> float:
        now = utcnow()
        due = await self.db.value("webhooks.next_due", now=iso(now))
        if due is None:
            return self.poll_interval
        return min(self.poll_interval, max(0.01, (parse_iso(due) - now).total_seconds()))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)
        if self._woken.is_set():
            self._woken.clear()
            await asyncio.sleep(SETTLE)

    async def _prune(self) -> None:
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        pruned = await self.db.changed("webhooks.prune", before=iso(utcnow() - KEEP_FINISHED))
        if pruned:
            log.info("pruned finished webhook deliveries", extra={"count": pruned})
