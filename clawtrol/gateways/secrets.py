"""Gateway tokens encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from SESSION_SECRET
by HKDF, so a copy of the database alone does not hold usable tokens. Rotating SESSION_SECRET makes the stored
tokens unreadable: the gateway then reports "token cannot be decrypted" and an admin enters it again."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class UnreadableToken(Exception):
    """The stored token was encrypted with another key (SESSION_SECRET changed) or is damaged."""


class TokenBox:
    def __init__(self, secret: str):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"clawtrol", info=b"gateway tokens").derive(
            secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, token: str) -> str | None:
        return self._fernet.encrypt(token.encode()).decode() if token else None

    def open(self, sealed: str | None) -> str:
        if not sealed:
            return ""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            raise UnreadableToken("the stored token cannot be decrypted (was SESSION_SECRET changed?); "
                                  "enter the gateway's token again") from None
