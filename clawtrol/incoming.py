"""The incoming HTTP request or WebSocket handshake, whichever is being handled."""

from __future__ import annotations

from quart import has_websocket_context, request, websocket


def incoming():
    """`quart.websocket` inside a WebSocket handler or hook, `quart.request` otherwise."""
    return websocket if has_websocket_context() else request
