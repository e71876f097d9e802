"""The token signing keys: generated on first run, kept 0600 in the state directory, rotated by
`portal-auth keys rotate`.

Access tokens are signed with an EC P-256 key (ES256); id_tokens with an RSA key (RS256, what
certification test kits and most OpenID clients expect). Each algorithm has one active key:

    <state>/signing-key.pem            the active ES256 key
    <state>/signing-key-rs256.pem      the active RS256 key (made when first needed)
    <state>/signing-keys-retired/<unix time to drop it>-<alg>.pem

A rotation moves the active keys to the retired folder, to stay published in the JWKS until every token
they signed has expired, and writes new ones. Running processes notice the change within a second.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from .secret_files import read_or_create_secret

ACCESS_TOKEN_ALG = "ES256"  # noqa: S105 - an algorithm name, not a secret
ID_TOKEN_ALG = "RS256"  # noqa: S105 - an algorithm name, not a secret
RSA_BITS = 2048
RELOAD_INTERVAL = 1.0
_GENERATE: dict[str, Callable[[], ECKey | RSAKey]] = {
    ACCESS_TOKEN_ALG: lambda: ECKey.generate_key("P-256", private=True),
    ID_TOKEN_ALG: lambda: RSAKey.generate_key(RSA_BITS, private=True),
}
_IMPORT: dict[str, Callable[[bytes], ECKey | RSAKey]] = {
    ACCESS_TOKEN_ALG: ECKey.import_key,
    ID_TOKEN_ALG: RSAKey.import_key,
}


@dataclass(frozen=True)
class SigningKey:
    alg: str
    key: ECKey | RSAKey
    kid: str
    drop_at: float | None = None  # None: the active key of its algorithm

    @classmethod
    def load(cls, alg: str, pem: bytes, drop_at: float | None = None) -> SigningKey:
        key = _IMPORT[alg](pem)
        return cls(alg, key, key.thumbprint(), drop_at)

    def public(self) -> dict[str, Any]:
        return self.key.as_dict(private=False) | {"kid": self.kid, "use": "sig", "alg": self.alg}


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class KeyStore:
    """Holds the private signing keys; publishes only their public halves."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        self.paths = {ACCESS_TOKEN_ALG: path, ID_TOKEN_ALG: path.with_name(path.stem + "-rs256.pem")}
        self.retired_dir = path.with_name("signing-keys-retired")
        self.now = now
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] = ()
        self._checked = 0.0
        self._active: dict[str, SigningKey] = {}
        self._retired: list[SigningKey] = []
        self._reload()

    @classmethod
    def load_or_create(cls, path: Path) -> KeyStore:
        """The keys under `path` (the ES256 key's file), creating the ES256 key on first run."""
        read_or_create_secret(path, lambda: _GENERATE[ACCESS_TOKEN_ALG]().as_pem(private=True))
        return cls(path)

    # ---- reading (every process) ----------------------------------------------------------------
    def _current_stamp(self) -> tuple[int, ...]:
        stamps = []
        for candidate in (*self.paths.values(), self.retired_dir):
            try:
                stamps.append(candidate.stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        return tuple(stamps)

    def _reload(self) -> None:
        stamp = self._current_stamp()
        active = {alg: SigningKey.load(alg, p.read_bytes()) for alg, p in self.paths.items() if p.exists()}
        retired = []
        for file in sorted(self.retired_dir.glob("*.pem")) if self.retired_dir.exists() else []:
            drop_at, _, alg = file.stem.partition("-")
            if alg in _IMPORT and drop_at.isdigit() and int(drop_at) > self.now():
                retired.append(SigningKey.load(alg, file.read_bytes(), float(drop_at)))
        self._active, self._retired, self._stamp = active, retired, stamp

    def refresh(self) -> None:
        """Pick up a rotation made by another process (checked at most once a second)."""
        if time.monotonic() - self._checked < RELOAD_INTERVAL:
            return
        with self._lock:
            self._checked = time.monotonic()
            if self._current_stamp() != self._stamp:
                self._reload()

    def active(self, alg: str = ACCESS_TOKEN_ALG) -> SigningKey:
        self.refresh()
        key = self._active.get(alg)
        if key is None:  # first need of this algorithm's key: make it once, every replica then reads it
            with self._lock:
                read_or_create_secret(self.paths[alg], lambda: _GENERATE[alg]().as_pem(private=True))
                self._reload()
            key = self._active[alg]
        return key

    @property
    def kid(self) -> str:
        """The kid of the active access-token key."""
        return self.active(ACCESS_TOKEN_ALG).kid

    def published(self) -> list[SigningKey]:
        self.refresh()
        return [*self._active.values(), *(k for k in self._retired if (k.drop_at or 0) > self.now())]

    def sign(self, claims: dict[str, Any], alg: str = ACCESS_TOKEN_ALG) -> str:
        key = self.active(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key.key, algorithms=[alg])

    def public_jwks(self) -> dict[str, Any]:
        """Every key a live token may be signed with (both algorithms, active and not yet dropped)."""
        self.active(ID_TOKEN_ALG)  # published from the start, so relying parties can cache it
        return {"keys": [k.public() for k in self.published()]}

    def verification_keys(self) -> KeySet:
        """A key set that follows rotations (the gateway keeps one for the life of the process)."""
        return LiveKeySet(self)

    def derivation_root(self) -> bytes:
        """Material for purpose-bound secrets that must survive key rotations (see `derive_secret`)."""
        return read_or_create_secret(self.paths[ACCESS_TOKEN_ALG].with_name("derivation-root.key"),
                                     lambda: secrets.token_bytes(32))

    # ---- rotation (the CLI) ---------------------------------------------------------------------
    def rotate(self, keep_seconds: int, algs: tuple[str, ...] = (ACCESS_TOKEN_ALG, ID_TOKEN_ALG)) -> list[SigningKey]:
        """New active keys for `algs`; the old ones stay published for `keep_seconds` (at least the
        lifetime of the tokens they signed). Keys past their time are deleted. Returns the new keys."""
        self.retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        drop_at = int(self.now()) + keep_seconds
        for alg in algs:
            path = self.paths[alg]
            if path.exists():
                _write_atomically(self.retired_dir / f"{drop_at}-{alg}.pem", path.read_bytes())
            _write_atomically(path, _GENERATE[alg]().as_pem(private=True))
        for file in self.retired_dir.glob("*.pem"):
            stamp = file.stem.partition("-")[0]
            if stamp.isdigit() and int(stamp) <= self.now():
                file.unlink(missing_ok=True)
        with self._lock:
            self._reload()
        return [self._active[alg] for alg in algs]


class LiveKeySet(KeySet):
    """The public keys of a KeyStore as a joserfc KeySet, re-read after a rotation."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store  # KeySet.__init__ is not called: the keys come from the store on each use

    @property  # type: ignore[override]
    def keys(self) -> list[Any]:
        return [ECKey.import_key(k.public()) if k.alg == ACCESS_TOKEN_ALG else RSAKey.import_key(k.public())
                for k in self._store.published()]


def derive_secret(store: KeyStore, label: str) -> bytes:
    """A purpose-bound secret, stable across key rotations, that replicas sharing the state dir agree on."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(store.derivation_root())
