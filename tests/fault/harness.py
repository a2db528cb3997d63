"""The fault and load suite's parts: the app as a real `clawtrol serve` process, simulated users talking HTTP
to it, a record of every request, the ledger of every write the app accepted, and the check of that ledger
against the database and its audit log."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from ..conftest import BACKEND
from ..helpers import free_port, run_cli, start_cli

POSTGRES_ONLY = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="the fault and load suite runs in the PostgreSQL pass only (set TEST_DATABASE_URL)")

MOVABLE = ("backlog", "todo", "in-progress")  # moves between these need no review checklist
START_BUDGET = 30.0
STOP_BUDGET = 15.0  # hypercorn's graceful timeout is 10 s


# --- the app process --------------------------------------------------------------------------------

class AppServer:
    """`python -m clawtrol serve` on a free port. Its output is drained by threads (a full pipe would stall
    the server); error-level log lines are kept for the test to inspect."""

    def __init__(self, environ: dict[str, str], cwd: Path):
        self.port = free_port()
        self.environ = {**environ, "PORT": str(self.port), "LOG_LEVEL": "WARNING"}
        self.cwd = cwd
        self.error_lines: list[str] = []
        self.process = None
        self._readers: list[threading.Thread] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_cli("serve", environ=self.environ, cwd=self.cwd)
        self._readers = [threading.Thread(target=self._drain, args=(stream,), daemon=True)
                         for stream in (self.process.stdout, self.process.stderr)]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + START_BUDGET
        while True:
            if self.process.poll() is not None:
                self._readers[1].join(5)
                pytest.fail(f"clawtrol serve exited with {self.process.returncode}:\n" + "\n".join(self.error_lines))
            try:
                httpx.get(f"{self.base}/api/health", timeout=2)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"clawtrol serve did not answer within {START_BUDGET:.0f} s")
                time.sleep(0.2)

    def _drain(self, stream) -> None:
        for line in stream:
            try:
                level = json.loads(line).get("level")
            except ValueError:
                level = "error"  # not one of our JSON lines: a traceback or a crash message
            if level in ("error", "critical"):
                self.error_lines.append(line.rstrip())

    def stop(self, timeout: float = STOP_BUDGET) -> float | None:
        """SIGTERM, then SIGKILL after `timeout` s. The seconds a graceful stop took; None if it had to be killed."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
            took = time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            took = None
        for reader in self._readers:
            reader.join(5)
        return took

    @property
    def unhandled(self) -> list[str]:
        """Log lines of errors the app did not expect (500s and crashes)."""
        return [line for line in self.error_lines if "unhandled error" in line or "Traceback" in line]


def cli_token(environ: dict[str, str], name: str, role: str) -> str:
    """A bearer token from `clawtrol token create`."""
    result = run_cli("token", "create", "--name", name, "--role", role, environ=environ)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def api_tokens(base: str, admin_token: str, names_and_roles: list[tuple[str, str]]) -> list[str]:
    """More bearer tokens, created by an admin through POST /api/tokens."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin_token}"},
                                 timeout=30) as client:
        tokens = []
        for name, role in names_and_roles:
            response = await client.post("/api/tokens", json={"name": name, "role": role})
            assert response.status_code == 201, response.text
            tokens.append(response.json()["token"])
        return tokens


async def wait_until(predicate, timeout: float, interval: float = 0.2) -> float | None:
    """Await `predicate()` until it is true; the seconds that took, or None if it never was within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(interval)
    return None


