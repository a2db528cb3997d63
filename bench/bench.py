"""Benchmark Mission Clawtrol against the framework's own floor, over real HTTP with wrk.

    python bench/bench.py [--backend sqlite|postgres] [--tasks 10000] [--seconds 10] [--connections 16]

For each backend: seed N tasks (40% done), start `clawtrol serve` (one worker) and, beside it, the floor —
a hello-world Quart + Hypercorn JSON route (bench/floor.py), on the same event loop (uvloop) — then load
each with `wrk -t1 -cC -dS`, one operation at a time, each right after a load of the floor. Every figure is
printed as requests/s, p50 and p99 latency, and as a fraction of the floor measured just before it in the
same run, so runs on different machines (or a machine whose speed drifts) compare. Also reported: the live-update
latency from one client's PATCH to another client's WebSocket message while the PATCH load runs, the
server's resident memory after the run, and errors (non-2xx answers, socket errors).

Needs `wrk` (Debian package wrk). PostgreSQL needs BENCH_DATABASE_URL (a server URL where the script may
create and drop databases), default postgresql://postgres@127.0.0.1:5432/postgres. The load generator shares
the machine with the server, so absolute figures are indicative; the fractions are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quart_auth.extension import _AuthSerializer  # noqa: E402

from clawtrol.audit import SYSTEM  # noqa: E402
from clawtrol.auth import tokens, users  # noqa: E402
from clawtrol.cli import event_loop  # noqa: E402
from clawtrol.clock import iso, new_id, utcnow  # noqa: E402
from clawtrol.db import Database  # noqa: E402
from clawtrol.db.migrations import upgrade  # noqa: E402
from clawtrol.paths import SQL_MIGRATIONS  # noqa: E402
from clawtrol.tasks.model import EDITABLE_COLUMNS, PRIORITIES, STATUSES  # noqa: E402

WORDS = "fix add refactor document test deploy review migrate billing login search cache queue api board".split()
SECRET = "b" * 48
COOKIE_SALT = "clawtrol-session"  # clawtrol/auth/guard.py
# The targets, as fractions of the floor (one worker, 10,000 tasks, wrk -c16).
TARGETS = {"GET /api/tasks/:id": 0.50, "PATCH /api/tasks/:id": 0.25, "POST /api/tasks/:id/comments": 0.25,
           "GET /api/costs/summary": 0.12, "GET /board": 0.025, "GET /api/tasks": 0.05}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def seed(url: str, count: int) -> dict:
    """Migrate, insert `count` tasks in batches; an admin token and an admin browser session."""
    db = Database.open(url)
    await db.connect()
    try:
        await upgrade(db, SQL_MIGRATIONS)
        rng = random.Random(42)
        now = utcnow().replace(microsecond=0)
        ids = []
        for start in range(0, count, 500):
            async with db.transaction():
                for n in range(start, min(start + 500, count)):
                    status = rng.choices(STATUSES, weights=(15, 15, 15, 15, 40))[0]
                    created = iso(now - timedelta(minutes=count - n))
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
                    task_id = new_id()
                    await db.changed("tasks.insert", id=task_id, created_by=None, created_by_token=None,
                                     created_at=created, updated_at=created,
                                     completed_at=created if status == "done" else None, **task)
                    if status != "done":
                        ids.append(task_id)
        _, token = await tokens.create(db, SYSTEM, "bench", "admin", None)
        # the first user to sign in becomes admin; the board is measured with this browser session
        user, raw_session = await users.sign_in(db, users.Identity(login="bench", github_id=1, name="Bench"),
                                                "127.0.0.1", "bench")
    finally:
        await db.disconnect()
    if not url.startswith("sqlite"):
        # What autovacuum would do shortly after a bulk load: planner statistics for the new rows.
        conn = await asyncpg.connect(url)
        await conn.execute("ANALYZE")
        await conn.close()
    cookie = _AuthSerializer(SECRET, COOKIE_SALT).dumps(raw_session)
    return {"token": token, "cookie": f"clawtrol_session={cookie}", "ids": ids, "user": user}


LUA = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
local method, kind = "%(method)s", "%(kind)s"
math.randomseed(os.time())
request = function()
  local id = ids[math.random(#ids)]
  if kind == "patch" then
    return wrk.format("PATCH", "/api/tasks/" .. id, nil, '{"priority": "P' .. math.random(0, 3) .. '"}')
  elseif kind == "comment" then
    return wrk.format("POST", "/api/tasks/" .. id .. "/comments", nil, '{"content": "bench comment"}')
  else
    return wrk.format("GET", "/api/tasks/" .. id, nil, nil)
  end
end
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in socket.groups()) if socket else 0
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "errors": errors}


def wrk(url: str, seconds: float, connections: int, headers: dict[str, str], script: Path | None = None) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run(command + [url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


async def live_during(base: str, token: str, ids: list[str], load: asyncio.Future, rounds: int = 40) -> dict:
    """While `load` runs: one client PATCHes, another waits for the event on /ws; the time between."""
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    async with websockets.connect(base.replace("http://", "ws://") + "/ws", additional_headers=headers) as ws, \
            httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        await ws.recv()  # connected
        for n in range(rounds):
            if load.done():
                break
            task_id = random.choice(ids)
            started = time.perf_counter()
            await client.patch(f"/api/tasks/{task_id}", json={"title": f"live {n} {uuid.uuid4().hex[:6]}"})
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if event["type"] == "task.updated" and event["payload"]["task"]["id"] == task_id:
                    break
            samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.1)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[int(len(samples) * 0.95) - 1], "n": len(samples)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """A server whose output goes to a file (a pipe nobody reads would stall it once full)."""
    with log.open("ab") as output:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)


def wait_up(url: str) -> None:
    for _ in range(150):
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not come up")


def run_backend(backend: str, count: int, seconds: float, connections: int, workdir: Path) -> list[tuple]:
    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"clawtrol_bench_{count}_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{count}.db'}"
    else:
        async def create() -> None:
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
        asyncio.run(create())
        parts = urlsplit(admin_url)
        url = urlunsplit(("postgresql", parts.netloc, "/" + name, "", ""))
    print(f"\n== {backend}, {count} tasks: seeding …", flush=True)
    seeded = asyncio.run(seed(url, count))
    ids_file = workdir / "ids.txt"
    ids_file.write_text("\n".join(seeded["ids"]) + "\n")
    scripts = {}
    for kind in ("get", "patch", "comment"):
        scripts[kind] = workdir / f"{kind}.lua"
        scripts[kind].write_text(LUA % {"ids": ids_file, "method": kind, "kind": kind})

    port, floor_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": url, "CLAWTROL_ENV": "production", "SESSION_SECRET": SECRET,
           "GITHUB_CLIENT_ID": "bench", "GITHUB_CLIENT_SECRET": "bench", "PORT": str(port),
           "CLAWTROL_DATA_DIR": str(workdir), "LOG_LEVEL": "WARNING", "GATEWAY_URL": "ws://127.0.0.1:9"}
    server = start([sys.executable, "-m", "clawtrol", "serve"], env, workdir, workdir / "server.log")
    floor = start([sys.executable, "-m", "hypercorn", "--worker-class", event_loop(), "bench.floor:app",
                   "--bind", f"127.0.0.1:{floor_port}"],
                  {**os.environ, "PYTHONPATH": str(ROOT)}, ROOT, workdir / "floor.log")
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {seeded['token']}", "Content-Type": "application/json"}
    rows: list[tuple] = []
    try:
        wait_up(base + "/api/health")
        wait_up(f"http://127.0.0.1:{floor_port}/ping")
        floor_url = f"http://127.0.0.1:{floor_port}/ping"

        def measure(label: str, run) -> None:
            """The floor, then the operation right after it: each is compared with the floor next to it, so
            a machine whose speed drifts during the run (shared cores) skews the fraction less."""
            floor = wrk(floor_url, seconds / 2, connections, {})
            floors.append(floor)
            rows.append((label, run(), floor["rps"]))

        floors: list[dict] = []
        measure("GET /api/tasks/:id", lambda: wrk(base + "/", seconds, connections, bearer, scripts["get"]))

        def patch_with_live() -> dict:
            nonlocal live
            loop = asyncio.new_event_loop()
            try:
                future = loop.run_in_executor(None, wrk, base + "/", seconds, connections, bearer, scripts["patch"])
                live = loop.run_until_complete(live_during(base, seeded["token"], seeded["ids"], future))
                return loop.run_until_complete(future)
            finally:
                loop.close()
        live: dict = {}
        measure("PATCH /api/tasks/:id", patch_with_live)
        measure("POST /api/tasks/:id/comments", lambda: wrk(base + "/", seconds, connections, bearer,
                                                            scripts["comment"]))
        measure("GET /api/costs/summary", lambda: wrk(base + "/api/costs/summary", seconds, connections, bearer))
        measure("GET /board", lambda: wrk(base + "/board", seconds, connections, {"Cookie": seeded["cookie"]}))
        measure("GET /api/tasks", lambda: wrk(base + "/api/tasks?limit=200", seconds, connections, bearer))
        floor_mean = {key: statistics.mean(f[key] for f in floors) for key in ("rps", "p50", "p99")}
        rows.insert(0, ("floor: hello-world Quart route", {**floor_mean, "errors": sum(f["errors"] for f in floors)},
                        floor_mean["rps"]))
        memory = rss_mb(server.pid)
    finally:
        for process in (server, floor):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        if backend == "postgres":
            async def drop() -> None:
                admin = await asyncpg.connect(admin_url)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
            asyncio.run(drop())
    print(f"{'operation':<32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'× floor':>8} {'target':>7} {'errors':>7}")
    for label, r, floor_rps in rows:
        target = TARGETS.get(label)
        print(f"{label:<32} {r['rps']:9.1f} {r['p50']:8.2f} {r['p99']:8.2f} {r['rps'] / floor_rps:8.3f} "
              f"{target if target else '':>7} {r['errors']:7d}")
    print(f"{'live update A→B during PATCH load':<32} p50 {live['p50']:.1f} ms, p95 {live['p95']:.1f} ms "
          f"({live['n']} events)")
    print(f"{'server RSS after the run':<32} {memory:.1f} MB")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: needs wrk (apt-get install wrk)")
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend or ["sqlite", "postgres"]:
            run_backend(backend, args.tasks, args.seconds, args.connections, Path(tmp))


if __name__ == "__main__":
    main()
