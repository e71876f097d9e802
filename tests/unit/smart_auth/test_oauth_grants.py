"""The token endpoint and its grant types over in-memory stores: authorization code + PKCE, refresh
rotation and reuse, public-client refresh, client credentials with private_key_jwt."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey

from smart_auth.clients import Client, hash_secret
from smart_auth.codes import CodeData

from .oauth_fakes import TOKEN_URL, OAuthCore, post

REDIRECT = "http://127.0.0.1:9000/cb"
VERIFIER = "v" * 50
SCOPE = "openid fhirUser offline_access patient/Observation.rs"


@pytest.fixture
def core(tmp_path: Path) -> OAuthCore:
    core = OAuthCore(tmp_path)
    core.clients.add(Client("app", "Public app", redirect_uris=[REDIRECT]))
    core.clients.add(Client("conf", "Confidential app", token_endpoint_auth_method="client_secret_post",
                            redirect_uris=[REDIRECT], secret_hash=hash_secret("pw")))
    return core


async def code_for(core: OAuthCore, client_id: str = "app", scope: str = SCOPE) -> str:
    return await core.codes.issue(CodeData(
        client_id=client_id, redirect_uri=REDIRECT, code_challenge=create_s256_code_challenge(VERIFIER),
        grant_id=uuid.uuid4().hex, scope=scope, account_id="acct-1", fhir_user="Patient/pt-1", patient="pt-1",
        nonce="n-1", session_id="sess-1",
    ))


async def exchange(core: OAuthCore, code: str, client_id: str = "app", **extra: str):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER,
            "client_id": client_id} | extra
    return await post(core.token, **form)


async def test_code_exchange_issues_smart_tokens_and_records_the_grant(core: OAuthCore) -> None:
    answer = await exchange(core, await code_for(core))
    assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.body
    assert body["patient"] == "pt-1" and body["need_patient_banner"] is True and body["refresh_token"]
    claims = core.issuer.verify(body["access_token"])
    assert claims["scope"] == SCOPE and claims["client_id"] == "app"
    id_token = jwt.decode(body["id_token"], core.keys.verification_keys()).claims
    assert id_token["nonce"] == "n-1" and id_token["fhirUser"] == "http://portal.test/fhir/Patient/pt-1"
    [grant] = core.grants.grants.values()
    assert grant.status == "active" and grant.patient == "pt-1"
    assert ("token.issue", "success") in core.audit_log.kinds()


@pytest.mark.parametrize(("change", "description"), [
    ({"code_verifier": "w" * 50}, "PKCE verification failed"),
    ({"redirect_uri": "http://127.0.0.1:9000/other"}, "redirect_uri does not match"),
    ({"client_id": "conf", "client_secret": "pw"}, "issued to another client"),
    ({"code": "made-up"}, "invalid or expired"),
])
async def test_code_exchange_refusals(core: OAuthCore, change: dict[str, str], description: str) -> None:
    code = await code_for(core)
    answer = await exchange(core, change.pop("code", code), **change)
    assert answer.status == 400 and answer.body["error"] == "invalid_grant"
    assert description in answer.body["error_description"]
    assert ("token", "failure") in core.audit_log.kinds() and not core.grants.grants


async def test_a_code_used_twice_revokes_what_it_issued(core: OAuthCore) -> None:
    code = await code_for(core)
    first = await exchange(core, code)
    second = await exchange(core, code)
    assert first.status == 200 and second.status == 400 and second.body["error"] == "invalid_grant"
    [grant] = core.grants.grants.values()
    assert grant.status == "revoked"
    assert ("token.code_reuse", "failure") in core.audit_log.kinds()


async def test_no_token_stays_alive_when_its_issue_cannot_be_audited(core: OAuthCore) -> None:
    code = await code_for(core)
    core.audit_log.failing = True
    answer = await exchange(core, code)
    assert answer.status == 503 and answer.body["error"] == "temporarily_unavailable"
    [grant] = core.grants.grants.values()
    assert grant.status == "revoked"


async def test_refresh_rotates_and_a_reused_token_revokes_the_grant(core: OAuthCore) -> None:
    first = (await exchange(core, await code_for(core))).body
    second = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"],
                        client_id="app")
    assert second.status == 200 and second.body["refresh_token"] != first["refresh_token"]
    narrowed = await post(core.token, grant_type="refresh_token", refresh_token=second.body["refresh_token"],
                          client_id="app", scope="patient/Observation.rs")
    assert narrowed.status == 200 and narrowed.body["scope"] == "patient/Observation.rs"
    reused = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"],
                        client_id="app")
    assert reused.status == 400 and reused.body["error"] == "invalid_grant"
    [grant] = core.grants.grants.values()
    assert grant.status == "revoked" and ("token.refresh_reuse", "failure") in core.audit_log.kinds()
    after = await post(core.token, grant_type="refresh_token", refresh_token=narrowed.body["refresh_token"],
                       client_id="app")
    assert after.status == 400 and after.body["error"] == "invalid_grant"


async def test_an_online_grant_ends_when_its_sign_in_session_idled_out(core: OAuthCore) -> None:
    online_scope = "openid fhirUser online_access patient/Observation.rs"
    online = (await exchange(core, await code_for(core, scope=online_scope))).body
    offline = (await exchange(core, await code_for(core))).body
    core.live_sessions.clear()  # the session's Redis key expired: nobody called sign-out
    refused = await post(core.token, grant_type="refresh_token", refresh_token=online["refresh_token"],
                         client_id="app")
    assert refused.status == 400 and refused.body["error"] == "invalid_grant"
    assert "session" in refused.body["error_description"]
    kept = await post(core.token, grant_type="refresh_token", refresh_token=offline["refresh_token"], client_id="app")
    assert kept.status == 200  # offline_access outlives the sign-in session by design
    statuses = sorted(g.status for g in core.grants.grants.values())
    assert statuses == ["active", "revoked"]


async def test_a_refresh_may_not_widen_the_scopes(core: OAuthCore) -> None:
    first = (await exchange(core, await code_for(core))).body
    wider = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"],
                       client_id="app", scope="patient/*.cruds")
    assert wider.status == 400 and wider.body["error"] == "invalid_scope"


async def test_public_client_refreshes_with_only_the_refresh_token(core: OAuthCore) -> None:
    first = (await exchange(core, await code_for(core))).body
    answer = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert answer.status == 200 and answer.body["access_token"]
    assert core.issuer.verify(answer.body["access_token"])["client_id"] == "app"


async def test_confidential_client_must_still_authenticate_to_refresh(core: OAuthCore) -> None:
    code = await code_for(core, client_id="conf")
    first = (await exchange(core, code, client_id="conf", client_secret="pw")).body
    bare = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert bare.status == 401 and bare.body["error"] == "invalid_client"
    wrong = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"],
                       client_id="conf", client_secret="nope")
    assert wrong.status == 401
    ok = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"],
                    client_id="conf", client_secret="pw")
    assert ok.status == 200


async def test_another_clients_refresh_token_is_refused(core: OAuthCore) -> None:
    first = (await exchange(core, await code_for(core))).body
    answer = await post(core.token, grant_type="refresh_token", refresh_token=first["refresh_token"],
                        client_id="conf", client_secret="pw")
    assert answer.status == 400 and answer.body["error"] == "invalid_grant"


async def test_unknown_refresh_token_without_client_is_an_authentication_failure(core: OAuthCore) -> None:
    answer = await post(core.token, grant_type="refresh_token", refresh_token="nothing-like-it")
    assert answer.status == 401 and answer.body["error"] == "invalid_client"


@pytest.mark.parametrize(("form", "status", "error"), [
    ({}, 400, "invalid_request"),
    ({"grant_type": "password", "client_id": "app"}, 400, "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "client_id": "app"}, 400, "unauthorized_client"),
    ({"grant_type": "authorization_code", "client_id": "nobody"}, 401, "invalid_client"),
])
async def test_token_endpoint_refusals(core: OAuthCore, form: dict[str, str], status: int, error: str) -> None:
    answer = await post(core.token, **form)
    assert answer.status == status and answer.body["error"] == error


# ---- client credentials (SMART Backend Services) ------------------------------------------------------
@pytest.fixture(scope="session")
def backend_key() -> RSAKey:
    """The backend service's key pair, made once (a 2048-bit RSA key takes tens of milliseconds)."""
    return RSAKey.generate_key(2048, private=True)


