"""Keeps the approvals table in step with the gateway: requested and resolved events, a resync with
`exec.approval.list` after every (re)connect, and expiry.

Every app process runs one of these on its own gateway connection. Ingestion is idempotent rather than led:
each write is conditional (see sql/queries/approvals.sql), so when several processes hear the same event
exactly one inserts or updates the row, and only that one writes the audit entry and publishes the live
event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .. import audit, background
from ..audit import Actor
from ..clock import now_iso
from ..db import Database, DatabaseUnavailable
from ..gateway.client import GatewayClient, GatewayError, GatewayEvent
from ..live import Hub
from ..policies.decide import Claim, RuleBook, claim_if_decided
from ..webhooks import outbox as webhooks_outbox
from .model import DECISIONS, NotAnApproval, from_gateway
from .service import publish, send_claimed, stale_before

log = logging.getLogger(__name__)

GATEWAY = Actor(kind="system", label="OpenClaw gateway")
EXPIRY_INTERVAL = 5.0


class ApprovalSync:
    def __init__(self, db: Database, hub: Hub, gateway: GatewayClient):
        self.db = db
        self.hub = hub
        self.gateway = gateway
        self.rule_book = RuleBook(db)
        self._expiry: asyncio.Task | None = None
        self._resync: asyncio.Task | None = None
        gateway.on_event("exec.approval.requested", self.on_requested)
        gateway.on_event("exec.approval.resolved", self.on_resolved)
        gateway.on_connect(self.on_connect)

    async def start(self) -> None:
        if self._expiry is None:
            self._expiry = asyncio.create_task(self._expire_forever(), name="approvals-expiry")

    async def stop(self) -> None:
        for task in (self._expiry, self._resync):
            await background.stop(task)
        self._expiry = self._resync = None

    # --- gateway events ------------------------------------------------------------------------------

    async def on_requested(self, event: GatewayEvent) -> None:
        await self.ingest(event.payload)

    async def ingest(self, payload: object) -> bool:
        """Store one requested approval; True if this call inserted it (and so audited and announced it)."""
        try:
            row = from_gateway(payload)
        except NotAnApproval as reason:
            log.warning("ignored an exec approval the gateway sent without %s", reason)
            return False
        claim = None
        async with self.db.transaction():
            inserted = await self.db.changed("approvals.insert", **row)
            if inserted:
                claim = await claim_if_decided(self.db, self.rule_book, row["id"])  # the rules, before anyone sees it
                await audit.record(self.db, GATEWAY, "approval.requested", "approval", row["id"], {
                    "command": row["command"][:500], "agentId": row["agent_id"], "sessionKey": row["session_key"],
                    "host": row["host"], "expiresAt": row["expires_at"],
                    **({"ruleId": claim.rule.id, "rule": claim.rule.name} if claim else {})})
        if not inserted:
            return False
        if claim is None or not await self.decide_by_rule(claim):
            await publish(self.db, self.hub, "approval.requested", row["id"], GATEWAY)
        return True

    async def decide_by_rule(self, claim: Claim) -> bool:
        """Send a rule's decision through the same path as a person's (approvals/service.py). False if the
        gateway did not take it: the claim is released and the approval waits for a person."""
        row = await self.db.one("approvals.get", id=claim.approval_id)
        try:
            confirmed = await send_claimed(self.db, self.gateway, self, row, claim.decision, claim.claimed_at,
                                           claim.actor, "approval.auto_resolved",
                                           {"ruleId": claim.rule.id, "rule": claim.rule.name})
        except GatewayError as error:
            log.warning("the gateway did not take an approval rule's decision; a person decides instead: %s", error,
                        extra={"approval": claim.approval_id, "rule": claim.rule.name})
            async with self.db.transaction():
                await webhooks_outbox.approval_left_to_a_person(self.db, claim.approval_id)
            return False
        if confirmed:
            await publish(self.db, self.hub, "approval.resolved", claim.approval_id, claim.actor)
        return True

    async def on_resolved(self, event: GatewayEvent) -> None:
        """A decision the gateway reports. Decisions taken through this app are already claimed and are
        confirmed by the resolving request; this records the ones taken elsewhere (OpenClaw's own UI)."""
        payload = event.payload if isinstance(event.payload, dict) else {}
        approval_id, decision = payload.get("id"), payload.get("decision")
        if not isinstance(approval_id, str) or decision not in DECISIONS:
            return
        who = payload.get("resolvedBy")
        label = f"{who} (in OpenClaw)" if isinstance(who, str) and who else "OpenClaw"
        async with self.db.transaction():
            changed = await self.db.changed("approvals.resolved_elsewhere", id=approval_id, decision=decision,
                                            label=label[:200], now=now_iso(), stale_before=stale_before())
            if changed:
                await audit.record(self.db, GATEWAY, "approval.resolved", "approval", approval_id,
                                   {"decision": decision, "resolvedBy": label})
        if changed:
            await publish(self.db, self.hub, "approval.resolved", approval_id, GATEWAY)

    # --- resync ----------------------------------------------------------------------------------------

    async def on_connect(self, _hello: dict) -> None:
        await self.resync()

    def schedule_resync(self) -> None:
        if self._resync is None or self._resync.done():
            self._resync = asyncio.create_task(self._resync_quietly(), name="approvals-resync")

    async def _resync_quietly(self) -> None:
        with contextlib.suppress(GatewayError, DatabaseUnavailable):
            await self.resync()

    async def resync(self) -> dict[str, int]:
        """Add what the gateway has pending and we miss; close what we hold pending and it no longer lists."""
        # Stored times have millisecond resolution: start the next millisecond, so every row this process
        # touched before the resync (e.g. a claim released just now) is strictly older than `listed_at`.
        await asyncio.sleep(0.002)
        listed_at = now_iso()
        items = await self.gateway.request("exec.approval.list")
        items = items if isinstance(items, list) else []  # the gateway answers null when nothing is pending
        added = 0
        for item in items:
            added += await self.ingest(item)
        ids = [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
        async with self.db.transaction():
            closed = await self.db.all("approvals.close_vanished", ids=ids, listed_at=listed_at, now=now_iso(),
                                       stale_before=stale_before())
            for row in closed:
                await audit.record(self.db, GATEWAY, "approval.closed", "approval", row["id"],
                                   {"command": row["command"][:500], "reason": "no longer pending on the gateway"})
        for row in closed:
            await publish(self.db, self.hub, "approval.closed", row["id"], GATEWAY)
        if added or closed:
            log.info("approvals resynced with the gateway", extra={"added": added, "closed": len(closed)})
        return {"added": added, "closed": len(closed), "pending": len(ids)}

    # --- expiry ----------------------------------------------------------------------------------------

    async def expire_due(self) -> int:
        async with self.db.transaction():
            expired = await self.db.all("approvals.expire_due", now=now_iso(), stale_before=stale_before())
            for row in expired:
                await audit.record(self.db, GATEWAY, "approval.expired", "approval", row["id"],
                                   {"command": row["command"][:500]})
        for row in expired:
            await publish(self.db, self.hub, "approval.expired", row["id"], GATEWAY)
        return len(expired)

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL)
            try:
                await self.expire_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be briefly down; try again next round
                log.warning("could not expire approvals: %s", exc)
