"""Helpers shared by tests that run the `clawtrol` command in a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from clawtrol.services import services_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, environ: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m clawtrol ARGS` with exactly `environ` (plus PATH), from an empty directory."""
    env = {"PATH": os.environ.get("PATH", ""), **environ}
    return subprocess.run([sys.executable, "-m", "clawtrol", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=environ.get("CLAWTROL_DATA_DIR", PROJECT_ROOT))


def start_cli(*args: str, environ: dict[str, str], cwd: Path, log: IO | None = None) -> subprocess.Popen:
    """Start `python -m clawtrol ARGS` with exactly `environ` (plus PATH) in `cwd`. Its stdout and stderr are
    pipes, or both go to the file `log` (a server nobody reads from would stall on a full pipe)."""
    env = {"PATH": os.environ.get("PATH", ""), **environ}
    command = [sys.executable, "-m", "clawtrol", *args]
    if log is not None:
        return subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(count: int, environ: dict[str, str], cwd: Path) -> Iterator[list[int]]:
    """`count` `clawtrol serve` processes on one database, each answering on its own port (yielded);
    stopped afterwards."""
    from .test_serve import wait_for

    ports = [free_port() for _ in range(count)]
    servers = [start_cli("serve", environ={**environ, "PORT": str(port)}, cwd=cwd) for port in ports]
    try:
        for port, server in zip(ports, servers):
            try:
                wait_for(f"http://127.0.0.1:{port}/api/health", timeout=40).close()
            except OSError as failure:  # say why: the server's own last words
                server.terminate()
                _, stderr = server.communicate(timeout=20)
                raise AssertionError(f"clawtrol serve on port {port} did not answer ({failure}; exit "
                                     f"{server.returncode}):\n{stderr[-3000:]}") from None
        yield ports
    finally:
        running = [server for server in servers if server.returncode is None]
        for server in running:
            server.terminate()
        for server in running:
            server.communicate(timeout=20)


def default_gateway(app):
    """The client of the gateway GATEWAY_URL became at start (the record 'default', clawtrol/gateways/bootstrap.py)."""
    connection = services_of(app).gateways.get("default")
    assert connection is not None and connection.client is not None, "no 'default' gateway connection"
    return connection.client
