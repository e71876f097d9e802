"""The signing key for access and id tokens: generated on first run, kept 0600 in the state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from .secret_files import read_or_create_secret

SIGNING_ALG = "ES256"


class KeyStore:
    """Holds the private signing key; publishes only the public half."""

    def __init__(self, key: ECKey) -> None:
        self._key = key
        self.kid = key.thumbprint()

    @classmethod
    def load_or_create(cls, path: Path, pem: str | None = None) -> KeyStore:
        if pem:
            return cls(ECKey.import_key(pem))
        pem_bytes = read_or_create_secret(
            path, lambda: ECKey.generate_key("P-256", private=True).as_pem(private=True))
        return cls(ECKey.import_key(pem_bytes))

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
