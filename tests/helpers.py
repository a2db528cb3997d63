"""Helpers shared by tests that run the `clawtrol` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, environ: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m clawtrol ARGS` with exactly `environ` (plus PATH), from an empty directory."""
    env = {"PATH": os.environ.get("PATH", ""), **environ}
    return subprocess.run([sys.executable, "-m", "clawtrol", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=environ.get("CLAWTROL_DATA_DIR", PROJECT_ROOT))


def start_cli(*args: str, environ: dict[str, str], cwd: Path) -> subprocess.Popen:
    env = {"PATH": os.environ.get("PATH", ""), **environ}
    return subprocess.Popen([sys.executable, "-m", "clawtrol", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
