"""`clawtrol serve`: migrates, serves real HTTP on the configured port, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import time
import urllib.request

from .conftest import make_environ
from .helpers import free_port, start_cli


def wait_for(url: str, timeout: float = 20) -> urllib.request.addinfourl:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_migrates_answers_health_and_stops_gracefully(empty_database_url, tmp_path):
    port = free_port()
    environ = make_environ(empty_database_url, tmp_path, PORT=str(port))
    server = start_cli("serve", environ=environ, cwd=tmp_path)
    try:
        with wait_for(f"http://127.0.0.1:{port}/api/health") as response:
            body = json.load(response)
            assert response.status == 200
        assert body["db"]["connected"] is True
        # An anonymous visit to a page lands on the sign-in page.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as page:
            assert page.url.endswith("/login?next=/status")
            assert "Content-Security-Policy" in page.headers
            assert "Sign in with GitHub" in page.read().decode()
    finally:
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = server.communicate(timeout=20)
    assert time.monotonic() - started < 15
    assert server.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line["msg"] == "applying migration 0001_initial" for line in lines)
    assert any(line["logger"] == "hypercorn.access" and '"GET /status 1.1" 302' in line["msg"] for line in lines)
    assert "Traceback" not in stderr


def test_access_lines_follow_the_log_level():
    """At LOG_LEVEL=WARNING access lines are not even assembled (clawtrol/access_log.py); at INFO they are."""
    import asyncio
    import logging

    from hypercorn.config import Config

    from clawtrol.access_log import FORMAT, AccessLogger

    assembled = []

    class Spy(AccessLogger):
        def atoms(self, request, response, request_time):
            assembled.append(request["path"])
            return super().atoms(request, response, request_time)

    config = Config()
    config.accesslog = logging.getLogger("test.access")
    config.access_log_format = FORMAT
    request = {"type": "http", "method": "GET", "path": "/x", "http_version": "1.1", "client": ("127.0.0.1", 1)}
    response = {"status": 200, "headers": [(b"content-length", b"2")]}
    for level in (logging.WARNING, logging.INFO):
        config.accesslog.setLevel(level)
        asyncio.run(Spy(config).access(request, response, 0.001))
    assert assembled == ["/x"]


def test_the_serving_process_settles_its_heap_after_start(database_url, tmp_path):
    """`clawtrol.asgi` (what `serve` runs) freezes what start-up built and collects the young generation less
    often, once started; the app factory alone (tests, CLI) leaves the collector as Python sets it."""
    import subprocess
    import sys

    script = ("import asyncio, gc\n"
              "default = gc.get_threshold()\n"
              "from clawtrol.asgi import YOUNG_COLLECTION_EVERY, app\n"
              "assert gc.get_threshold() == default and gc.get_freeze_count() == 0\n"
              "async def main():\n"
              "    await app.startup()\n"
              "    print(gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY, gc.get_freeze_count() > 10000)\n"
              "    await app.shutdown()\n"
              "asyncio.run(main())\n")
    environ = make_environ(database_url, tmp_path, LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-c", script], env=environ, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr
