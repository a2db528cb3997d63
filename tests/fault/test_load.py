"""Load: 30 simulated users for 60 s against `clawtrol serve` on PostgreSQL — reading the board and the API,
creating and moving tasks, commenting, and racing to decide approvals raised on the real gateway — with no
5xx and no lost update: every accepted write is in the database and in the audit log exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg

from clawtrol.gateway.client import GatewayClient, GatewayError
from clawtrol.gateway.identity import KEY_FILE_NAME
from clawtrol.gateway.state import GatewayState

from ..conftest import make_environ
from .harness import (POSTGRES_ONLY, ApiUser, Ledger, Traffic, cli_token, gateway_reported, make_users, simulate,
                      verify_ledger, wait_until)

pytestmark = POSTGRES_ONLY

DURATION = 60.0
USERS = {"admin": 8, "member": 16, "viewer": 6}
APPROVAL_EVERY = 2.0      # seconds between approvals raised on the gateway
APPROVAL_QUIET = 10.0     # no new approvals in the last seconds of the run, so all are decided by the end
APPROVAL_PREFIX = "echo clawtrol-load-"
DECISIONS = ("allow-once", "allow-always", "deny")


@dataclass(frozen=True)
class Attempt:
    user: str
    status: int
    decision: str
    body: str


@dataclass
class ApprovalRace:
    """The approval part of the load: a requester raises approvals on the gateway, admins race to decide."""

    raised: set[str] = field(default_factory=set)                    # ids the gateway accepted
    finals: dict[str, dict] = field(default_factory=dict)            # id -> the requester's final answer
    attempts: dict[str, list[Attempt]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)

    async def request(self, requester: GatewayClient, n: int) -> None:
        params = {"command": f"{APPROVAL_PREFIX}{n}", "host": "gateway", "twoPhase": True, "timeoutMs": 120_000,
                  "agentId": "main", "sessionKey": "agent:main:main"}
        try:
            final = await requester.request("exec.approval.request", params, expect_final=True, timeout=15,
                                            on_accepted=lambda accepted: self.raised.add(accepted["id"]))
        except GatewayError as error:
            self.errors.append(f"approval {n}: {error}")
            return
        self.finals[final["id"]] = final

    async def raise_until(self, requester: GatewayClient, stop_at: float) -> list[asyncio.Task]:
        requests = []
        while time.monotonic() < stop_at:
            requests.append(asyncio.create_task(self.request(requester, len(requests))))
            await asyncio.sleep(APPROVAL_EVERY)
        return requests

    async def decide_one(self, user: ApiUser) -> None:
        """Read the queue and decide the oldest of our pending approvals, as every admin does at once."""
        response = await user.call("GET /api/approvals", "GET", "/api/approvals")
        if response is None or response.status_code != 200:
            return
        ours = [a for a in response.json()["pending"] if a["command"].startswith(APPROVAL_PREFIX)]
        if not ours:
            return
        approval = min(ours, key=lambda a: a["requestedAt"])
        decision = user.rng.choice(DECISIONS)
        response = await user.call("POST /api/approvals/:id/resolve", "POST",
                                   f"/api/approvals/{approval['id']}/resolve", json={"decision": decision})
        if response is not None:
            self.attempts[approval["id"]].append(Attempt(user.name, response.status_code, decision, response.text))


def lost_to_winner(body: str, winner: str) -> bool:
    """A 409 that says the approval is (being) resolved by the user who won."""
    answer = json.loads(body)
    return answer.get("code") == "ALREADY_RESOLVED" and f"resolved by {winner} " in answer["error"]


async def verify_approvals(database_url: str, race: ApprovalRace) -> list[str]:
    """Each approval raised: decided exactly once (one 200, every other attempt 409 naming the winner), the
    requester got the winning decision, the database holds it, and it is audited once when requested and
    once when resolved."""
    conn = await asyncpg.connect(database_url)
    try:
        stored = {row["id"]: row for row in await conn.fetch("SELECT id, status, decision FROM approvals")}
        audit = await conn.fetch("SELECT action, entity_id FROM audit_log WHERE entity_type = 'approval'")
    finally:
        await conn.close()
    audited = defaultdict(int)
    for row in audit:
        audited[(row["action"], row["entity_id"])] += 1
    problems = list(race.errors)
    problems += [f"approval {a} decided by users but never raised" for a in set(race.attempts) - race.raised]
    for approval_id in sorted(race.raised):
        attempts = race.attempts.get(approval_id, [])
        winners = [a for a in attempts if a.status == 200]
        if len(winners) != 1:
            problems.append(f"approval {approval_id}: {len(winners)} successful decisions of {len(attempts)}")
            continue
        decision = winners[0].decision
        problems += [f"approval {approval_id}: {a.user} got {a.status} {a.body[:200]}" for a in attempts
                     if a.status != 200 and (a.status != 409 or not lost_to_winner(a.body, winners[0].user))]
        if race.finals.get(approval_id, {}).get("decision") != decision:
            problems.append(f"approval {approval_id}: requester got {race.finals.get(approval_id)}, "
                            f"the winner chose {decision}")
        row = stored.get(approval_id)
        if row is None or (row["status"], row["decision"]) != ("resolved", decision):
            problems.append(f"approval {approval_id}: stored as {row and dict(row)}, the winner chose {decision}")
        for action in ("approval.requested", "approval.resolved"):
            if audited[(action, approval_id)] != 1:
                problems.append(f"approval {approval_id}: {audited[(action, approval_id)]} {action} audit rows")
    return problems


async def test_thirty_users_for_a_minute(database_url, real_gateway, serve, tmp_path):
    environ = make_environ(database_url, tmp_path, GATEWAY_URL=real_gateway.url, GATEWAY_TOKEN=real_gateway.token)
    admin_token = cli_token(environ, "admin-0", "admin")
    app = serve(environ)
    assert await wait_until(lambda: gateway_reported(app.base), 30) is not None, "the app never reached the gateway"
    traffic, ledger, race, stop = Traffic(), Ledger(), ApprovalRace(), asyncio.Event()
    users = await make_users(app.base, admin_token, traffic, USERS)
    requester = GatewayClient(real_gateway.url, real_gateway.token, state=GatewayState(),
                              identity_path=tmp_path / "requester" / KEY_FILE_NAME)
    await requester.start()
    try:
        await requester.wait_connected(30)
        asyncio.get_running_loop().call_later(DURATION, stop.set)
        raising = asyncio.create_task(race.raise_until(requester, time.monotonic() + DURATION - APPROVAL_QUIET))
        await asyncio.gather(*(simulate(user, ledger, stop, race.decide_one) for user in users))
        requests = await raising
        await asyncio.wait(requests, timeout=30)  # decided ones have answered already
    finally:
        await requester.stop()
        await asyncio.gather(*(user.aclose() for user in users))

    traffic.report(f"{len(users)} users for {DURATION:.0f} s on PostgreSQL")
    conflicts = traffic.statuses()[409]
    raced = sum(1 for attempts in race.attempts.values() if len(attempts) > 1)
    print(f"   accepted: {len(ledger.created)} tasks created, {len(ledger.moves)} moves, {len(ledger.comments)} "
          f"comments, {len(race.finals)} of {len(race.raised)} approvals decided ({raced} raced by several admins); "
          f"{conflicts} answers 409")
    assert not traffic.failures(), traffic.failures()[:10]
    assert all(s.status == 200 for s in traffic.samples if s.label.startswith("GET")), "a read was refused"
    assert not ledger.anomalies, ledger.anomalies[:10]
    assert not app.unhandled, app.unhandled[:5]
    assert len(ledger.moves) > 100 and len(ledger.comments) > 50, "the load did too little to prove anything"
    assert any(s.label.startswith("PATCH") and s.status == 409 for s in traffic.samples), "no move ever raced"
    problems = await verify_ledger(database_url, ledger, exact=True)
    assert not problems, "\n".join(problems[:30])
    assert raced > 0, "no approval was raced by two admins"
    problems = await verify_approvals(database_url, race)
    assert not problems, "\n".join(problems[:30])
