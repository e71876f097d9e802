"""Signing keys: ES256 access tokens, RS256 id_tokens, both in the JWKS; rotation keeps the old keys
published until their tokens have expired, and every process sees the rotation."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from fhir_gateway.caller import TokenVerifier
from smart_auth import keys as keys_module
from smart_auth.keys import KeyStore
from smart_auth.tokens import Subject, TokenIssuer

PUBLIC = "http://portal.test"


@pytest.fixture(autouse=True)
def no_reload_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "RELOAD_INTERVAL", 0.0)


def issue(store: KeyStore) -> dict[str, str]:
    issuer = TokenIssuer(store, public_url=PUBLIC, access_token_ttl=600)
    subject = Subject(sub="a", client_id="c", scope="openid fhirUser patient/*.rs", grant_id="g",
                      fhir_user="Patient/p", patient="p")
    body, _ = issuer.response(subject)
    return body


def test_id_tokens_are_rs256_access_tokens_es256_and_the_jwks_has_both(tmp_path: Path) -> None:
    store = KeyStore.load_or_create(tmp_path / "signing-key.pem")
    body = issue(store)
    jwks = store.public_jwks()
    assert {k["alg"]: k["kty"] for k in jwks["keys"]} == {"ES256": "EC", "RS256": "RSA"}
    rsa = next(k for k in jwks["keys"] if k["kty"] == "RSA")
    assert len(base64.urlsafe_b64decode(rsa["n"] + "==")) * 8 >= 2048 and "d" not in rsa
    published = KeySet.import_key_set(jwks)
    id_token = jwt.decode(body["id_token"], published, algorithms=["RS256"])
    assert id_token.header["alg"] == "RS256" and id_token.header["kid"] == rsa["kid"]
    access = jwt.decode(body["access_token"], published, algorithms=["ES256"])
    assert access.header["alg"] == "ES256"


async def test_the_gateway_takes_no_id_token_for_an_access_token(tmp_path: Path) -> None:
    store = KeyStore.load_or_create(tmp_path / "signing-key.pem")

    async def never_revoked(claims: object) -> bool:
        return False

    verifier = TokenVerifier(store.verification_keys(), never_revoked, issuer=PUBLIC, audience=PUBLIC + "/fhir")
    now = int(time.time())
    claims = {"iss": PUBLIC, "sub": "a", "aud": PUBLIC + "/fhir", "exp": now + 60, "jti": "j", "scope": "x"}
    assert (await verifier.verify("Bearer " + store.sign(claims))).subject == "a"
    with pytest.raises(Exception, match="signature"):
        await verifier.verify("Bearer " + store.sign(claims, "RS256"))


async def test_rotation_keeps_old_tokens_valid_until_they_expire_in_every_process(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    app_process, cli = KeyStore.load_or_create(path), KeyStore.load_or_create(path)
    old = issue(app_process)
    old_kids = {k["kid"] for k in app_process.public_jwks()["keys"]}
    live_set = app_process.verification_keys()

    cli.rotate(keep_seconds=600)

    new = issue(app_process)  # the app signs with the new keys without a restart
    new_kids = {jwt.decode(new[t], live_set).header["kid"] for t in ("access_token", "id_token")}
    assert new_kids.isdisjoint(old_kids)
    published = {k["kid"] for k in app_process.public_jwks()["keys"]}
    assert old_kids | new_kids == published
    for token in (old["access_token"], old["id_token"], new["access_token"]):
        assert jwt.decode(token, live_set).claims["sub"] == "a"

    later = KeyStore(path, now=lambda: time.time() + 601)  # the old keys' tokens have all expired
    assert {k["kid"] for k in later.public_jwks()["keys"]} == new_kids
    cli.now = later.now
    cli.rotate(keep_seconds=600)
    assert len(list((tmp_path / "signing-keys-retired").glob("*.pem"))) == 2  # only the last rotation's


def test_derived_secrets_survive_a_rotation(tmp_path: Path) -> None:
    store = KeyStore.load_or_create(tmp_path / "signing-key.pem")
    before = keys_module.derive_secret(store, "page-links")
    store.rotate(keep_seconds=60)
    assert keys_module.derive_secret(store, "page-links") == before != keys_module.derive_secret(store, "other")