async def health(base: str) -> tuple[int, dict] | None:
    """GET /api/health: (status, body), or None when the app does not answer."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{base}/api/health")
    except httpx.HTTPError:
        return None
    return response.status_code, response.json()


async def gateway_reported(base: str, connected: bool = True) -> bool:
    """Whether /api/health answers and reports the gateway connected (or, with False, disconnected)."""
    answer = await health(base)
    return answer is not None and answer[1]["gateway"]["connected"] is connected


# --- requests and their figures ---------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    label: str
    status: int | None  # None: no answer (connection failed or the client timed out)
    started: float      # time.monotonic()
    seconds: float
    error: str = ""

    @property
    def ended(self) -> float:
        return self.started + self.seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Traffic:
    """Every request the simulated users made."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def statuses(self) -> Counter:
        return Counter(sample.status for sample in self.samples)

    def failures(self) -> list[Sample]:
        """Requests answered with a 5xx or not answered at all."""
        return [s for s in self.samples if s.status is None or s.status >= 500]

    def between(self, start: float, end: float) -> list[Sample]:
        """Requests sent after `start` and answered before `end`."""
        return [s for s in self.samples if s.started >= start and s.ended <= end]

    def report(self, title: str) -> None:
        elapsed = max(s.ended for s in self.samples) - min(s.started for s in self.samples)
        print(f"\n== {title}: {len(self.samples)} requests in {elapsed:.1f} s "
              f"({len(self.samples) / elapsed:.1f} req/s); statuses {dict(sorted(self.statuses().items(), key=str))}")
        by_label: dict[str, list[Sample]] = defaultdict(list)
        for sample in self.samples:
            by_label[sample.label].append(sample)
        for label, samples in sorted(by_label.items()):
            millis = [s.seconds * 1000 for s in samples]
            statuses = dict(sorted(Counter(s.status for s in samples).items(), key=str))
            print(f"   {label:<38} {len(samples):6d}   p50 {percentile(millis, 0.5):7.1f} ms   "
                  f"p99 {percentile(millis, 0.99):7.1f} ms   max {max(millis):7.1f} ms   {statuses}")


class ApiUser:
    """One simulated user: a bearer token and its own HTTP connection pool."""

    def __init__(self, name: str, role: str, token: str, base: str, traffic: Traffic, *, timeout: float = 30):
        self.name = name
        self.role = role
        self.traffic = traffic
        self.rng = random.Random(name)
        self.client = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                        timeout=timeout)

    async def call(self, label: str, method: str, path: str, **kwargs) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.traffic.samples.append(Sample(label, None, started, time.monotonic() - started, repr(exc)))
            return None
        self.traffic.samples.append(Sample(label, response.status_code, started, time.monotonic() - started))
        return response

    async def think(self, low: float = 0.05, high: float = 0.25) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    async def aclose(self) -> None:
        await self.client.aclose()


# --- accepted writes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Move:
    task_id: str
    before: str
    after: str
    version: int  # the task's version after the move


@dataclass
class Ledger:
    """Every write the app accepted (2xx), as the client saw it, and answers that contradicted the request."""

    created: dict[str, str] = field(default_factory=dict)                # task id -> title
    moves: list[Move] = field(default_factory=list)
    comments: dict[str, tuple[str, str]] = field(default_factory=dict)   # comment id -> (task id, content)
    anomalies: list[str] = field(default_factory=list)


async def create_task(user: ApiUser, ledger: Ledger) -> str | None:
    title = f"{user.name} task {uuid.uuid4().hex[:8]}"
    response = await user.call("POST /api/tasks", "POST", "/api/tasks", json={"title": title})
    if response is None or response.status_code != 201:
        return None
    task = response.json()
    if (task["title"], task["status"], task["version"]) != (title, "backlog", 1):
        ledger.anomalies.append(f"create answered {task}")
    ledger.created[task["id"]] = title
    return task["id"]


async def move_task(user: ApiUser, ledger: Ledger, task_id: str) -> None:
    """Read the task, then move it to another column with the version read: a 409 when someone was first."""
    response = await user.call("GET /api/tasks/:id", "GET", f"/api/tasks/{task_id}")
    if response is None or response.status_code != 200:
        return
    task = response.json()
    target = user.rng.choice([status for status in MOVABLE if status != task["status"]])
    response = await user.call("PATCH /api/tasks/:id", "PATCH", f"/api/tasks/{task_id}",
                               json={"status": target, "version": task["version"]})
    if response is None:
        return
    if response.status_code == 200:
        moved = response.json()
        if (moved["status"], moved["version"]) != (target, task["version"] + 1):
            ledger.anomalies.append(f"move of {task_id} v{task['version']} to {target} answered "
                                    f"{moved['status']} v{moved['version']}")
        ledger.moves.append(Move(task_id, task["status"], target, moved["version"]))
    elif response.status_code == 409 and response.json().get("code") != "VERSION_CONFLICT":
        ledger.anomalies.append(f"409 without VERSION_CONFLICT: {response.text}")


