"""The accounts secret: keyed hashes (one-time codes, the username index) and AES-256-GCM sealing of what
the accounts keep in Redis (TOTP secrets, and whole records holding names and contact details)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..secret_files import read_or_create_secret

KEY_FILE = "accounts-secret.key"


class SecretBox:
    """HMAC-SHA256 for codes (so a Redis dump reveals nothing usable) and AES-256-GCM for TOTP seeds."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the accounts secret key must be at least 32 bytes")
        self._mac_key = hashlib.sha256(b"mac:" + key).digest()
        self._aead = AESGCM(hashlib.sha256(b"seal:" + key).digest())

    @classmethod
    def load_or_create(cls, state_dir: Path, configured: str | None = None) -> SecretBox:
        if configured:
            return cls(configured.encode())
        stored = read_or_create_secret(Path(state_dir) / KEY_FILE, lambda: base64.b64encode(secrets.token_bytes(32)))
        return cls(base64.b64decode(stored.strip()))

    def digest(self, purpose: str, value: str) -> str:
        return hmac.new(self._mac_key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: str, context: str = "totp") -> str:
        """Encrypted and bound to `context` (e.g. the Redis key), so a sealed value moved elsewhere fails."""
        nonce = secrets.token_bytes(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())).decode()

    def unseal(self, sealed: str, context: str = "totp") -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
