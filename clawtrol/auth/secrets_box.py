"""Encryption at rest for secrets we must keep (users' GitHub access tokens), keyed from SESSION_SECRET."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    def __init__(self, session_secret: str):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"clawtrol github-token v1").derive(
            session_secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str | None:
        """The plaintext, or None if it was encrypted under another SESSION_SECRET."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            return None
