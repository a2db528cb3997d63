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
    assert "Traceback" not in stderr
