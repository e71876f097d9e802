"""AES-256-GCM sealing of what a portal session keeps in Redis (tokens, the open record's name).

The key is generated on first run into the state directory (0600). A sealed value is bound to its Redis
key (associated data), so a blob copied under another session's key does not open.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smart_auth.secret_files import read_or_create_secret

KEY_FILE = "portal-session-key"
NONCE_BYTES = 12


class TokenBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the portal session key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> TokenBox:
        return cls(read_or_create_secret(state_dir / KEY_FILE, lambda: os.urandom(32)))

    def seal(self, plain: bytes, bound_to: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes | None:
        """The plain bytes, or None for anything tampered, truncated or sealed under another key."""
        if len(sealed) <= NONCE_BYTES:
            return None
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], bound_to.encode())
        except InvalidTag:
            return None
