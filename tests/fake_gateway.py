"""A small in-process OpenClaw gateway for fast unit tests: the same frames as the real one (protocol v4).

    async with FakeGateway(token="t") as fake:
        client = GatewayClient(fake.url, "t", ...)
        fake.methods["my.method"] = handler          # async handler(call) -> payload | NO_REPLY; raise FakeError
        await fake.emit("exec.approval.requested", {...})
        await fake.drop()                            # close every connection (code 1012, like a restart)

What it does, as the real gateway does (see docs/openclaw-gateway.md in the shared reference):
- sends `connect.challenge {nonce, ts}` first and insists on `connect` as the first request;
- checks the shared token (AUTH_TOKEN_MISMATCH otherwise) and the protocol range;
- verifies an optional Ed25519 device proof (v3 payload, id = sha256(public key), challenge nonce and ts);
- answers `hello-ok` with server.version, features, auth.scopes and policy.tickIntervalMs;
- sends `tick` events every tick interval; runs each request in its own task, so answers can come out of order;
- two-phase methods send `{status: "accepted"}` first and then the final answer with the same id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from clawtrol.gateway.identity import device_auth_payload_v3

NO_REPLY = object()


class FakeError(Exception):
    def __init__(self, code: str, message: str, details: Any = None, **extra: Any):
        super().__init__(message)
        self.shape = {"code": code, "message": message, **({"details": details} if details is not None else {}), **extra}


@dataclass
class FakeConnection:
    ws: ServerConnection
    params: dict | None = None
    device_id: str | None = None
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, frame: dict) -> None:
        try:
            await self.ws.send(json.dumps(frame))
        except ConnectionClosed:
            pass


@dataclass
class FakeCall:
    gateway: "FakeGateway"
    connection: FakeConnection
    id: str
    method: str
    params: Any

    async def accept(self, payload: dict) -> None:
        """The first of two `res` frames of a two-phase method."""
        await self.connection.send({"type": "res", "id": self.id, "ok": True, "payload": {"status": "accepted", **payload}})


Handler = Callable[[FakeCall], Awaitable[Any]]


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGateway:
    def __init__(self, token: str = "fake-token", *, version: str = "2026.9.6-fake", tick_interval_ms: int = 30_000,
                 send_ticks: bool = True, grant_scopes: list[str] | None = None, port: int = 0):
        self.token = token
        self.port = port
        self.version = version
        self.tick_interval_ms = tick_interval_ms
        self.send_ticks = send_ticks
        self.grant_scopes = grant_scopes  # None: grant what the client asks for
        self.silent = False               # True: answer nothing, send nothing (a hung gateway)
        self.connect_errors: list[dict] = []  # error shapes answered to the next connects, one each
        self.hello_patch: dict = {}           # merged into hello-ok (e.g. another protocol version)
        self.connections: list[FakeConnection] = []
        self.connect_params: list[dict] = []
        self.requests: list[tuple[str, Any]] = []
        self.approvals: dict[str, dict] = {}
        self._decisions: dict[str, asyncio.Future] = {}
        self.agents: list[dict] = [{"id": "main", "workspace": "/tmp/fake", "model": {"primary": "fake/fake-1"}}]
        self.sessions: dict[str, dict] = {}        # sessions.list rows by key; chat.send creates them
        self.transcripts: dict[str, list[dict]] = {}  # chat.history messages by session key
        self.methods: dict[str, Handler] = {
            "health": self._health, "agents.list": self._agents_list, "echo": self._echo, "fail": self._fail,
            "never": self._never, "slow": self._slow, "exec.approval.request": self._approval_request,
            "exec.approval.list": self._approval_list, "exec.approval.resolve": self._approval_resolve,
            "sessions.list": self._sessions_list, "sessions.describe": self._sessions_describe,
            "sessions.patch": self._sessions_patch, "sessions.delete": self._sessions_delete,
            "chat.history": self._chat_history, "chat.send": self._chat_send,
        }
        self.models: set[str] = {"fake/fake-1", "fake/fake-2"}  # what sessions.patch accepts as `model`
        self._server = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> "FakeGateway":
        self._server = await serve(self._serve, "127.0.0.1", self.port, ping_interval=None, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def live(self) -> list[FakeConnection]:
        return [c for c in self.connections if c.params is not None and not c.closed.is_set()]

    # --- test controls -------------------------------------------------------------------------------

    async def emit(self, event: str, payload: Any = None) -> None:
        for connection in self.live:
            await connection.send({"type": "event", "event": event, "payload": payload})

    async def drop(self, code: int = 1012, reason: str = "service restart") -> None:
        """Close every connection, as a restarting gateway does."""
        for connection in self.live:
            await connection.ws.close(code, reason)

    def freeze(self) -> None:
        """Stop reading from every connection and go silent: a hung gateway that will not even answer a close."""
        self.silent = True
        for connection in self.live:
            connection.ws.transport.pause_reading()

    def thaw(self) -> None:
        self.silent = False
        for connection in self.connections:
            if not connection.ws.transport.is_closing():
                connection.ws.transport.resume_reading()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    async def raise_approval(self, command: str, *, expires_in_ms: int = 120_000, approval_id: str | None = None,
                             **request: Any) -> dict:
        """An exec approval as an agent run raises it: kept pending and sent to every connection."""
        now = int(time.time() * 1000)
        record = {"approvalKind": "exec", "id": approval_id or str(uuid.uuid4()),
                  "request": {"command": command, "host": "gateway", "agentId": "main", **request},
                  "createdAtMs": now, "expiresAtMs": now + expires_in_ms}
        self.approvals[record["id"]] = record
        await self.emit("exec.approval.requested", record)
        return record

    def resolve(self, approval_id: str, decision: str) -> None:
        future = self._decisions.get(approval_id)
        if future is not None and not future.done():
            future.set_result(decision)

    # --- protocol ------------------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        connection = FakeConnection(ws)
        self.connections.append(connection)
        ticker = None
        try:
            nonce, ts = str(uuid.uuid4()), int(time.time() * 1000)
            await ws.send(json.dumps({"type": "event", "event": "connect.challenge",
                                      "payload": {"nonce": nonce, "ts": ts, "capabilities": []}}))
            frame = json.loads(await ws.recv())
            if frame.get("type") != "req" or frame.get("method") != "connect":
                await self._refuse(connection, frame.get("id"), FakeError(
                    "INVALID_REQUEST", "invalid handshake: first request must be connect").shape, 1008)
                return
            params = frame.get("params") or {}
            self.connect_params.append(params)
            error = self._check_connect(params, nonce, ts)
            if error is None and self.connect_errors:
                error = self.connect_errors.pop(0)
            if error is not None:
                await self._refuse(connection, frame["id"], error, 1013 if error["code"] == "UNAVAILABLE" else 1008)
                return
            connection.params = params
            connection.device_id = (params.get("device") or {}).get("id")
            await connection.send({"type": "res", "id": frame["id"], "ok": True, "payload": self._hello(params)})
            ticker = asyncio.create_task(self._ticks(connection))
            async for raw in ws:
                if self.silent:
                    continue
                request = json.loads(raw)
                if request.get("type") != "req":
                    continue
                self.requests.append((request.get("method"), request.get("params")))
                task = asyncio.create_task(self._answer(connection, request))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except ConnectionClosed:
            pass
        finally:
            if ticker is not None:
                ticker.cancel()
            connection.close_code = ws.close_code
            connection.closed.set()

    async def _refuse(self, connection: FakeConnection, request_id: Any, error: dict, close_code: int) -> None:
        await connection.send({"type": "res", "id": request_id, "ok": False, "error": error})
        await connection.ws.close(close_code, error["message"][:100])

    def _check_connect(self, params: dict, nonce: str, ts: int) -> dict | None:
        if not (params.get("minProtocol", 0) <= 4 <= params.get("maxProtocol", 0)):
            return FakeError("INVALID_REQUEST", "protocol mismatch").shape
        if (params.get("auth") or {}).get("token") != self.token:
            return FakeError("INVALID_REQUEST", "unauthorized: gateway token mismatch",
                             {"code": "AUTH_TOKEN_MISMATCH", "recommendedNextStep": "update_auth_credentials"}).shape
        device = params.get("device")
        if device is not None:
            client = params.get("client") or {}
            try:
                raw_key = _unb64url(device["publicKey"])
                if hashlib.sha256(raw_key).hexdigest() != device["id"]:
                    return FakeError("INVALID_REQUEST", "device identity mismatch",
                                     {"code": "DEVICE_AUTH_DEVICE_ID_MISMATCH"}).shape
                if device.get("nonce") != nonce or device.get("signedAt") != ts:
                    return FakeError("INVALID_REQUEST", "device nonce mismatch",
                                     {"code": "DEVICE_AUTH_NONCE_MISMATCH"}).shape
                message = device_auth_payload_v3(
                    device_id=device["id"], client_id=client.get("id", ""), client_mode=client.get("mode", ""),
                    role=params.get("role", ""), scopes=params.get("scopes") or [], signed_at=ts,
                    token=(params.get("auth") or {}).get("token", ""), nonce=nonce,
                    platform=client.get("platform", ""), device_family=client.get("deviceFamily", ""))
                Ed25519PublicKey.from_public_bytes(raw_key).verify(_unb64url(device["signature"]), message.encode())
            except Exception:
                return FakeError("INVALID_REQUEST", "device signature invalid",
                                 {"code": "DEVICE_AUTH_SIGNATURE_INVALID"}).shape
        return None

    def _hello(self, params: dict) -> dict:
        scopes = (params.get("scopes") or []) if self.grant_scopes is None else self.grant_scopes
        auth = {"method": "token", "role": params.get("role"), "scopes": scopes}
        if params.get("device"):
            auth["deviceToken"] = "fake-device-token"
        return {**{
            "type": "hello-ok", "protocol": 4,
            "server": {"version": self.version, "connId": str(uuid.uuid4())},
            "features": {"methods": sorted(self.methods), "events": ["tick", "exec.approval.requested"]},
            "snapshot": {"presence": [], "health": {}, "stateVersion": {"presence": 1, "health": 1}},
            "auth": auth,
            "policy": {"maxPayload": 26214400, "maxBufferedBytes": 52428800, "tickIntervalMs": self.tick_interval_ms},
        }, **self.hello_patch}

    async def _ticks(self, connection: FakeConnection) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_ms / 1000)
            if self.send_ticks and not self.silent:
                await connection.send({"type": "event", "event": "tick", "payload": {"ts": int(time.time() * 1000)}})

    async def _answer(self, connection: FakeConnection, request: dict) -> None:
        handler = self.methods.get(request.get("method"))
        call = FakeCall(self, connection, request.get("id"), request.get("method"), request.get("params"))
        try:
            if handler is None:
                raise FakeError("INVALID_REQUEST", f"unknown method: {call.method}")
            payload = await handler(call)
        except FakeError as error:
            await connection.send({"type": "res", "id": call.id, "ok": False, "error": error.shape})
            return
        if payload is not NO_REPLY and not self.silent:
            await connection.send({"type": "res", "id": call.id, "ok": True, "payload": payload})

    # --- default methods -----------------------------------------------------------------------------

    async def _health(self, call: FakeCall) -> dict:
        return {"ok": True, "ts": int(time.time() * 1000)}

    async def _agents_list(self, call: FakeCall) -> dict:
        return {"defaultId": "main", "mainKey": "main", "agents": self.agents}

    def add_session(self, key: str, **row: Any) -> dict:
        now = int(time.time() * 1000)
        session = {"key": key, "sessionId": str(uuid.uuid4()), "agentId": key.split(":")[1], "kind": "direct",
                   "status": "done", "createdAt": now, "updatedAt": now, "hasActiveRun": False,
                   "model": "fake-1", "modelProvider": "fake", "totalTokens": 0, **row}
        self.sessions[key] = session
        return session

    async def _sessions_list(self, call: FakeCall) -> dict:
        params = call.params or {}
        rows = [s for s in self.sessions.values() if params.get("agentId") in (None, s["agentId"])]
        rows = sorted(rows, key=lambda s: s["updatedAt"], reverse=True)[: params.get("limit", 50)]
        return {"ts": int(time.time() * 1000), "count": len(rows), "totalCount": len(rows), "sessions": rows}

    async def _sessions_describe(self, call: FakeCall) -> dict:
        key = (call.params or {}).get("key")
        return {"session": self.sessions.get(key)}  # the real gateway answers null for a session it has not

    async def _sessions_patch(self, call: FakeCall) -> dict:
        params = call.params or {}
        key = params.get("key")
        if not key:
            raise FakeError("INVALID_REQUEST", "invalid sessions.patch params: must have required property 'key'")
        if key not in self.sessions:
            raise FakeError("INVALID_REQUEST", f"unknown session: {key}")
        if "model" in params:
            if params["model"] is not None and params["model"] not in self.models:
                raise FakeError("INVALID_REQUEST", f"model not allowed: {params['model']}")
            provider, _, model = (params["model"] or "fake/fake-1").partition("/")
            self.sessions[key].update(model=model, modelProvider=provider)
        session = self.sessions[key]
        return {"ok": True, "path": "/tmp/fake/sessions.sqlite", "key": key, "entry": session,
                "resolved": {"modelProvider": session["modelProvider"], "model": session["model"]}}

    async def _sessions_delete(self, call: FakeCall) -> dict:
        key = (call.params or {}).get("key")
        if not key:
            raise FakeError("INVALID_REQUEST", "invalid sessions.delete params: must have required property 'key'")
        if key.count(":") == 2 and key.endswith(":main"):
            raise FakeError("INVALID_REQUEST", f"Cannot delete the main session ({key}).")
        deleted = self.sessions.pop(key, None) is not None
        self.transcripts.pop(key, None)
        return {"ok": True, "key": key, "deleted": deleted, "archived": False}

    async def _chat_history(self, call: FakeCall) -> dict:
        key = (call.params or {}).get("sessionKey")
        messages = self.transcripts.get(key, [])
        limit = (call.params or {}).get("limit", 200)
        return {"sessionKey": key, "sessionId": (self.sessions.get(key) or {}).get("sessionId"),
                "messages": messages[-limit:], "hasMore": len(messages) > limit, "totalMessages": len(messages)}

    async def _chat_send(self, call: FakeCall) -> dict:
        params = call.params or {}
        for name in ("sessionKey", "message", "idempotencyKey"):
            if not params.get(name):
                raise FakeError("INVALID_REQUEST", f"invalid chat.send params: must have required property '{name}'")
        key = params["sessionKey"]
        if key not in self.sessions:
            self.add_session(key, status="running", hasActiveRun=True)
        self.sessions[key]["updatedAt"] = int(time.time() * 1000)
        self.transcripts.setdefault(key, []).append(
            {"role": "user", "content": params["message"], "timestamp": int(time.time() * 1000)})
        return {"runId": params["idempotencyKey"], "status": "started"}

    async def _echo(self, call: FakeCall) -> Any:
        return call.params

    async def _fail(self, call: FakeCall) -> Any:
        raise FakeError("FORBIDDEN", "missing scope: operator.admin",
                        {"code": "MISSING_SCOPE", "missingScope": "operator.admin"})

    async def _never(self, call: FakeCall) -> Any:
        return NO_REPLY

    async def _slow(self, call: FakeCall) -> Any:
        await asyncio.sleep((call.params or {}).get("seconds", 0.1))
        return {"slept": (call.params or {}).get("seconds", 0.1)}

    async def _approval_request(self, call: FakeCall) -> Any:
        params = call.params or {}
        approval_id = str(uuid.uuid4())
        now = int(time.time() * 1000)
        record = {"id": approval_id, "request": {"command": params.get("command")}, "createdAtMs": now,
                  "expiresAtMs": now + params.get("timeoutMs", 60_000)}
        self.approvals[approval_id] = record
        decided = self._decisions[approval_id] = asyncio.get_running_loop().create_future()
        if params.get("twoPhase"):
            await call.accept({"id": approval_id, "deliveryRoute": "approval-client",
                               "createdAtMs": now, "expiresAtMs": record["expiresAtMs"]})
        for connection in self.live:
            if connection is not call.connection:
                await connection.send({"type": "event", "event": "exec.approval.requested", "payload": record})
        decision = await decided
        self.approvals.pop(approval_id, None)
        return {"id": approval_id, "decision": decision, "createdAtMs": now, "expiresAtMs": record["expiresAtMs"]}

    async def _approval_list(self, call: FakeCall) -> Any:
        return list(self.approvals.values()) or None  # the real gateway answers null when nothing is pending

    async def _approval_resolve(self, call: FakeCall) -> Any:
        params = call.params or {}
        if params.get("id") not in self.approvals:
            raise FakeError("INVALID_REQUEST", "unknown approval id")
        self.approvals.pop(params["id"], None)
        for connection in self.live:
            await connection.send({"type": "event", "event": "exec.approval.resolved",
                                   "payload": {"id": params["id"], "decision": params.get("decision"),
                                               "resolvedBy": "cli", "ts": int(time.time() * 1000)}})
        self.resolve(params["id"], params.get("decision"))
        return {"ok": True}
