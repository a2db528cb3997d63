"""Benchmark Mission Clawtrol: seed N tasks, serve with `clawtrol serve`, and measure over real HTTP.

    python bench/bench.py [--backend sqlite|postgres] [--tasks 1000 10000] [--seconds 10] [--concurrency 10]

For each task count it reports requests/s, p50 and p99 latency for the board page, GET /api/tasks,
PATCH /api/tasks/:id and POST /api/approvals/:id/resolve (approvals raised on the in-process fake gateway
of tests/fake_gateway.py, which the server connects to), the live-update latency from one client's PATCH to another client's WebSocket
message, and the server's resident memory. PostgreSQL needs BENCH_DATABASE_URL (a server URL where the
script may create and drop databases), default postgresql://postgres@127.0.0.1:5432/postgres.
The load generator shares the machine with the server, so figures are indicative, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clawtrol.audit import SYSTEM  # noqa: E402
from clawtrol.auth import tokens  # noqa: E402
from clawtrol.clock import iso, new_id, utcnow  # noqa: E402
from clawtrol.db import Database, QueryCatalog  # noqa: E402
from clawtrol.db.migrations import upgrade  # noqa: E402
from clawtrol.paths import SQL_MIGRATIONS, SQL_QUERIES  # noqa: E402
from clawtrol.tasks.model import EDITABLE_COLUMNS, PRIORITIES, STATUSES  # noqa: E402
from tests.fake_gateway import FakeGateway  # noqa: E402

WORDS = "fix add refactor document test deploy review migrate billing login search cache queue api board".split()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def seed(url: str, count: int) -> str:
    """Migrate, insert `count` tasks (40% done) in batches, and return an admin API token."""
    db = Database(url, QueryCatalog.load(SQL_QUERIES, "sqlite" if url.startswith("sqlite") else "postgres"))
    await db.connect()
    try:
        await upgrade(db, SQL_MIGRATIONS)
        rng = random.Random(42)
        now = utcnow()
        for start in range(0, count, 500):
            async with db.transaction():
                for n in range(start, min(start + 500, count)):
                    status = rng.choices(STATUSES, weights=(15, 15, 15, 15, 40))[0]
                    created = iso(now.replace(microsecond=0) - __import__("datetime").timedelta(minutes=count - n))
                    task = {column: None for column in EDITABLE_COLUMNS}
                    task.update(title=" ".join(rng.sample(WORDS, 4)) + f" #{n}", description="Seeded task " * 5,
                                status=status, priority=rng.choice(PRIORITIES), agent_id=rng.choice(["dev", "qa", "ops"]))
                    if status == "done":
                        task.update(cost=round(rng.uniform(0.01, 3), 4), lines_added=rng.randint(1, 400),
                                    lines_removed=rng.randint(0, 200), runtime=rng.randint(10_000, 900_000),
                                    model="anthropic/claude-sonnet-4-5")
                        task["lines_total"] = task["lines_added"] + task["lines_removed"]
                        task["estimated_human_minutes"] = task["lines_total"] * 3.0
                        task["human_cost"] = round(task["estimated_human_minutes"] / 60 * 100, 2)
                    await db.changed("tasks.insert", id=new_id(), created_by=None, created_by_token=None,
                                     created_at=created, updated_at=created,
                                     completed_at=created if status == "done" else None, **task)
        _, raw = await tokens.create(db, SYSTEM, "bench", "admin", None)
    finally:
        await db.disconnect()
    if not url.startswith("sqlite"):
        # What autovacuum would do shortly after a bulk load: planner statistics for the new rows.
        conn = await asyncpg.connect(url)
        await conn.execute("ANALYZE")
        await conn.close()
    return raw


async def measure(client: httpx.AsyncClient, seconds: float, concurrency: int, request) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await request(client)
            if response is None:  # the request's supply ran out
                return
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 400:
                errors += 1

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "n": len(latencies),
        "errors": errors,
    }


async def live_latency(base: str, token: str, task_ids: list[str], rounds: int = 30) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = base.replace("http://", "ws://") + "/ws"
    samples = []
    async with websockets.connect(ws_url, additional_headers=headers) as ws, \
            httpx.AsyncClient(base_url=base, headers=headers) as client:
        await ws.recv()  # connected
        for n in range(rounds):
            task_id = random.choice(task_ids)
            started = time.perf_counter()
            await client.patch(f"/api/tasks/{task_id}", json={"title": f"live {n} {uuid.uuid4().hex[:6]}"})
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if event["type"] == "task.updated" and event["payload"]["task"]["id"] == task_id:
                    break
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p99": samples[-1], "n": len(samples)}


async def approval_resolve(client: httpx.AsyncClient, gateway: FakeGateway, seconds: float, concurrency: int,
                           pool: int = 1500) -> dict:
    """Raise `pool` approvals on the gateway, wait until the server holds them all, then resolve them."""
    ids = iter([(await gateway.raise_approval(f"echo bench {n}", expires_in_ms=600_000))["id"] for n in range(pool)])
    for _ in range(600):
        if (await client.get("/api/approvals/status")).json()["pendingCount"] >= pool:
            break
        await asyncio.sleep(0.1)

    async def resolve(c: httpx.AsyncClient):
        approval_id = next(ids, None)
        if approval_id is None:
            return None
        return await c.post(f"/api/approvals/{approval_id}/resolve", json={"decision": "allow-once"})
    return await measure(client, seconds, concurrency, resolve)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_one(backend: str, count: int, seconds: float, concurrency: int, workdir: Path) -> dict:
    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"clawtrol_bench_{count}_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{count}.db'}"
    else:
        parts = urlsplit(admin_url)
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = urlunsplit(("postgresql", parts.netloc, "/" + name, "", ""))
    print(f"\n== {backend}, {count} tasks: seeding …", flush=True)
    token = await seed(url, count)
    port = free_port()
    gateway = await FakeGateway(token="bench-gateway").__aenter__()
    env = {**os.environ, "DATABASE_URL": url, "CLAWTROL_ENV": "production", "SESSION_SECRET": "b" * 48,
           "GITHUB_CLIENT_ID": "bench", "GITHUB_CLIENT_SECRET": "bench", "PORT": str(port),
           "CLAWTROL_DATA_DIR": str(workdir), "LOG_LEVEL": "WARNING", "GATEWAY_URL": gateway.url,
           "GATEWAY_TOKEN": gateway.token}
    command = [sys.executable, "-m", "clawtrol", "serve"]
    print("$ " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                          if k in ("DATABASE_URL", "PORT", "CLAWTROL_ENV")) + " " + shlex.join(command), flush=True)
    server = subprocess.Popen(command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                     timeout=30, limits=httpx.Limits(max_connections=concurrency * 2)) as client:
            for _ in range(100):
                try:
                    if (await client.get("/api/health")).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
            listing = (await client.get("/api/tasks", params={"limit": 1000})).json()["tasks"]
            task_ids = [t["id"] for t in listing if t["status"] != "done"]
            results = {}
            results["board page"] = await measure(client, seconds, concurrency, lambda c: c.get("/board"))
            results["GET /api/tasks"] = await measure(client, seconds, concurrency, lambda c: c.get("/api/tasks"))
            results["PATCH /api/tasks/:id"] = await measure(
                client, seconds, concurrency,
                lambda c: c.patch(f"/api/tasks/{random.choice(task_ids)}", json={"description": uuid.uuid4().hex}))
            results["POST approval resolve"] = await approval_resolve(client, gateway, seconds, concurrency)
            live = await live_latency(base, token, task_ids)
            memory = rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
        await gateway.close()
        if backend == "postgres":
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    for label, r in results.items():
        print(f"{label:<22} {r['rps']:8.1f} req/s   p50 {r['p50']:7.1f} ms   p99 {r['p99']:7.1f} ms"
              f"   ({r['n']} requests, {r['errors']} errors)")
    print(f"{'live update A→B':<22} {'':>14}   p50 {live['p50']:7.1f} ms   p99 {live['p99']:7.1f} ms   ({live['n']} events)")
    print(f"{'server RSS':<22} {memory:8.1f} MB")
    return {"results": results, "live": live, "rss_mb": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append")
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend or ["sqlite", "postgres"]:
            for count in args.tasks:
                asyncio.run(run_one(backend, count, args.seconds, args.concurrency, Path(tmp)))


if __name__ == "__main__":
    main()
