"""Keeps the approvals table in step with every gateway: requested and resolved events, a resync with
`exec.approval.list` after each gateway's (re)connect, and expiry. Approval identity is (gateway, approval id).

Every app process runs one of these on its own gateway connections. Ingestion is idempotent rather than led:
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
from ..gateway.client import GatewayError, GatewayEvent, GatewayUnavailable
from ..gateways.registry import GatewayRegistry
from ..live import Hub
from ..policies.decide import Claim, RuleBook, claim_if_decided
from ..webhooks import outbox as webhooks_outbox
from .model import DECISIONS, NotAnApproval, from_gateway
from .gate import publish, send_claimed, stale_before

log = logging.getLogger(__name__)

GATEWAY = Actor(kind="system", label="OpenClaw gateway")
EXPIRY_INTERVAL = 5.0


class ApprovalSync:
    def __init__(self, db: Database, hub: Hub, registry: GatewayRegistry):
        self.db = db
        self.hub = hub
        self.registry = registry
        self.rule_book = RuleBook(db)
        self._expiry: asyncio.Task | None = None
        self._resyncs: dict[str, asyncio.Task] = {}
        registry.on_event("exec.approval.requested", self.on_requested)
        registry.on_event("exec.approval.resolved", self.on_resolved)
        registry.on_connect(self.on_connect)

    async def start(self) -> None:
        if self._expiry is None:
            self._expiry = asyncio.create_task(self._expire_forever(), name="approvals-expiry")

    async def stop(self) -> None:
        for task in (self._expiry, *self._resyncs.values()):
            await background.stop(task)
        self._expiry, self._resyncs = None, {}

    # --- gateway events ------------------------------------------------------------------------------

    async def on_requested(self, gateway_id: str, event: GatewayEvent) -> None:
        await self.ingest(gateway_id, event.payload)

    async def ingest(self, gateway_id: str, payload: object) -> bool:
        """Store one requested approval; True if this call inserted it (and so audited and announced it)."""
        try:
            row = from_gateway(payload)
        except NotAnApproval as reason:
            log.warning("ignored an exec approval the gateway sent without %s", reason)
            return False
        claim = None
        async with self.db.transaction():
            inserted = await self.db.changed("approvals.insert", gateway_id=gateway_id, **row)
            if inserted:  # the rules, before anyone sees it
                claim = await claim_if_decided(self.db, self.rule_book, gateway_id, row["id"])
                await audit.record(self.db, GATEWAY, "approval.requested", "approval", row["id"], {
                    "gatewayId": gateway_id, "command": row["command"][:500], "agentId": row["agent_id"], "sessionKey": row["session_key"],
                    "host": row["host"], "expiresAt": row["expires_at"],
                    **({"ruleId": claim.rule.id, "rule": claim.rule.name} if claim else {})})
        if not inserted:
            return False
        if claim is None or not await self.decide_by_rule(claim):
            await publish(self.db, self.hub, "approval.requested", gateway_id, row["id"], GATEWAY)
        return True

    async def decide_by_rule(self, claim: Claim) -> bool:
        """Send a rule's decision through the same path as a person's (approvals/service.py). False if the
        gateway did not take it: the claim is released and the approval waits for a person."""
        row = await self.db.one("approvals.get", gateway_id=claim.gateway_id, id=claim.approval_id)
        connection = self.registry.get(claim.gateway_id)
        try:
            if connection is None or connection.client is None:
                raise GatewayUnavailable("the gateway was disabled or removed")
            confirmed = await send_claimed(self.db, connection.client, row, claim.decision, claim.claimed_at,
                                           claim.actor, "approval.auto_resolved",
                                           {"ruleId": claim.rule.id, "rule": claim.rule.name})
        except GatewayError as error:
            if connection is not None and connection.client is not None:
                self.schedule_resync(claim.gateway_id)  # it may have decided anyway, or dropped it
            log.warning("the gateway did not take an approval rule's decision; a person decides instead: %s", error,
                        extra={"approval": claim.approval_id, "gateway": claim.gateway_id, "rule": claim.rule.name})
            async with self.db.transaction():
                await webhooks_outbox.approval_left_to_a_person(self.db, claim.gateway_id, claim.approval_id)
            return False
        if confirmed:
            await publish(self.db, self.hub, "approval.resolved", claim.gateway_id, claim.approval_id, claim.actor)
        return True

    async def on_resolved(self, gateway_id: str, event: GatewayEvent) -> None:
        """A decision the gateway reports. Decisions taken through this app are already claimed and are
        confirmed by the resolving request; this records the ones taken elsewhere (OpenClaw's own UI)."""
        payload = event.payload if isinstance(event.payload, dict) else {}
        approval_id, decision = payload.get("id"), payload.get("decision")
        if not isinstance(approval_id, str) or decision not in DECISIONS:
            return
        who = payload.get("resolvedBy")
        label = f"{who} (in OpenClaw)" if isinstance(who, str) and who else "OpenClaw"
        async with self.db.transaction():
            changed = await self.db.changed("approvals.resolved_elsewhere", gateway_id=gateway_id, id=approval_id, decision=decision,
                                            label=label[:200], now=now_iso(), stale_before=stale_before())
            if changed:
                await audit.record(self.db, GATEWAY, "approval.resolved", "approval", approval_id,
                                   {"gatewayId": gateway_id, "decision": decision, "resolvedBy": label})
        if changed:
            await publish(self.db, self.hub, "approval.resolved", gateway_id, approval_id, GATEWAY)

    # --- resync ----------------------------------------------------------------------------------------

    async def on_connect(self, gateway_id: str, _hello: dict) -> None:
        await self.resync(gateway_id)

    def schedule_resync(self, gateway_id: str) -> None:
        running = self._resyncs.get(gateway_id)
        if running is None or running.done():
            self._resyncs[gateway_id] = asyncio.create_task(self._resync_quietly(gateway_id), name="approvals-resync")

    async def _resync_quietly(self, gateway_id: str) -> None:
        with contextlib.suppress(GatewayError, DatabaseUnavailable):
            await self.resync(gateway_id)

    async def resync(self, gateway_id: str) -> dict[str, int]:
        """Add what this gateway has pending and we miss; close what we hold pending and it no longer lists."""
        # Stored times have millisecond resolution: start the next millisecond, so every row this process
        # touched before the resync (e.g. a claim released just now) is strictly older than `listed_at`.
        await asyncio.sleep(0.002)
        listed_at = now_iso()
        connection = self.registry.get(gateway_id)
        if connection is None or connection.client is None:
            return {"added": 0, "closed": 0, "pending": 0}  # disabled or removed meanwhile
        items = await connection.client.request("exec.approval.list")
        items = items if isinstance(items, list) else []  # the gateway answers null when nothing is pending
        added = 0
        for item in items:
            added += await self.ingest(gateway_id, item)
        ids = [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
        async with self.db.transaction():
            closed = await self.db.all("approvals.close_vanished", gateway_id=gateway_id, ids=ids, listed_at=listed_at, now=now_iso(),
                                       stale_before=stale_before())
            for row in closed:
                await audit.record(self.db, GATEWAY, "approval.closed", "approval", row["id"],
                                   {"gatewayId": gateway_id, "command": row["command"][:500],
                                    "reason": "no longer pending on the gateway"})
        for row in closed:
            await publish(self.db, self.hub, "approval.closed", gateway_id, row["id"], GATEWAY)
        if added or closed:
            log.info("approvals resynced with the gateway",
                     extra={"gateway": gateway_id, "added": added, "closed": len(closed)})
        return {"added": added, "closed": len(closed), "pending": len(ids)}

    # --- expiry ----------------------------------------------------------------------------------------

    async def expire_due(self) -> int:
        async with self.db.transaction():
            expired = await self.db.all("approvals.expire_due", now=now_iso(), stale_before=stale_before())
            for row in expired:
                await audit.record(self.db, GATEWAY, "approval.expired", "approval", row["id"],
                                   {"gatewayId": row["gateway_id"], "command": row["command"][:500]})
        for row in expired:
            await publish(self.db, self.hub, "approval.expired", row["gateway_id"], row["id"], GATEWAY)
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