async def add_comment(user: ApiUser, ledger: Ledger, task_id: str) -> None:
    content = f"{user.name} says {uuid.uuid4().hex[:8]}"
    response = await user.call("POST /api/tasks/:id/comments", "POST", f"/api/tasks/{task_id}/comments",
                               json={"content": content})
    if response is None or response.status_code != 201:
        return
    comment = response.json()
    if (comment["taskId"], comment["content"]) != (task_id, content):
        ledger.anomalies.append(f"comment answered {comment}")
    ledger.comments[comment["id"]] = (task_id, content)


READS = (("GET /board", "/board"), ("GET /api/tasks", "/api/tasks"),
         ("GET /api/tasks?status=todo", "/api/tasks?status=todo"))
HOT_TASKS = 8        # admins often pick among the first tasks, so their moves race for the same rows
MAX_OWN_TASKS = 12


async def read_something(user: ApiUser) -> None:
    label, path = user.rng.choice(READS)
    await user.call(label, "GET", path)


def pick_task(user: ApiUser, ledger: Ledger) -> str:
    ids = list(ledger.created)
    return user.rng.choice(ids[:HOT_TASKS] if user.rng.random() < 0.5 else ids)


async def admin(user: ApiUser, ledger: Ledger, stop: asyncio.Event, decide=None) -> None:
    """Moves any task, comments, reads; with `decide(user)`, also decides approvals."""
    while not stop.is_set():
        roll = user.rng.random()
        if roll < 0.3 and decide is not None:
            await decide(user)
        elif roll < 0.6 and ledger.created:
            await move_task(user, ledger, pick_task(user, ledger))
        elif roll < 0.7 and ledger.created:
            await add_comment(user, ledger, pick_task(user, ledger))
        else:
            await read_something(user)
        await user.think()


async def member(user: ApiUser, ledger: Ledger, stop: asyncio.Event) -> None:
    """Creates tasks, moves its own (a member token may change only those), comments on any."""
    own: list[str] = []
    while not stop.is_set():
        roll = user.rng.random()
        if not own or (roll < 0.1 and len(own) < MAX_OWN_TASKS):
            task_id = await create_task(user, ledger)
            if task_id:
                own.append(task_id)
        elif roll < 0.45:
            await move_task(user, ledger, user.rng.choice(own))
        elif roll < 0.6:
            await add_comment(user, ledger, pick_task(user, ledger))
        else:
            await read_something(user)
        await user.think()


async def viewer(user: ApiUser, ledger: Ledger, stop: asyncio.Event) -> None:
    """Reads only: the board, the task API, single tasks and the approvals queue."""
    while not stop.is_set():
        roll = user.rng.random()
        if roll < 0.2:
            await user.call("GET /api/approvals", "GET", "/api/approvals")
        elif roll < 0.4 and ledger.created:
            await user.call("GET /api/tasks/:id", "GET", f"/api/tasks/{pick_task(user, ledger)}")
        else:
            await read_something(user)
        await user.think()


def simulate(user: ApiUser, ledger: Ledger, stop: asyncio.Event, decide=None):
    """The coroutine of `user`'s role, running until `stop` is set."""
    if user.role == "admin":
        return admin(user, ledger, stop, decide)
    return member(user, ledger, stop) if user.role == "member" else viewer(user, ledger, stop)


async def make_users(base: str, admin_token: str, traffic: Traffic, counts: dict[str, int], *,
                     timeout: float = 30) -> list[ApiUser]:
    """`counts` users per role, each with its own token: `admin_token` for the first admin, the others
    created over the API."""
    names = [(f"{role}-{n}", role) for role, count in counts.items() for n in range(count)]
    assert names[0][1] == "admin"
    tokens = [admin_token] + await api_tokens(base, admin_token, names[1:])
    return [ApiUser(name, role, token, base, traffic, timeout=timeout) for (name, role), token in zip(names, tokens)]


# --- the ledger against the database ----------------------------------------------------------------

async def _fetch(database_url: str) -> tuple[dict, dict, list[dict]]:
    conn = await asyncpg.connect(database_url)
    try:
        tasks = {row["id"]: dict(row) for row in await conn.fetch("SELECT id, title, status, version FROM tasks")}
        comments = {row["id"]: dict(row) for row in await conn.fetch("SELECT id, task_id, content FROM comments")}
        rows = await conn.fetch("SELECT action, entity_type, entity_id, details FROM audit_log "
                                "WHERE action LIKE 'task.%' OR action LIKE 'comment.%'")
        audit = [{**dict(row), "details": json.loads(row["details"]) if row["details"] else {}} for row in rows]
    finally:
        await conn.close()
    return tasks, comments, audit


