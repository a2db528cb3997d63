"""The per-request pipeline, step by step: what each hook the app adds costs a request, in microseconds.

    python bench/pipeline.py [--requests 3000]

Builds the app on a fresh SQLite database with a few tasks, wraps every before-request, after-request and
teardown function with a timer, and sends requests through Quart's test client (the same ASGI path
Hypercorn calls): GET /api/tasks/:id with a bearer token (an agent's call), and GET /api/auth/me with a
browser's session cookie. Prints, per request kind, the whole request's mean time and each step's mean,
plus the two steps outside Quart's hooks: the security headers the ASGI middleware adds (clawtrol/security.py)
and the access-log line Hypercorn builds for every request (clawtrol/access_log.py). The whole request
here excludes Hypercorn's HTTP parsing, which bench/bench.py's floor includes; use this table to see which
step to look at, and bench.py for throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from bench import SECRET, seed  # noqa: E402

from clawtrol.access_log import AccessLogger  # noqa: E402
from clawtrol.app import create_app  # noqa: E402
from clawtrol.config import load_config  # noqa: E402
from clawtrol.security import BASE_HEADERS, SecurityHeaders  # noqa: E402


def timed(step: str, function, spent: dict[str, float]):
    """`function` (a hook, sync or async), adding its wall time to spent[step]."""
    if asyncio.iscoroutinefunction(function):
        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - started
    else:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - started
    return wrapper


def instrument(app, spent: dict[str, float]) -> None:
    for kind, registry in (("before", app.before_request_funcs), ("after", app.after_request_funcs),
                           ("teardown", app.teardown_request_funcs)):
        for functions in registry.values():
            for index, function in enumerate(functions):
                name = getattr(function, "__qualname__", repr(function)).replace("<locals>.", "")
                functions[index] = timed(f"{kind}: {name}", function, spent)


async def measure(requests: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="clawtrol-pipeline-"))
    url = f"sqlite:///{workdir / 'pipeline.db'}"
    seeded = await seed(url, 100)
    environ = {"DATABASE_URL": url, "CLAWTROL_ENV": "production", "SESSION_SECRET": SECRET,
               "GITHUB_CLIENT_ID": "bench", "GITHUB_CLIENT_SECRET": "bench", "CLAWTROL_DATA_DIR": str(workdir),
               "LOG_LEVEL": "WARNING", "GATEWAY_URL": "ws://127.0.0.1:9"}
    app = create_app(load_config(environ, env_file=None))
    spent: dict[str, float] = defaultdict(float)
    instrument(app, spent)
    async with app.test_app():
        client = app.test_client()
        bearer = {"Authorization": f"Bearer {seeded['token']}"}
        kinds = {"GET /api/tasks/:id (bearer)": (f"/api/tasks/{seeded['ids'][0]}", bearer),
                 "GET /api/auth/me (cookie)": ("/api/auth/me", {"Cookie": seeded["cookie"]})}
        for label, (path, headers) in kinds.items():
            for _ in range(200):  # warm up
                await client.get(path, headers=headers)
            spent.clear()
            started = time.perf_counter()
            for _ in range(requests):
                response = await client.get(path, headers=headers)
                assert response.status_code == 200, (label, response.status_code)
            whole = (time.perf_counter() - started) / requests * 1e6
            print(f"\n{label}: {whole:.0f} µs per request through the test client")
            for step, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                print(f"  {step:<58} {seconds / requests * 1e6:7.1f} µs")
    await measure_security_headers(requests)
    logger = AccessLogger.__new__(AccessLogger)
    scope = {"type": "http", "method": "GET", "path": "/api/tasks/x", "http_version": "1.1",
             "client": ("127.0.0.1", 50000)}
    response = {"status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")]}
    started = time.perf_counter()
    for _ in range(requests):
        logger.atoms(scope, response, 0.001)
    print(f"\n  {'access log line (AccessLogger.atoms)':<58} {(time.perf_counter() - started) / requests * 1e6:7.1f} µs")


async def measure_security_headers(requests: int) -> None:
    """The middleware around a response that sets three headers of its own."""
    async def view(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"512"),
                                (b"date", b"Thu, 03 Dec 2026 12:00:00 GMT")]})

    async def nowhere(message):
        pass
    middleware = SecurityHeaders(view, BASE_HEADERS, "/static/")
    scope = {"type": "http", "path": "/api/tasks/x"}
    started = time.perf_counter()
    for _ in range(requests):
        await middleware(scope, None, nowhere)
    print(f"\n  {'security headers (SecurityHeaders middleware)':<58} "
          f"{(time.perf_counter() - started) / requests * 1e6:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(measure(parser.parse_args().requests))


if __name__ == "__main__":
    main()
