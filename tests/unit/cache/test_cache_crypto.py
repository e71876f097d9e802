"""AES-256-GCM key ring: sealing, binding to the Redis key, rotation, key files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from cache.crypto import CacheCipher, CacheKeyError, decode_keys, load_or_create_key
from cache.settings import CacheSettings, build_cipher

OLD, NEW, OTHER = os.urandom(32), os.urandom(32), os.urandom(32)


def test_seal_hides_plaintext_and_opens_back() -> None:
    cipher = CacheCipher(NEW)
    blob = cipher.seal(b"Jane Doe 1970-01-01", b"cache:e:Patient:abc")
    assert b"Jane" not in blob
    assert cipher.open(blob, b"cache:e:Patient:abc") == b"Jane Doe 1970-01-01"
    # A fresh nonce every time: equal bodies do not give equal blobs.
    assert cipher.seal(b"x", b"k") != cipher.seal(b"x", b"k")


def test_blob_is_bound_to_its_redis_key() -> None:
    cipher = CacheCipher(NEW)
    blob = cipher.seal(b"body of patient A", b"cache:e:Observation:A")
    assert cipher.open(blob, b"cache:e:Observation:B") is None


def test_tampered_or_garbage_blobs_are_misses() -> None:
    cipher = CacheCipher(NEW)
    blob = bytearray(cipher.seal(b"body", b"k"))
    blob[-1] ^= 1
    assert cipher.open(bytes(blob), b"k") is None
    assert cipher.open(b"", b"k") is None
    assert cipher.open(b"\x09" + bytes(40), b"k") is None


def test_rotation_previous_keys_open_retired_keys_miss() -> None:
    old_blob = CacheCipher(OLD).seal(b"old entry", b"k")
    rotating = CacheCipher(NEW, [OLD])
    assert rotating.open(old_blob, b"k") == b"old entry"
    new_blob = rotating.seal(b"new entry", b"k")
    assert CacheCipher(NEW).open(new_blob, b"k") == b"new entry"  # sealed with the current key
    assert CacheCipher(NEW, [OTHER]).open(old_blob, b"k") is None  # OLD retired: a miss
    assert CacheCipher(OLD).open(new_blob, b"k") is None


def test_bad_key_lengths_refused() -> None:
    with pytest.raises(CacheKeyError):
        CacheCipher(b"short")
    with pytest.raises(CacheKeyError):
        decode_keys(base64.b64encode(b"16-bytes-only!!!").decode())
    with pytest.raises(CacheKeyError):
        decode_keys("not base64!!")


def test_load_or_create_key_is_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cache-key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_settings_key_ring_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    old_blob = CacheCipher(OLD).seal(b"sealed before rotation", b"k")
    monkeypatch.setenv("PORTAL_CACHE_KEY", base64.b64encode(NEW).decode())
    monkeypatch.setenv(
        "PORTAL_CACHE_PREVIOUS_KEYS", f"{base64.b64encode(OTHER).decode()}, {base64.b64encode(OLD).decode()}"
    )
    monkeypatch.setenv("PORTAL_STATE_DIR", str(tmp_path))
    cipher = build_cipher(CacheSettings())
    assert cipher.open(old_blob, b"k") == b"sealed before rotation"
    assert CacheCipher(NEW).open(cipher.seal(b"x", b"k"), b"k") == b"x"
    assert not (tmp_path / "cache-key").exists()  # an explicit key needs no file


def test_settings_without_key_generate_a_state_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PORTAL_CACHE_KEY", raising=False)
    monkeypatch.delenv("PORTAL_CACHE_PREVIOUS_KEYS", raising=False)
    monkeypatch.setenv("PORTAL_STATE_DIR", str(tmp_path))
    first = build_cipher(CacheSettings())
    second = build_cipher(CacheSettings())  # a restart (or another replica) uses the same key
    assert second.open(first.seal(b"x", b"k"), b"k") == b"x"
    assert (tmp_path / "cache-key").exists()
