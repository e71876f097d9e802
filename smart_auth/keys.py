"""The signing key for access and id tokens: generated on first run, kept 0600 in the state directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

SIGNING_ALG = "ES256"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two replicas starting at once must not overwrite each other's key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class KeyStore:
    """Holds the private signing key; publishes only the public half."""

    def __init__(self, key: ECKey) -> None:
        self._key = key
        self.kid = key.thumbprint()

    @classmethod
    def load_or_create(cls, path: Path, pem: str | None = None) -> KeyStore:
        if pem:
            return cls(ECKey.import_key(pem))
        if not path.exists():
            key = ECKey.generate_key("P-256", private=True)
            try:
                _write_private(path, key.as_pem(private=True))
            except FileExistsError:
                pass  # another process won the race; use its key
        return cls(ECKey.import_key(path.read_bytes()))

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": SIGNING_ALG, "kid": self.kid, "typ": "JWT"}, claims, self._key)

    def public_jwks(self) -> dict[str, Any]:
        public = self._key.as_dict(private=False)
        public.update({"kid": self.kid, "use": "sig", "alg": SIGNING_ALG})
        return {"keys": [public]}

    def verification_keys(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())


def derive_secret(store: KeyStore, label: str) -> bytes:
    """A purpose-bound secret derived from the signing key, so replicas sharing the key agree on it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    material = store._key.as_pem(private=True)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(material)
