"""One long-lived WebSocket connection from this app process to the OpenClaw gateway (protocol v4).

    client = GatewayClient.from_config(config, state)
    client.on_connect(resync)                       # after every hello-ok, before that connection's events
    unsubscribe = client.on_event("exec.approval.requested", handle)   # "*" for every event
    await client.start()                            # returns at once; connects (and reconnects) in the background
    payload = await client.request("agents.list")   # GatewayError / GatewayTimeout / GatewayUnavailable
    final = await client.request("agent", params, expect_final=True)   # two-phase: skips the "accepted" res
    await client.stop()

Handshake: the gateway speaks first (`connect.challenge {nonce, ts}`); the client answers with `connect`
(protocol 4, role operator, scopes read/write/approvals/admin, caps exec-approvals/approvals, the shared
token and an Ed25519 device proof over the challenge) and gets `hello-ok`. Why these values:

- `client {id: "cli", mode: "cli"}` keeps the requested scopes on loopback with the shared token alone (other
  ids connect "successfully" with *no* scopes); with the device proof a loopback gateway pairs the device
  silently and a remote one asks an operator to approve it (`openclaw devices approve <requestId>`).
- `operator.admin` plus the `exec-approvals`/`approvals` caps is what a connection needs to receive
  `exec.approval.requested` for approvals raised elsewhere, and for `exec.approval.list` to return them.

Liveness: WebSocket ping/pong (the `websockets` keepalive) and the gateway's `tick` events: silence longer
than twice hello-ok `policy.tickIntervalMs` closes the socket with 4000 and reconnects. Reconnects back off
1 s, 2 s, 4 s … capped at 30 s, forever, until `stop()`. Requests pending when a connection drops fail with
GatewayUnavailable; they are not replayed.

Event handlers and connect/disconnect callbacks run one at a time, in arrival order, on a dispatcher task
(never on the socket reader), so they may await `request()`; a handler that raises is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import platform
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .. import __version__, background
from ..clock import now_iso
from .identity import KEY_FILE_NAME, DeviceIdentity
from .state import GatewayState

log = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, and the connect frame carries the token: keep that logger above DEBUG.
wire_log = logging.getLogger(__name__ + ".wire")
wire_log.setLevel(logging.INFO)

PROTOCOL_VERSION = 4
CLIENT_ID = "cli"
CLIENT_MODE = "cli"
ROLE = "operator"
DEFAULT_SCOPES = ("operator.read", "operator.write", "operator.approvals", "operator.admin")
DEFAULT_CAPS = ("exec-approvals", "approvals")

REQUEST_TIMEOUT = 30.0
HANDSHAKE_TIMEOUT = 15.0
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
DEFAULT_TICK_INTERVAL = 30.0
CLOSE_TIMEOUT = 2.0
STOP_TIMEOUT = 5.0
MAX_FRAME_BYTES = 32 * 1024 * 1024  # above hello-ok policy.maxPayload (25 MiB)
EVENT_QUEUE_SIZE = 10_000
TICK_TIMEOUT_CLOSE_CODE = 4000

# error codes / error.details.code values that mean "an operator has to act"
AUTH_FAILURES = {"AUTH_TOKEN_MISMATCH", "AUTH_SCOPE_MISMATCH", "PAIRING_REQUIRED", "NOT_PAIRED"}


class GatewayError(Exception):
    """An error answer from the gateway (`res` with ok:false), or a local failure to get one."""

    def __init__(self, code: str, message: str, *, details: Any = None, retryable: bool | None = None,
                 retry_after_ms: int | None = None, method: str | None = None):
        super().__init__(f"{code}: {message}" + (f" ({method})" if method else ""))
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.method = method

    @classmethod
    def from_shape(cls, error: Any, method: str | None = None) -> "GatewayError":
        if not isinstance(error, dict):
            return cls("UNKNOWN", str(error), method=method)
        retry_after = error.get("retryAfterMs")
        return cls(str(error.get("code") or "UNKNOWN"), str(error.get("message") or ""), details=error.get("details"),
                   retryable=error.get("retryable"), method=method,
                   retry_after_ms=retry_after if isinstance(retry_after, (int, float)) else None)

    @property
    def detail_code(self) -> str | None:
        return self.details.get("code") if isinstance(self.details, dict) else None


class GatewayUnavailable(GatewayError):
    """Not connected to the gateway (yet, any more, or the connection dropped while waiting)."""

    def __init__(self, message: str = "not connected to the OpenClaw gateway", *, method: str | None = None):
        super().__init__("NOT_CONNECTED", message, method=method)


class GatewayTimeout(GatewayError, TimeoutError):
    """No answer within the request's timeout."""

    def __init__(self, message: str, *, method: str | None = None):
        super().__init__("TIMEOUT", message, method=method)


