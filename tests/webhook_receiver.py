"""A local webhook receiver for tests: a real HTTP server on 127.0.0.1 in a thread, recording every POST
(headers and raw body) and answering with scripted status codes (200 once the script runs out)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes for the next requests, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *codes: int) -> None:
        with self.lock:
            self.answers.extend(codes)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Poll until at least `count` requests arrived; return them."""
        async with asyncio.timeout(timeout):
            while len(self.received()) < count:
                await asyncio.sleep(0.02)
        return self.received()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.requests.append(Received(self.path, {k: v for k, v in self.headers.items()}, body))
                code = receiver.answers.pop(0) if receiver.answers else 200
            reply = b'{"ok": true}' if code < 300 else f"refused with {code}".encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # senders post many at once; the default backlog (5) would refuse some
    daemon_threads = True


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver(url="")
    server = _Server(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
