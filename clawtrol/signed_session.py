"""Signed cookies with their serializers built once per secret.

Quart builds a new itsdangerous serializer for its session cookie (sign-in keeps its browser nonce there)
on every request, and quart-auth one for its auth cookie on every request that carries it; itsdangerous
tests each new serializer by serializing a sample value. Together about 5–8% of a small request."""

from __future__ import annotations

from typing import Iterable

from itsdangerous import URLSafeTimedSerializer
from quart import Quart
from quart.sessions import SecureCookieSessionInterface
from quart_auth.extension import _AuthSerializer


class SignedSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if key not in self._serializers:
            self._serializers = {key: super().get_signing_serializer(app)}  # keeps only the current secret's
        return self._serializers[key]


_auth_serializers: dict[tuple, _AuthSerializer] = {}


def auth_serializer(secret: str | bytes | Iterable[str | bytes], salt: str | bytes) -> _AuthSerializer:
    """quart-auth's `serializer_class`: called with (secret or list of secrets, salt) for each cookie it
    reads or writes; answers the same serializer for the same secrets."""
    key = (tuple(secret) if isinstance(secret, list) else secret, salt)
    serializer = _auth_serializers.get(key)
    if serializer is None:
        if len(_auth_serializers) >= 8:
            _auth_serializers.clear()
        serializer = _auth_serializers[key] = _AuthSerializer(secret, salt)
    return serializer