class GatewayProtocolError(GatewayError):
    """The gateway said something this client does not understand (wrong protocol, malformed handshake)."""

    def __init__(self, message: str):
        super().__init__("PROTOCOL", message)


@dataclass(frozen=True)
class GatewayEvent:
    event: str
    payload: Any
    seq: int | None = None
    frame: dict = field(default_factory=dict, repr=False)


EventHandler = Callable[[GatewayEvent], Awaitable[None] | None]
ConnectCallback = Callable[[dict], Awaitable[None] | None]
DisconnectCallback = Callable[[str], Awaitable[None] | None]


def backoff_delay(attempt: int, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> float:
    """Seconds to wait before reconnect attempt number `attempt` (0-based): initial × 2^attempt, capped."""
    if attempt < 0:
        attempt = 0
    if attempt > 62:  # 2**attempt would only overflow the float for no reason
        return maximum
    return min(maximum, initial * (2 ** attempt))


@dataclass
class _Pending:
    method: str
    future: asyncio.Future
    accepted: asyncio.Future | None = None  # set when a two-phase request gets its "accepted" res


class GatewayClient:
    def __init__(self, url: str, token: str = "", *, state: GatewayState | None = None,
                 identity: DeviceIdentity | None = None, identity_path: Path | None = None,
                 scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES, caps: tuple[str, ...] | list[str] = DEFAULT_CAPS,
                 request_timeout: float = REQUEST_TIMEOUT, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 backoff_initial: float = BACKOFF_INITIAL, backoff_max: float = BACKOFF_MAX,
                 ping_interval: float | None = 20.0, ping_timeout: float | None = 20.0,
                 close_timeout: float = CLOSE_TIMEOUT, probe: bool = False):
        self.url = url
        self.probe = probe  # a one-off "test connection": its failures are the answer, logged at INFO
        self._token = token or ""
        self.state = state if state is not None else GatewayState()
        self.state.url = url
        self._identity = identity
        self._identity_path = identity_path
        self.scopes = list(scopes)
        self.caps = list(caps)
        self.request_timeout = request_timeout
        self.handshake_timeout = handshake_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout

        self.hello: dict | None = None           # the latest hello-ok payload
        self.device_token: str | None = None     # hello-ok auth.deviceToken, if the gateway issued one
        self._handlers: dict[str, list[EventHandler]] = defaultdict(list)
        self._connect_callbacks: list[ConnectCallback] = []
        self._disconnect_callbacks: list[DisconnectCallback] = []
        self._pending: dict[str, _Pending] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task | None = None
        self._dispatcher: asyncio.Task | None = None
        self._queue: asyncio.Queue | None = None
        self._connected: asyncio.Event | None = None
        self._stopping = False
        self._attempt = 0
        self._tick_interval = DEFAULT_TICK_INTERVAL
        self._max_payload: int | None = None
        self._last_frame_at = 0.0
        self._dropped_events = 0

    @classmethod
    def from_config(cls, config, state: GatewayState | None = None, **options) -> "GatewayClient":
        return cls(config.gateway_url, config.gateway_token, state=state,
                   identity_path=Path(config.data_dir) / KEY_FILE_NAME, **options)

    def __repr__(self) -> str:  # never shows the token
        return f"GatewayClient(url={self.url!r}, connected={self.connected})"

    # --- subscriptions -----------------------------------------------------------------------------

    def on_event(self, event: str, handler: EventHandler) -> Callable[[], None]:
        """Call `handler(GatewayEvent)` for every `event` frame named `event` ("*": all). Returns an unsubscribe."""
        self._handlers[event].append(handler)
        return lambda: self._remove(self._handlers[event], handler)

    def on_connect(self, callback: ConnectCallback) -> Callable[[], None]:
        """Call `callback(hello_ok_payload)` after every successful (re)connect, before that connection's events."""
        self._connect_callbacks.append(callback)
        return lambda: self._remove(self._connect_callbacks, callback)

    def on_disconnect(self, callback: DisconnectCallback) -> Callable[[], None]:
        """Call `callback(reason)` when an established connection ends."""
        self._disconnect_callbacks.append(callback)
        return lambda: self._remove(self._disconnect_callbacks, callback)

    @staticmethod
    def _remove(items: list, item) -> None:
        with contextlib.suppress(ValueError):
            items.remove(item)

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.state.connected

    @property
    def latency_ms(self) -> float | None:
        """The round trip of the last keepalive ping, while connected."""
        ws = self._ws
        return round(ws.latency * 1000, 1) if ws is not None and self.state.connected and ws.latency else None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start connecting in the background; returns at once, whether or not the gateway is up."""
        if self.running:
            return
        self._stopping = False
        self._connected = asyncio.Event()
        self._queue = asyncio.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="gateway-dispatch")
        self._task = asyncio.create_task(self._run(), name="gateway-client")

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close the connection and stop reconnecting. Bounded by `timeout` seconds."""
        self._stopping = True
        tasks = [task for task in (self._task, self._dispatcher) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            done, still = await asyncio.wait(tasks, timeout=timeout)
            if still:
                log.warning("gateway client did not stop in time", extra={"timeoutSeconds": timeout})
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("gateway client task ended with an error", extra={"error": repr(task.exception())})
        self._task = self._dispatcher = None
        self._fail_pending("gateway client stopped")
        self._mark_disconnected("stopped")

    async def wait_connected(self, timeout: float | None = None) -> dict:
        """Wait for a hello-ok (returns its payload); GatewayTimeout if none within `timeout` seconds."""
        if self._connected is None:
            raise GatewayUnavailable("gateway client not started")
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            raise GatewayTimeout(f"not connected to the gateway within {timeout} s") from None
        assert self.hello is not None
        return self.hello

    # --- requests ----------------------------------------------------------------------------------

    async def request(self, method: str, params: Any = None, *, timeout: float | None = None,
                      expect_final: bool = False, final_timeout: float | None = None,
                      on_accepted: Callable[[dict], Any] | None = None) -> Any:
        """Send `{type:"req"}` and return the response payload.

        `timeout` (default 30 s) bounds the wait for the first `res`. Two-phase methods (`agent`,
        `exec.approval.request` with twoPhase) answer twice with the same id: with `expect_final=True` a
        first `{status: "accepted"}` payload is passed to `on_accepted` and the call waits for the final
        answer (up to `final_timeout` more seconds, default: as long as the connection lives). Without it
        the first answer is returned and the later one ignored.
        """
        ws = self._ws
        if ws is None or not self.state.connected:
            raise GatewayUnavailable(method=method)
        request_id = str(uuid.uuid4())
        frame = {"type": "req", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        text = json.dumps(frame, separators=(",", ":"))
        if self._max_payload and len(text.encode()) > self._max_payload:
            raise GatewayError("PAYLOAD_TOO_LARGE", f"request is larger than the gateway's {self._max_payload} "
                               "byte limit", method=method)
        loop = asyncio.get_running_loop()
        pending = _Pending(method, loop.create_future(), loop.create_future() if expect_final else None)
        self._pending[request_id] = pending
        try:
            try:
                await ws.send(text)
            except ConnectionClosed:
                raise GatewayUnavailable("connection closed while sending", method=method) from None
            first = {pending.future} | ({pending.accepted} if pending.accepted else set())
            limit = self.request_timeout if timeout is None else timeout
            done, _ = await asyncio.wait(first, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise GatewayTimeout(f"no answer within {limit:g} s", method=method)
            if not pending.future.done():  # accepted, not final yet
                accepted = pending.accepted.result()
                if on_accepted is not None:
                    result = on_accepted(accepted)
                    if inspect.isawaitable(result):
                        await result
                done, _ = await asyncio.wait({pending.future}, timeout=final_timeout)
                if not done:
                    raise GatewayTimeout(f"accepted, but no final answer within {final_timeout:g} s", method=method)
            return pending.future.result()
        finally:
            self._pending.pop(request_id, None)
            for future in (pending.future, pending.accepted):
                if future is not None and future.done() and not future.cancelled():
                    future.exception()  # retrieved: no "exception was never retrieved" noise

    def _resolve(self, frame: dict) -> None:
        request_id = frame.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, str) else None
        if pending is None or pending.future.done():
            log.debug("gateway response for no waiting request", extra={"requestId": request_id})
            return
        if frame.get("ok"):
            payload = frame.get("payload")
            if (pending.accepted is not None and not pending.accepted.done() and isinstance(payload, dict)
                    and payload.get("status") == "accepted"):
                pending.accepted.set_result(payload)
                return
            pending.future.set_result(payload)
        else:
            pending.future.set_exception(GatewayError.from_shape(frame.get("error"), pending.method))

    def _fail_pending(self, message: str) -> None:
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(GatewayUnavailable(message, method=pending.method))
        self._pending.clear()

    # --- connection loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            failure: BaseException | None = None
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried; the reason lands in the state and the log
                failure = exc
                self._log_failure(exc)
            if self._stopping:
                return
            delay = self._next_delay(failure)
            self._attempt += 1
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _next_delay(self, failure: BaseException | None) -> float:
        delay = backoff_delay(self._attempt, self.backoff_initial, self.backoff_max)
        if isinstance(failure, GatewayError) and failure.retry_after_ms:
            # e.g. UNAVAILABLE "gateway starting; retry shortly" (retryAfterMs 500) while its sidecars start
            return min(delay, max(failure.retry_after_ms / 1000, 0.1))
        return delay

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, GatewayError):
            return str(exc)
        if isinstance(exc, InvalidStatus):
            return f"HTTP {exc.response.status_code} instead of a WebSocket upgrade"
        if isinstance(exc, OSError):
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _connect_once(self) -> None:
        """One connection: returns when an established connection ends, raises if it never got to hello-ok."""
        identity = self._load_identity()
        ws = await connect(self.url, open_timeout=self.handshake_timeout, ping_interval=self.ping_interval,
                           ping_timeout=self.ping_timeout, close_timeout=self.close_timeout,
                           max_size=MAX_FRAME_BYTES, compression=None,
                           user_agent_header=f"mission-clawtrol/{__version__}", logger=wire_log)
        try:
            try:
                async with asyncio.timeout(self.handshake_timeout):
                    hello = await self._handshake(ws, identity)
            except TimeoutError:
                raise GatewayTimeout(f"no hello-ok within {self.handshake_timeout:g} s", method="connect") from None
            self._on_hello(ws, hello, identity)
            reason = await self._serve(ws)
            if not self._stopping:
                log.warning("gateway connection lost; reconnecting", extra={"url": self.url, "reason": reason})
        finally:
            self._ws = None
            reason = "stopped" if self._stopping else (self.state.last_error or "connection closed")
            was_connected = self._mark_disconnected(reason)
            self._fail_pending("connection to the gateway lost")
            with contextlib.suppress(Exception):
                await ws.close()
            if was_connected and not self._stopping:
                self._enqueue(("disconnect", reason))

    def _log_failure(self, exc: BaseException) -> None:
        description = self._describe(exc)
        self.state.last_error = description
        extra = {"url": self.url, "attempt": self._attempt, "error": description}
        details = exc.details if isinstance(exc, GatewayError) and isinstance(exc.details, dict) else {}
        if _needs_operator(exc):
            extra.update({key: details[key] for key in ("code", "reason", "requestId", "deviceId",
                                                        "recommendedNextStep") if key in details})
            if details.get("code") == "PAIRING_REQUIRED" or exc.code == "NOT_PAIRED":
                self.state.pairing_request_id = details.get("requestId")
                log.error("the gateway has not paired this app's device yet; on the gateway host run "
                          "`openclaw devices approve %s`", details.get("requestId") or "<requestId>", extra=extra)
            else:
                log.log(logging.INFO if self.probe else logging.ERROR,
                        "the gateway refused this app's credentials; check the gateway's token (Admin › Gateways)",
                        extra=extra)
        elif self.probe:
            log.info("test connection: cannot connect to the gateway", extra=extra)
        elif self._attempt == 0 or self._attempt % 10 == 0:
            log.warning("cannot connect to the gateway; retrying", extra=extra)
        else:
            log.debug("cannot connect to the gateway; retrying", extra=extra)

    def _load_identity(self) -> DeviceIdentity | None:
        if self._identity is None and self._identity_path is not None:
            self._identity = DeviceIdentity.load_or_create(self._identity_path)
            log.info("gateway device identity", extra={"deviceId": self._identity.device_id,
                                                       "path": str(self._identity_path)})
        return self._identity

    async def _handshake(self, ws: ClientConnection, identity: DeviceIdentity | None) -> dict:
        while True:
            frame = json.loads(await ws.recv())
            if isinstance(frame, dict) and frame.get("type") == "event" and frame.get("event") == "connect.challenge":
                break
            log.debug("gateway frame before the challenge ignored", extra={"frameType": _frame_type(frame)})
        challenge = frame.get("payload") or {}
        nonce, ts = challenge.get("nonce"), challenge.get("ts")
        if not isinstance(nonce, str) or not nonce or not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            raise GatewayProtocolError("malformed connect.challenge")
        request_id = str(uuid.uuid4())
        await ws.send(json.dumps({"type": "req", "id": request_id, "method": "connect",
                                  "params": self._connect_params(nonce, ts, identity)}))
        while True:
            frame = json.loads(await ws.recv())
            if isinstance(frame, dict) and frame.get("type") == "res" and frame.get("id") == request_id:
                break
            log.debug("gateway frame before hello-ok ignored", extra={"frameType": _frame_type(frame)})
        if not frame.get("ok"):
            raise GatewayError.from_shape(frame.get("error"), "connect")
        hello = frame.get("payload")
        if not isinstance(hello, dict) or hello.get("type") != "hello-ok":
            raise GatewayProtocolError("connect answered without hello-ok")
        if hello.get("protocol") != PROTOCOL_VERSION:
            raise GatewayProtocolError(f"gateway speaks protocol {hello.get('protocol')!r}, not {PROTOCOL_VERSION}")
        return hello

    def _connect_params(self, nonce: str, ts: int, identity: DeviceIdentity | None) -> dict:
        system = platform.system().lower() or "linux"
        params: dict[str, Any] = {
            "minProtocol": PROTOCOL_VERSION,
            "maxProtocol": PROTOCOL_VERSION,
            "client": {"id": CLIENT_ID, "version": __version__, "platform": system, "mode": CLIENT_MODE},
            "role": ROLE,
            "scopes": list(self.scopes),
            "caps": list(self.caps),
            "locale": "en-US",
            "userAgent": f"mission-clawtrol/{__version__}",
        }
        if self._token:
            params["auth"] = {"token": self._token}
        if identity is not None:
            params["device"] = identity.proof(client_id=CLIENT_ID, client_mode=CLIENT_MODE, role=ROLE,
                                              scopes=list(self.scopes), token=self._token, nonce=nonce, signed_at=ts,
                                              platform=system)
        return params

    def _on_hello(self, ws: ClientConnection, hello: dict, identity: DeviceIdentity | None) -> None:
        server = hello.get("server") or {}
        policy = hello.get("policy") or {}
        auth = hello.get("auth") or {}
        features = hello.get("features") or {}
        tick_ms = policy.get("tickIntervalMs")
        self._tick_interval = tick_ms / 1000 if isinstance(tick_ms, (int, float)) and tick_ms > 0 else DEFAULT_TICK_INTERVAL
        max_payload = policy.get("maxPayload")
        self._max_payload = max_payload if isinstance(max_payload, int) and max_payload > 0 else None
        self.hello = hello
        if auth.get("deviceToken"):
            self.device_token = auth["deviceToken"]
        self._ws = ws
        self._last_frame_at = time.monotonic()
        self._attempt = 0
        state = self.state
        state.connected = True
        state.server_version = server.get("version")
        state.protocol = hello.get("protocol")
        state.conn_id = server.get("connId")
        state.scopes = tuple(auth.get("scopes") or ())
        state.methods = frozenset(features.get("methods") or ())
        state.events = frozenset(features.get("events") or ())
        state.device_id = identity.device_id if identity else None
        state.connected_at = now_iso()
        state.last_error = None
        state.pairing_request_id = None
        state.connects += 1
        missing = sorted(set(self.scopes) - set(state.scopes))
        log.info("gateway connected", extra={"url": self.url, "serverVersion": state.server_version,
                                             "connId": state.conn_id, "scopes": list(state.scopes),
                                             "deviceId": state.device_id, "deviceTokenIssued": bool(auth.get("deviceToken")),
                                             "tickIntervalMs": tick_ms})
        if missing:
            log.warning("gateway granted fewer scopes than requested", extra={"missingScopes": missing})
        self._enqueue(("connect", hello))
        assert self._connected is not None
        self._connected.set()

    def _mark_disconnected(self, reason: str | None) -> bool:
        was_connected = self.state.connected
        if self._connected is not None:
            self._connected.clear()
        if was_connected:
            self.state.connected = False
            self.state.disconnected_at = now_iso()
            self.state.last_error = reason
        self.state.server_version = None
        self.state.conn_id = None
        return was_connected

    async def _serve(self, ws: ClientConnection) -> str:
        """Read frames until the connection ends; returns why it ended."""
        watchdog = asyncio.create_task(self._watchdog(ws), name="gateway-watchdog")
        try:
            async for raw in ws:
                self._last_frame_at = time.monotonic()
                self._handle(raw)
        except ConnectionClosed:
            pass
        finally:
            await background.stop(watchdog)
        code, why = ws.close_code, ws.close_reason
        reason = f"closed with code {code}" + (f": {why}" if why else "")
        self.state.last_error = reason
        return reason

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Close a connection that has been silent for more than two tick intervals."""
        while True:
            limit = self._tick_interval * 2
            silent = time.monotonic() - self._last_frame_at
            if silent > limit:
                log.warning("gateway silent; closing the connection", extra={"silentSeconds": round(silent, 1)})
                await ws.close(TICK_TIMEOUT_CLOSE_CODE, "tick timeout")
                return
            await asyncio.sleep(max(0.01, limit - silent))

    def _handle(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("gateway sent a frame that is not JSON; ignored")
            return
        kind = _frame_type(frame)
        if kind == "res":
            self._resolve(frame)
        elif kind == "event":
            name = frame.get("event")
            if not isinstance(name, str):
                return
            if name == "shutdown":
                log.info("gateway is shutting down", extra={"payload": frame.get("payload")})
            self._enqueue(("event", GatewayEvent(name, frame.get("payload"), frame.get("seq"), frame)))
        else:
            log.debug("gateway frame of unknown type ignored", extra={"frameType": kind})

    # --- dispatch ----------------------------------------------------------------------------------

    def _enqueue(self, item: tuple) -> None:
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped_events += 1
            if self._dropped_events in (1, 100) or self._dropped_events % 1000 == 0:
                log.warning("gateway event handlers too slow; events dropped", extra={"dropped": self._dropped_events})

    async def _dispatch_loop(self) -> None:
        assert self._queue is not None
        while True:
            kind, value = await self._queue.get()
            if kind == "event":
                callbacks = list(self._handlers.get(value.event, ())) + list(self._handlers.get("*", ()))
            elif kind == "connect":
                callbacks = list(self._connect_callbacks)
            else:
                callbacks = list(self._disconnect_callbacks)
            for callback in callbacks:
                try:
                    result = callback(value)
                    if inspect.isawaitable(result):
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("gateway %s handler failed", kind,
                                  extra={"event": value.event if kind == "event" else kind})


def _needs_operator(exc: BaseException | None) -> bool:
    """A refusal only an operator can fix (bad token, device not paired): logged as an error."""
    return isinstance(exc, GatewayError) and (exc.code in AUTH_FAILURES or exc.detail_code in AUTH_FAILURES)


def _frame_type(frame: Any) -> str | None:
    return frame.get("type") if isinstance(frame, dict) else None
