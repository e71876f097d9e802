"""AES-256-GCM sealing of cached bodies with a key ring (current key + previous keys).

Blob layout: ``version (1 byte) | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag``.
The key id lets a replica pick the right key after a rotation; a blob whose key id is unknown
(retired key) or whose tag does not verify (tampered, or copied under another Redis key — the
associated data binds it to its key) opens to ``None``: for a cache that is a miss, never an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 4
FORMAT_VERSION = 1
_HEADER = 1 + KEY_ID_BYTES + NONCE_BYTES


class CacheKeyError(ValueError):
    """A configured cache key is not 32 bytes of base64."""


def key_id(key: bytes) -> bytes:
    """Short public identifier of a key (a hash prefix, reveals nothing usable about the key)."""
    return hashlib.sha256(b"portal-cache-key-id:" + key).digest()[:KEY_ID_BYTES]


def decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CacheKeyError("cache key is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise CacheKeyError(f"cache key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def decode_keys(text: str | None) -> list[bytes]:
    """Comma-separated base64 keys (PORTAL_CACHE_PREVIOUS_KEYS); blanks ignored."""
    return [decode_key(part) for part in (text or "").split(",") if part.strip()]


def load_or_create_key(path: Path) -> bytes:
    """The cache key from a 0600 file; generated on first run. O_EXCL so racing replicas agree."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = base64.b64encode(os.urandom(KEY_BYTES))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; use its key
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encoded + b"\n")
    return decode_key(path.read_text())


class CacheCipher:
    """Seals with the current key; opens with the current key or any previous one."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        if len(current) != KEY_BYTES:
            raise CacheKeyError(f"cache key must be {KEY_BYTES} bytes")
        self._current_id = key_id(current)
        self._current = AESGCM(current)
        self._ring: dict[bytes, AESGCM] = {}
        for key in previous:
            if len(key) != KEY_BYTES:
                raise CacheKeyError(f"cache key must be {KEY_BYTES} bytes")
            self._ring[key_id(key)] = AESGCM(key)
        self._ring[self._current_id] = self._current  # current wins over a duplicate in previous

    @property
    def current_key_id(self) -> str:
        return self._current_id.hex()

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        body = self._current.encrypt(nonce, plaintext, associated_data)
        return bytes([FORMAT_VERSION]) + self._current_id + nonce + body

    def open(self, blob: bytes, associated_data: bytes) -> bytes | None:
        """The plaintext, or None when the blob cannot be opened by this ring (→ cache miss)."""
        if len(blob) <= _HEADER or blob[0] != FORMAT_VERSION:
            return None
        aead = self._ring.get(blob[1 : 1 + KEY_ID_BYTES])
        if aead is None:
            return None
        nonce = blob[1 + KEY_ID_BYTES : _HEADER]
        try:
            return aead.decrypt(nonce, blob[_HEADER:], associated_data)
        except InvalidTag:
            return None
