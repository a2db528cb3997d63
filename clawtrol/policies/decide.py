"""Applying the rules to an approval as it arrives (clawtrol/approvals/sync.py), and the dry run.

The arriving row is matched inside the transaction that inserts it. A rule that allows or denies claims the
row there and then (approvals.claim, the same conditional claim a person's decision takes, with the rule
named on it), so no one is ever shown it as waiting; the caller then sends the decision to the gateway and
confirms it, as for a person (approvals/service.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ..approvals.model import decisions_of
from ..approvals.gate import stale_before
from ..audit import Actor
from ..clock import now_iso
from ..db import Database
from ..errors import InvalidInput
from .matching import ASK, Rule, Subject, Verdict, evaluate
from .rules import rule_json

log = logging.getLogger(__name__)

TEST_FIELDS = frozenset({"command", "agentId", "cwd", "host", "projectId", "gatewayId"})


def policy_actor(rule: Rule) -> Actor:
    """Who an automatic decision is recorded as: the system, labelled with the rule's name."""
    return Actor(kind="system", label=f"policy: {rule.name}")


@dataclass(frozen=True)
class Claim:
    """An approval a rule claimed: the decision to send and the claim's time (approvals.confirm/release)."""

    gateway_id: str
    approval_id: str
    decision: str
    rule: Rule
    claimed_at: str

    @property
    def actor(self) -> Actor:
        return policy_actor(self.rule)


async def rules_in_force(db: Database, now: str) -> list[Rule]:
    return [Rule.from_row(row) for row in await db.all("approval_rules.in_force", now=now)]


class RuleBook:
    """A process's copy of the rules in force, read again only when `approval_rules.version` moved (every rule
    change moves it), and at least every MAX_AGE seconds whatever it says. Checking the version is one small
    read; reading 200 rules is ten times that (bench/rules.py). A rule that expires while kept here is
    skipped by `evaluate`, which checks every rule's expiry."""

    MAX_AGE = 2.0

    def __init__(self, db: Database):
        self.db = db
        self._rules: list[Rule] | None = None
        self._version: tuple | None = None
        self._read_at = 0.0

    async def rules(self, now: str) -> list[Rule]:
        stamp = await self.db.one("approval_rules.version")
        version = (stamp["rules"], stamp["changed"])
        if self._rules is None or version != self._version or time.monotonic() - self._read_at > self.MAX_AGE:
            self._rules = await rules_in_force(self.db, now)  # read after the version: never older than it says
            self._version, self._read_at = version, time.monotonic()
        return self._rules


async def verdict_for(book: RuleBook, row: dict, now: str) -> Verdict:
    """What the rules say about an approval row (approval_rows: its project is the linked task's)."""
    verdict = evaluate(await book.rules(now), Subject.from_approval(row), now)
    if verdict.timed_out:
        log.warning("approval rules took too long to match a command; it is left to a person",
                    extra={"approval": row["id"]})
    return verdict


async def claim_if_decided(db: Database, book: RuleBook, gateway_id: str, approval_id: str) -> Claim | None:
    """Inside the transaction that stored the approval: claim it for the first matching rule that allows or
    denies it. None when it is left to a person (no rule, an `ask` rule, a decision the request does not
    offer)."""
    row = await db.one("approvals.get", gateway_id=gateway_id, id=approval_id)
    now = now_iso()
    if row is None or row["status"] != "pending" or (row.get("expires_at") and row["expires_at"] <= now):
        return None
    verdict = await verdict_for(book, row, now)
    if verdict.rule is None or verdict.action == "ask":
        return None
    if verdict.action not in decisions_of(row):
        log.info("an approval rule's decision is not offered by the request; left to a person",
                 extra={"approval": approval_id, "rule": verdict.rule.name, "decision": verdict.action})
        return None
    actor = policy_actor(verdict.rule)
    claimed = await db.changed("approvals.claim", gateway_id=gateway_id, id=approval_id, decision=verdict.action,
                               user_id=None, token_id=None, label=actor.label, now=now, stale_before=stale_before())
    if not claimed:
        return None
    await db.changed("approval_rules.mark_claim", gateway_id=gateway_id, id=approval_id, rule_id=verdict.rule.id,
                     claimed_at=now)
    return Claim(gateway_id, approval_id, verdict.action, verdict.rule, now)


def _test_text(body: dict, field: str, required: bool = False) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{field}: required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be a string", field=field)
    return value


async def dry_run(db: Database, body: dict[str, Any]) -> dict:
    """POST /api/approval-rules/test: which rule would decide such an approval now. Decides nothing."""
    unknown = sorted(set(body) - TEST_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(TEST_FIELDS))}",
                           field=unknown[0])
    subject = Subject(_test_text(body, "command", required=True), _test_text(body, "agentId"),
                      _test_text(body, "cwd"), _test_text(body, "host"), _test_text(body, "projectId"),
                      _test_text(body, "gatewayId"))
    now = now_iso()
    verdict = evaluate(await rules_in_force(db, now), subject, now) if subject.command else ASK
    return {"action": verdict.action, "rule": rule_json(verdict.rule) if verdict.rule else None,
            **({"timedOut": True} if verdict.timed_out else {})}