@dataclass
class _Audit:
    """The task and comment audit rows, indexed the way the checks need them."""

    created: Counter                 # task id -> task.created rows
    commented: Counter               # comment id -> comment.created rows
    moved: dict[str, Counter]        # task id -> (from, to) -> task.status_changed rows
    actions: set[str]

    @classmethod
    def of(cls, rows: list[dict]) -> "_Audit":
        moved: dict[str, Counter] = defaultdict(Counter)
        for row in rows:
            if row["action"] == "task.status_changed":
                moved[row["entity_id"]][(row["details"]["from"], row["details"]["to"])] += 1
        return cls(Counter(row["entity_id"] for row in rows if row["action"] == "task.created"),
                   Counter(row["details"].get("commentId") for row in rows if row["action"] == "comment.created"),
                   moved, {row["action"] for row in rows})


def _task_problems(tasks: dict, audit: _Audit, ledger: Ledger, exact: bool) -> list[str]:
    problems = [f"accepted task {task_id} ({title}) is not in the database"
                for task_id, title in ledger.created.items()
                if task_id not in tasks or tasks[task_id]["title"] != title]
    accepted: dict[str, list[Move]] = defaultdict(list)
    for move in ledger.moves:
        accepted[move.task_id].append(move)
    for task_id, task in tasks.items():
        moves, audited = accepted[task_id], audit.moved[task_id]
        if audit.created[task_id] != 1:
            problems.append(f"task {task_id} has {audit.created[task_id]} task.created audit rows")
        audited_moves = sum(audited.values())
        if task["version"] != 1 + audited_moves:
            problems.append(f"task {task_id} is at version {task['version']} with {audited_moves} audited moves")
        if len({move.version for move in moves}) != len(moves):
            problems.append(f"task {task_id}: two accepted moves produced the same version")
        if Counter((move.before, move.after) for move in moves) - audited:
            problems.append(f"task {task_id}: accepted moves without their audit row")
        if exact and task["version"] != 1 + len(moves):
            problems.append(f"task {task_id} is at version {task['version']} after {len(moves)} accepted moves")
        last = max(moves, key=lambda move: move.version).after if moves else "backlog"
        if exact and task["status"] != last:
            problems.append(f"task {task_id} is {task['status']}, its last accepted move was to {last}")
    if exact and set(tasks) - set(ledger.created):
        problems.append(f"tasks nobody was told about: {sorted(set(tasks) - set(ledger.created))}")
    return problems


def _comment_problems(comments: dict, audit: _Audit, ledger: Ledger, exact: bool) -> list[str]:
    problems = [f"accepted comment {comment_id} is not in the database"
                for comment_id, expected in ledger.comments.items()
                if comment_id not in comments
                or (comments[comment_id]["task_id"], comments[comment_id]["content"]) != expected]
    problems += [f"comment {comment_id} has {audit.commented[comment_id]} comment.created audit rows"
                 for comment_id in comments if audit.commented[comment_id] != 1]
    if exact and set(comments) - set(ledger.comments):
        problems.append(f"comments nobody was told about: {sorted(set(comments) - set(ledger.comments))}")
    return problems


async def verify_ledger(database_url: str, ledger: Ledger, *, exact: bool) -> list[str]:
    """What is wrong between the accepted writes, the database and its audit log (empty: nothing).

    Always: every accepted write is in the database, and every task and comment there has exactly one audit
    row for its creation and one per status change (the change and its audit row commit together).
    With `exact` (every write got an answer, so none is in doubt): the database holds nothing else, and each
    task's version is 1 + the moves accepted on it and its status the last of them."""
    tasks, comments, rows = await _fetch(database_url)
    audit = _Audit.of(rows)
    problems = _task_problems(tasks, audit, ledger, exact) + _comment_problems(comments, audit, ledger, exact)
    unexpected = audit.actions - {"task.created", "task.status_changed", "comment.created"}
    if exact and unexpected:
        problems.append(f"unexpected audit actions: {sorted(unexpected)}")
    return problems
