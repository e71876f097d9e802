"""Introspection (RFC 7662), revocation (RFC 7009) and dynamic registration (RFC 7591) over in-memory
stores."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from smart_auth.clients import Client, hash_secret
from smart_auth.endpoint import EndpointRequest
from smart_auth.grants import GrantRecord
from smart_auth.tokens import Subject

from .oauth_fakes import OAuthCore, post


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def core(tmp_path: Path) -> OAuthCore:
    core = OAuthCore(tmp_path)
    core.clients.add(Client("app", "Public app", redirect_uris=["http://127.0.0.1/cb"]))
    core.clients.add(Client("rs", "Resource server", token_endpoint_auth_method="client_secret_basic",
                            secret_hash=hash_secret("rs-pw")))
    core.clients.add(Client("other", "Other app", token_endpoint_auth_method="client_secret_basic",
                            secret_hash=hash_secret("o-pw")))
    return core


def access_token(core: OAuthCore, client_id: str = "app") -> tuple[str, dict[str, Any]]:
    subject = Subject(sub="acct-1", client_id=client_id, scope="patient/Observation.rs", grant_id="g-1",
                      fhir_user="Patient/pt-1", patient="pt-1")
    return core.issuer.access_token(subject)


async def refresh_token(core: OAuthCore, client_id: str = "app") -> str:
    await core.grants.create(GrantRecord("g-2", client_id, "acct-1", "offline_access", fhir_user="Patient/pt-1",
                                         patient="pt-1"), "refresh-1", 3600)
    return "refresh-1"


# ---- introspection ------------------------------------------------------------------------------------
async def test_introspection_answers_with_the_same_absolute_fhir_user_as_the_id_token(core: OAuthCore) -> None:
    token, claims = access_token(core)
    answer = await post(core.introspection, basic("rs", "rs-pw"), token=token)
    assert answer.status == 200 and answer.body["active"] is True
    assert answer.body["fhirUser"] == "http://portal.test/fhir/Patient/pt-1"
    assert answer.body["jti"] == claims["jti"] and answer.body["patient"] == "pt-1"
    refresh = await post(core.introspection, basic("rs", "rs-pw"), token=await refresh_token(core))
    assert refresh.body["active"] is True and refresh.body["token_type"] == "refresh_token"
    assert refresh.body["fhirUser"] == "http://portal.test/fhir/Patient/pt-1"


async def test_revoked_expired_and_unknown_tokens_are_inactive(core: OAuthCore) -> None:
    token, claims = access_token(core)
    core.revocations.jtis.add(claims["jti"])
    for candidate in (token, "not-a-token"):
        answer = await post(core.introspection, basic("rs", "rs-pw"), token=candidate)
        assert answer.body == {"active": False}
    live, _ = access_token(core)
    core.clock[0] += core.settings.access_token_ttl + 1
    assert (await post(core.introspection, basic("rs", "rs-pw"), token=live)).body == {"active": False}


async def test_introspection_needs_a_confidential_client_or_a_bearer_token(core: OAuthCore) -> None:
    token, _ = access_token(core)
    public = await post(core.introspection, client_id="app", token=token)
    assert public.status == 401 and public.body["error"] == "invalid_client"
    wrong = await post(core.introspection, basic("rs", "nope"), token=token)
    assert wrong.status == 401
    bad_bearer = await post(core.introspection, {"authorization": "Bearer junk"}, token=token)
    assert bad_bearer.status == 401 and bad_bearer.headers["WWW-Authenticate"].startswith("Bearer")
    missing = await post(core.introspection, basic("rs", "rs-pw"))
    assert missing.status == 400 and missing.body["error"] == "invalid_request"
    assert ("introspect", "failure") in core.audit_log.kinds()


async def test_a_bearer_token_learns_only_about_its_own_clients_tokens(core: OAuthCore) -> None:
    mine, _ = access_token(core, "app")
    theirs, _ = access_token(core, "other")
    as_bearer = {"authorization": f"Bearer {mine}"}
    assert (await post(core.introspection, as_bearer, token=mine)).body["active"] is True
    assert (await post(core.introspection, as_bearer, token=theirs)).body == {"active": False}


# ---- revocation ---------------------------------------------------------------------------------------
async def test_a_client_revokes_its_own_access_token(core: OAuthCore) -> None:
    token, claims = access_token(core, "rs")
    answer = await post(core.revocation, basic("rs", "rs-pw"), token=token)
    assert answer.status == 200 and answer.body is None and claims["jti"] in core.revocations.jtis
    assert ("token.revoke", "success") in core.audit_log.kinds()


async def test_revoking_a_refresh_token_ends_its_grant(core: OAuthCore) -> None:
    refresh = await refresh_token(core)
    answer = await post(core.revocation, client_id="app", token=refresh)
    assert answer.status == 200 and core.grants.grants["g-2"].status == "revoked"


async def test_another_clients_or_an_unknown_token_is_answered_200_and_left_alone(core: OAuthCore) -> None:
    token, claims = access_token(core, "app")
    for candidate in (token, "unknown"):
        answer = await post(core.revocation, basic("other", "o-pw"), token=candidate)
        assert answer.status == 200
    assert claims["jti"] not in core.revocations.jtis
    refused = await post(core.revocation, basic("other", "bad"), token=token)
    assert refused.status == 401 and refused.body["error"] == "invalid_client"


# ---- registration -------------------------------------------------------------------------------------
async def register(core: OAuthCore, meta: dict[str, Any]) -> Any:
    return await core.registration(EndpointRequest(json=meta))


async def test_registration_creates_public_and_confidential_clients(core: OAuthCore) -> None:
    public = await register(core, {"client_name": "A", "redirect_uris": ["http://127.0.0.1/cb"],
                                   "token_endpoint_auth_method": "none"})
    assert public.status == 201 and "client_secret" not in public.body
    assert public.body["grant_types"] == ["authorization_code", "refresh_token"]
    secret = await register(core, {"client_name": "B", "redirect_uris": ["https://app.example/cb"]})
    assert secret.status == 201 and secret.body["client_secret"] and secret.body["client_secret_expires_at"] == 0
    assert [e["kind"] for e in core.audit_log.events] == ["client.register", "client.register"]


@pytest.mark.parametrize(("meta", "error"), [
    ({"redirect_uris": [5]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://127.0.0.1/cb#frag"], "token_endpoint_auth_method": "none"}, "invalid_redirect_uri"),
    ({"client_name": "no redirect", "token_endpoint_auth_method": "none"}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "tls_client_auth"},
     "invalid_client_metadata"),
    ({"redirect_uris": ["http://127.0.0.1/cb"], "response_types": ["token"]}, "invalid_client_metadata"),
    ({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt"},
     "invalid_client_metadata"),
    ({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "system/*.rs"}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"},
     "invalid_client_metadata"),
    ({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": {"en": "x"}}, "invalid_client_metadata"),
    ({"redirect_uris": ["http://127.0.0.1/cb"], "jwks_uri": ["x"]}, "invalid_client_metadata"),
])
async def test_registration_refuses_bad_metadata(core: OAuthCore, meta: dict[str, Any], error: str) -> None:
    answer = await register(core, meta)
    assert answer.status == 400 and answer.body["error"] == error
    assert not [c for c in core.clients.clients if c.startswith("dyn-")]
    assert ("client.register", "failure") in core.audit_log.kinds()


async def test_registration_switched_off_answers_404(tmp_path: Path) -> None:
    core = OAuthCore(tmp_path, dynamic_registration=False)
    assert core.registration.unavailable().status == 404


# -- found by the fuzzing suite (tests/fuzz) ---------------------------------------------------------
@pytest.mark.parametrize("authorization", ["Basic \u00e9\u00e9", "Basic !!!!", "Basic " + "\u00ff" * 8])
async def test_basic_credentials_that_are_not_base64_are_invalid_client(core: OAuthCore,
                                                                       authorization: str) -> None:
    token, _ = access_token(core)
    for endpoint in (core.introspection, core.revocation):
        answer = await post(endpoint, {"authorization": authorization}, token=token)
        assert answer.status == 401 and answer.body["error"] == "invalid_client", (endpoint, answer)
