"""The app's Ed25519 device identity for the OpenClaw gateway.

The gateway pairs *devices*: a connect request carries a device proof (public key plus a signature over
the server's challenge), and a gateway that is not on loopback only grants scopes to a device an operator
approved (`openclaw devices approve`). So the key must survive restarts: it lives in the data directory as
an unencrypted PKCS#8 PEM file with mode 0600, created once (race-safe across worker processes) and then
reused. The device id is the SHA-256 of the raw 32-byte public key, in hex.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)

KEY_FILE_NAME = "gateway-device.key"


class DeviceIdentityError(Exception):
    """The stored key exists but cannot be used; it is left in place for an operator to inspect."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, as the gateway expects for keys and signatures."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def device_auth_payload_v3(*, device_id: str, client_id: str, client_mode: str, role: str, scopes: list[str],
                           signed_at: int, token: str, nonce: str, platform: str, device_family: str = "") -> str:
    """The string a device signs in `connect` (`buildDeviceAuthPayloadV3` in the reference client)."""
    return "|".join(["v3", device_id, client_id, client_mode, role, ",".join(scopes), str(signed_at), token or "",
                     nonce, (platform or "").lower(), (device_family or "").lower()])


class DeviceIdentity:
    def __init__(self, private_key: Ed25519PrivateKey, path: Path | None = None):
        self._key = private_key
        self.path = path
        self.public_key_raw = private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                                    serialization.PublicFormat.Raw)
        self.device_id = hashlib.sha256(self.public_key_raw).hexdigest()
        self.public_key = b64url(self.public_key_raw)

    def __repr__(self) -> str:
        return f"DeviceIdentity(device_id={self.device_id[:12]}…)"

    @classmethod
    def generate(cls) -> "DeviceIdentity":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> "DeviceIdentity":
        """Load the key at `path`, or create it (mode 0600) if there is none yet."""
        path = Path(path)
        if not path.exists():
            cls._create(path)
        return cls._load(path)

    @classmethod
    def _create(cls, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # in case the file was left over with other permissions
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)  # fails if another process created the key first: then that key wins
            log.info("created gateway device key", extra={"path": str(path)})
        except FileExistsError:
            pass
        finally:
            temp.unlink(missing_ok=True)

    @classmethod
    def _load(cls, path: Path) -> "DeviceIdentity":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("gateway device key was readable by others; restricting it to 0600",
                        extra={"path": str(path), "mode": oct(mode)})
            path.chmod(0o600)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise DeviceIdentityError(f"{path}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise DeviceIdentityError(f"{path}: not an Ed25519 key")
        return cls(key, path)

    def sign(self, message: str) -> str:
        return b64url(self._key.sign(message.encode("utf-8")))

    def proof(self, *, client_id: str, client_mode: str, role: str, scopes: list[str], token: str, nonce: str,
              signed_at: int, platform: str, device_family: str = "") -> dict:
        """`connect.params.device` for a challenge (`nonce`, `signed_at` = the challenge's `ts`)."""
        payload = device_auth_payload_v3(device_id=self.device_id, client_id=client_id, client_mode=client_mode,
                                         role=role, scopes=scopes, signed_at=signed_at, token=token, nonce=nonce,
                                         platform=platform, device_family=device_family)
        return {"id": self.device_id, "publicKey": self.public_key, "signature": self.sign(payload),
                "signedAt": signed_at, "nonce": nonce}