@pytest.fixture(scope="session")
def stranger_key() -> RSAKey:
    """A key pair no registered client holds."""
    return RSAKey.generate_key(2048, private=True)


@pytest.fixture
def backend(core: OAuthCore, backend_key: RSAKey) -> RSAKey:
    core.clients.add(Client("svc", "Backend", token_endpoint_auth_method="private_key_jwt", redirect_uris=[],
                            grant_types=["client_credentials"], scope="system/*.rs",
                            jwks={"keys": [backend_key.as_dict(private=False) | {"kid": "k1"}]}))
    return backend_key


def assertion(key: RSAKey, jti: str | None = None, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": "svc", "sub": "svc", "aud": TOKEN_URL, "exp": now + 240, "jti": jti or uuid.uuid4().hex} | claims
    return jwt.encode({"alg": "RS384", "kid": "k1"}, body, key, algorithms=["RS384"])


def backend_form(token: str, scope: str = "system/Patient.rs") -> dict[str, str]:
    return {"grant_type": "client_credentials", "scope": scope, "client_assertion": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}


async def test_backend_service_gets_a_system_token_once_per_assertion(core: OAuthCore, backend: RSAKey) -> None:
    signed = assertion(backend, jti="once")
    answer = await post(core.token, **backend_form(signed))
    assert answer.status == 200 and core.issuer.verify(answer.body["access_token"])["scope"] == "system/Patient.rs"
    assert "refresh_token" not in answer.body
    replay = await post(core.token, **backend_form(signed))
    assert replay.status == 401 and "already used" in replay.body["error_description"]


@pytest.mark.parametrize(("scope", "error"), [("patient/Patient.rs", "invalid_scope"),
                                              ("system/Patient.cruds", "invalid_scope"), ("", "invalid_scope")])
async def test_backend_service_scope_rules(core: OAuthCore, backend: RSAKey, scope: str, error: str) -> None:
    answer = await post(core.token, **backend_form(assertion(backend), scope))
    assert answer.status == 400 and answer.body["error"] == error


async def test_backend_assertion_rules(core: OAuthCore, backend: RSAKey, stranger_key: RSAKey) -> None:
    far = await post(core.token, **backend_form(assertion(backend, exp=int(time.time()) + 3600)))
    assert far.status == 401
    forged = await post(core.token, **backend_form(assertion(stranger_key)))
    assert forged.status == 401 and forged.body["error"] == "invalid_client"


async def test_a_backend_token_whose_issue_cannot_be_audited_is_revoked(core: OAuthCore, backend: RSAKey) -> None:
    core.audit_log.failing = True
    answer = await post(core.token, **backend_form(assertion(backend)))
    assert answer.status == 503 and len(core.revocations.jtis) == 1
