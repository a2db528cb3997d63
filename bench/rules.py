"""How long approval rules take per arriving approval, with 200 rules (issue #14: target < 1 ms).

    python bench/rules.py [--rules 200] [--rounds 2000] [--backend sqlite|postgres|both]

Measures, per approval:
- evaluation: matching one approval against the rules in memory (clawtrol/policies/matching.py `evaluate`),
  for a command no rule matches (every rule is tried: the worst case) and one the last rule matches;
- with the database: what the app adds when an approval arrives (clawtrol/policies/decide.py), on SQLite and
  on PostgreSQL, for a command no rule matches: checking the rules' version and evaluating the rules it keeps
  (the usual case), and reading all the rules again and evaluating them (the first approval after a change).

The rules are a mix: globs, regular expressions, agent-, directory- and host-scoped ones. PostgreSQL needs
BENCH_DATABASE_URL (a server where the script may create and drop a database), default
postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clawtrol.audit import SYSTEM  # noqa: E402
from clawtrol.clock import now_iso  # noqa: E402
from clawtrol.db import Database  # noqa: E402
from clawtrol.db.migrations import upgrade  # noqa: E402
from clawtrol.paths import SQL_MIGRATIONS  # noqa: E402
from clawtrol.policies import rules as rule_service  # noqa: E402
from clawtrol.policies.decide import RuleBook, rules_in_force  # noqa: E402
from clawtrol.policies.matching import Rule, Subject, evaluate  # noqa: E402

NO_MATCH = Subject("git push origin main --force", agent_id="main", cwd="/srv/app", host="gateway")


def rule_bodies(count: int) -> list[dict]:
    """`count` rules; none matches NO_MATCH, and only the last matches `last_match()`."""
    bodies = []
    for n in range(count - 1):
        kind = n % 5
        body = {"name": f"rule {n}", "action": ("allow-once", "deny", "ask")[n % 3]}
        if kind == 0:
            body["commandPattern"] = f"tool{n} *"
        elif kind == 1:
            body["commandPattern"] = f"/^svc{n} (start|stop|status)( --[a-z]+)*$/"
        elif kind == 2:
            body.update(agentId=f"agent{n}", commandPattern="make *")
        elif kind == 3:
            body.update(cwdPrefix=f"/srv/other{n}", commandPattern="npm *")
        else:
            body.update(host=f"edge{n}", commandPattern="/^(ls|cat|head) .*$/")
        bodies.append(body)
    bodies.append({"name": "the last", "action": "allow-once", "commandPattern": "pytest *"})
    return bodies


def last_match() -> Subject:
    return Subject("pytest -q tests/", agent_id="main", cwd="/srv/app", host="gateway")


def timed(step, rounds: int) -> tuple[float, float]:
    """Mean and p99 of `step()` in microseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.fmean(samples), samples[int(len(samples) * 0.99) - 1]


async def timed_async(step, rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.fmean(samples), samples[int(len(samples) * 0.99) - 1]


def line(label: str, figures: tuple[float, float]) -> str:
    mean, p99 = figures
    verdict = "ok" if p99 < 1000 else "OVER 1 ms"
    return f"  {label:<46} mean {mean:8.1f} µs   p99 {p99:8.1f} µs   {verdict}"


async def with_database(url: str, count: int, rounds: int) -> list[str]:
    db = Database.open(url)
    await db.connect()
    try:
        await upgrade(db, SQL_MIGRATIONS)
        for body in rule_bodies(count):
            await rule_service.create(db, SYSTEM, body)

        book = RuleBook(db)

        async def as_the_app(subject: Subject):  # what ingesting an approval adds (policies/decide.py)
            now = now_iso()
            return evaluate(await book.rules(now), subject, now)

        async def after_a_change(subject: Subject):  # the rules changed since the last approval: read them all
            now = now_iso()
            return evaluate(await rules_in_force(db, now), subject, now)

        assert (await as_the_app(NO_MATCH)).rule is None
        assert (await as_the_app(last_match())).rule.name == "the last"
        for _ in range(50):  # warm up (prepared statements, caches)
            await after_a_change(NO_MATCH)
        return [line("rules unchanged: version check + evaluate", await timed_async(lambda: as_the_app(NO_MATCH),
                                                                                    rounds)),
                line("rules changed: read all + evaluate", await timed_async(lambda: after_a_change(NO_MATCH),
                                                                            rounds))]
    finally:
        await db.disconnect()


async def on_postgres(count: int, rounds: int) -> list[str]:
    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"clawtrol_bench_rules_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(admin_url)
        try:
            return await with_database(urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")), count,
                                       rounds)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()

    rules = [Rule(id=str(n), name=body["name"], action=body["action"], agent_id=body.get("agentId"),
                  command_pattern=body.get("commandPattern"), cwd_prefix=body.get("cwdPrefix"), host=body.get("host"))
             for n, body in enumerate(rule_bodies(args.rules))]
    now = now_iso()
    assert evaluate(rules, NO_MATCH, now).rule is None and evaluate(rules, last_match(), now).rule.name == "the last"
    print(f"Approval rules: {args.rules} rules, {args.rounds} approvals per figure")
    print("in memory:")
    print(line("evaluate, no rule matches (all tried)", timed(lambda: evaluate(rules, NO_MATCH, now), args.rounds)))
    print(line("evaluate, the last rule matches", timed(lambda: evaluate(rules, last_match(), now), args.rounds)))
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            print("SQLite:")
            for text in asyncio.run(with_database(f"sqlite:///{directory}/rules.db", args.rules, args.rounds)):
                print(text)
    if args.backend in ("postgres", "both"):
        print("PostgreSQL:")
        for text in asyncio.run(on_postgres(args.rules, args.rounds)):
            print(text)


if __name__ == "__main__":
    main()
