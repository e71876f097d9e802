"""Token endpoint over real HTTP: refresh rotation and reuse detection, confidential clients,
SMART Backend Services, introspection, revocation, dynamic registration, audit failure."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from smart_auth.revocation import is_revoked

pytestmark = pytest.mark.integration

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _claims(env: Any, token: str) -> dict:
    return dict(jwt.decode(token, env.server.deps.keys.verification_keys()).claims)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_refresh_rotates_and_reuse_revokes_whole_grant(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    body = await env.full_flow(await env.new_account(), client, "offline_access patient/Observation.rs")
    first_access = _claims(env, body["access_token"])
    async with env.http() as http:
        r1 = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                  "refresh_token": body["refresh_token"]})
        assert r1.status_code == 200, r1.text
        rotated = r1.json()
        assert rotated["refresh_token"] != body["refresh_token"]
        second_access = _claims(env, rotated["access_token"])
        assert second_access["grant_id"] == first_access["grant_id"]
        assert not await is_revoked(env.redis, second_access)
        # Replaying the first (rotated-away) refresh token: grant revoked, live tokens dead.
        reuse = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                     "refresh_token": body["refresh_token"]})
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        assert await is_revoked(env.redis, second_access)
        latest = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                      "refresh_token": rotated["refresh_token"]})
        assert latest.json()["error"] == "invalid_grant"
    assert ("token.refresh_reuse", "failure") in env.audit.kinds()


async def test_refresh_by_other_client_and_scope_widening_refused(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    other, _ = await env.new_client()
    body = await env.full_flow(await env.new_account(), client, "offline_access patient/Observation.rs")
    async with env.http() as http:
        r = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": other.client_id,
                                                 "refresh_token": body["refresh_token"]})
        assert r.json()["error"] == "invalid_grant"
        r = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                 "refresh_token": body["refresh_token"],
                                                 "scope": "patient/*.cruds"})
        assert r.json()["error"] == "invalid_scope"


async def test_online_access_refresh_is_shorter_lived_and_ends_with_session(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    body = await env.full_flow(await env.new_account(), client, "online_access patient/Observation.rs")
    grant = await env.server.grants.grant_for_refresh(body["refresh_token"])
    assert grant.online
    assert grant.refresh_exp - time.time() <= env.settings.online_refresh_token_ttl + 5
    assert await env.server.grants.revoke_for_session(grant.session_id) == 1
    assert await is_revoked(env.redis, _claims(env, body["access_token"]))


async def test_grant_store_revoke_for_account_and_patient(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    body = await env.full_flow(account, client, "offline_access patient/Observation.rs")
    assert await env.server.grants.revoke_for(account.id, "pt-other") == 0
    assert await env.server.grants.revoke_for(account.id, "pt-0001") == 1
    assert await is_revoked(env.redis, _claims(env, body["access_token"]))


async def test_grant_store_revoke_for_spares_the_grants_of_one_sign_in(oauth_env: Any) -> None:
    """A password change ends the account's grants everywhere but in the sign-in where it was made."""
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    here = await env.full_flow(account, client, "offline_access patient/Observation.rs")
    elsewhere = await env.full_flow(account, client, "offline_access patient/Observation.rs")
    kept = await env.server.grants.grant_for_refresh(here["refresh_token"])
    assert await env.server.grants.revoke_for(account.id, keep_session=kept.session_id) == 1
    assert await is_revoked(env.redis, _claims(env, elsewhere["access_token"]))
    assert not await is_revoked(env.redis, _claims(env, here["access_token"]))
    assert await env.server.grants.is_active(kept.grant_id)


async def test_confidential_symmetric_client_basic_and_post(oauth_env: Any) -> None:
    env = oauth_env
    basic, secret = await env.new_client(token_endpoint_auth_method="client_secret_basic")
    body = await env.full_flow(await env.new_account(), basic, "offline_access patient/Observation.rs",
                               token_headers=_basic(basic.client_id, secret), token_form={})
    async with env.http() as http:
        ok = await http.post("/auth/token", headers=_basic(basic.client_id, secret),
                             data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
        assert ok.status_code == 200, ok.text
        post, post_secret = await env.new_client(token_endpoint_auth_method="client_secret_post")
        body = await env.full_flow(await env.new_account(), post, "patient/Observation.rs",
                                   token_form={"client_id": post.client_id, "client_secret": post_secret})
        assert body["access_token"]
        as_basic = await http.post("/auth/token", headers=_basic(post.client_id, post_secret),
                                   data={"grant_type": "refresh_token", "refresh_token": "x"})
        assert as_basic.status_code == 401  # registered for client_secret_post only
        wrong = await http.post("/auth/token", headers=_basic(basic.client_id, "nope"),
                                data={"grant_type": "refresh_token", "refresh_token": "x"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert wrong.headers["www-authenticate"].startswith("Basic")
        no_auth = await http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "x",
                                                       "client_id": basic.client_id})
        assert no_auth.status_code == 401 and no_auth.json()["error"] == "invalid_client"


async def test_confidential_client_code_exchange_requires_secret(oauth_env: Any) -> None:
    env = oauth_env
    client, secret = await env.new_client(token_endpoint_auth_method="client_secret_post")
    account = await env.new_account()
    verifier, challenge = env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="patient/Observation.rs", challenge=challenge)
        code, _ = await env.code_from(await env.consent(browser, page))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uris[0],
            "code_verifier": verifier, "client_id": client.client_id}
    async with env.http() as http:
        refused = await http.post("/auth/token", data=form)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        # the refused attempt did not burn the code: client authentication comes first
        ok = await http.post("/auth/token", data=form | {"client_secret": secret})
        assert ok.status_code == 200, ok.text


async def test_token_endpoint_error_codes(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    async with env.http() as http:
        r = await http.post("/auth/token", data={"client_id": client.client_id})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
        r = await http.post("/auth/token", data={"grant_type": "password", "client_id": client.client_id})
        assert r.json()["error"] == "unsupported_grant_type"
        r = await http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client.client_id})
        assert r.json()["error"] == "unauthorized_client"
        r = await http.post("/auth/token", data={"grant_type": "authorization_code", "client_id": client.client_id,
                                                 "code": "bogus", "redirect_uri": client.redirect_uris[0],
                                                 "code_verifier": "a" * 50})
        assert r.json()["error"] == "invalid_grant"
        r = await http.post("/auth/token", data={"grant_type": "authorization_code", "client_id": "ghost",
                                                 "code": "bogus"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


# ---------------- SMART Backend Services ----------------

def _rsa() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-" + secrets.token_hex(3)}, private=True)


async def _backend_client(env: Any, key: Any, scope: str | None = "system/Patient.rs system/Observation.rs"):
    jwks = {"keys": [key.as_dict(private=False)]}
    client, _ = await env.new_client(redirect_uris=[], token_endpoint_auth_method="private_key_jwt",
                                     grant_types=["client_credentials"], jwks=jwks, scope=scope)
    return client


def _assertion(env: Any, client_id: str, key: Any, alg: str = "RS384", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": env.url + "/auth/token", "exp": now + 240,
              "jti": secrets.token_hex(12)} | overrides
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


async def _cc(env: Any, assertion: str, scope: str = "system/Patient.rs") -> Any:
    async with env.http() as http:
        return await http.post("/auth/token", data={
            "grant_type": "client_credentials", "scope": scope, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion})


async def test_backend_services_good_assertion_and_replay(oauth_env: Any) -> None:
    env = oauth_env
    key = _rsa()
    client = await _backend_client(env, key)
    assertion = _assertion(env, client.client_id, key)
    r = await _cc(env, assertion)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "system/Patient.rs" and "refresh_token" not in body
    claims = _claims(env, body["access_token"])
    assert claims["sub"] == client.client_id and "patient" not in claims
    replay = await _cc(env, assertion)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"


async def test_backend_services_es384(oauth_env: Any) -> None:
    env = oauth_env
    key = ECKey.generate_key("P-384", parameters={"kid": "ec-1"}, private=True)
    client = await _backend_client(env, key)
    r = await _cc(env, _assertion(env, client.client_id, key, alg="ES384"))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"aud": "http://127.0.0.1:1/auth/token"}, "invalid_client"),
        ({"exp": int(time.time()) - 600}, "invalid_client"),
        ({"exp": int(time.time()) + 3600}, "invalid_client"),
        ({"jti": None}, "invalid_client"),
        ({"sub": "somebody-else"}, "invalid_client"),
    ],
)
async def test_backend_services_bad_assertions(oauth_env: Any, change: dict, error: str) -> None:
    env = oauth_env
    key = _rsa()
    client = await _backend_client(env, key)
    if "exp" in change:
        change = {"exp": int(time.time()) + (change["exp"] - int(time.time()))}
    r = await _cc(env, _assertion(env, client.client_id, key, **change))
    assert r.status_code == 401 and r.json()["error"] == error


async def test_backend_services_wrong_key_and_non_system_scope(oauth_env: Any) -> None:
    env = oauth_env
    key = _rsa()
    client = await _backend_client(env, key)
    stranger = RSAKey.generate_key(2048, parameters={"kid": key.kid}, private=True)
    r = await _cc(env, _assertion(env, client.client_id, stranger))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await _cc(env, _assertion(env, client.client_id, key), scope="patient/Patient.rs")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = await _cc(env, _assertion(env, client.client_id, key), scope="system/Condition.rs")
    assert r.json()["error"] == "invalid_scope"  # not registered for this client
    hs = jwt.encode({"alg": "HS256"}, {"iss": client.client_id, "sub": client.client_id},
                    OctKey.import_key("x" * 32), algorithms=["HS256"])
    r = await _cc(env, hs)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


# ---------------- introspection and revocation ----------------

async def test_introspection_and_revocation(oauth_env: Any) -> None:
    env = oauth_env
    app, _ = await env.new_client()
    rs, rs_secret = await env.new_client(client_name="Resource server",
                                         token_endpoint_auth_method="client_secret_basic")
    body = await env.full_flow(await env.new_account(), app, "offline_access patient/Observation.rs")
    async with env.http() as http:
        r = await http.post("/auth/introspect", headers=_basic(rs.client_id, rs_secret),
                            data={"token": body["access_token"]})
        info = r.json()
        assert info["active"] is True and info["patient"] == "pt-0001"
        # the same absolute URL the id_token carries
        assert info["fhirUser"] == env.fhir_base + "/Patient/pt-0001"
        assert info["scope"] == "offline_access patient/Observation.rs"
        r = await http.post("/auth/introspect", headers=_basic(rs.client_id, rs_secret),
                            data={"token": body["refresh_token"]})
        assert r.json()["active"] is True and r.json()["token_type"] == "refresh_token"
        # a public client cannot introspect; its own bearer token can ask about its own tokens
        r = await http.post("/auth/introspect", data={"token": body["access_token"], "client_id": app.client_id})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = await http.post("/auth/introspect", headers={"Authorization": "Bearer " + body["access_token"]},
                            data={"token": body["access_token"]})
        assert r.json()["active"] is True
        # revoke the access token: the gateway's check sees it at once, introspection says inactive
        r = await http.post("/auth/revoke", data={"token": body["access_token"], "client_id": app.client_id})
        assert r.status_code == 200
        assert await is_revoked(env.redis, _claims(env, body["access_token"]))
        r = await http.post("/auth/introspect", headers=_basic(rs.client_id, rs_secret),
                            data={"token": body["access_token"]})
        assert r.json() == {"active": False}
        # revoke the refresh token: the whole grant ends
        refreshed = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                         "refresh_token": body["refresh_token"]})
        new = refreshed.json()
        r = await http.post("/auth/revoke", data={"token": new["refresh_token"], "client_id": app.client_id})
        assert r.status_code == 200
        assert await is_revoked(env.redis, _claims(env, new["access_token"]))
        r = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                 "refresh_token": new["refresh_token"]})
        assert r.json()["error"] == "invalid_grant"
        unknown = await http.post("/auth/revoke", data={"token": "never-issued", "client_id": app.client_id})
        assert unknown.status_code == 200
        r = await http.post("/auth/introspect", headers=_basic(rs.client_id, rs_secret), data={"token": "junk"})
        assert r.json() == {"active": False}
    assert ("token.revoke", "success") in env.audit.kinds()


async def test_revoke_by_other_client_has_no_effect(oauth_env: Any) -> None:
    env = oauth_env
    app, _ = await env.new_client()
    other, _ = await env.new_client()
    body = await env.full_flow(await env.new_account(), app, "patient/Observation.rs")
    async with env.http() as http:
        r = await http.post("/auth/revoke", data={"token": body["access_token"], "client_id": other.client_id})
    assert r.status_code == 200
    assert not await is_revoked(env.redis, _claims(env, body["access_token"]))


# ---------------- dynamic registration ----------------

async def test_dynamic_registration_on_and_off(oauth_env: Any) -> None:
    env = oauth_env
    async with env.http() as http:
        r = await http.post("/auth/register", json={
            "client_name": "Registered app", "redirect_uris": ["http://127.0.0.1:7777/cb"],
            "token_endpoint_auth_method": "none", "scope": "openid fhirUser launch/patient patient/*.rs"})
        assert r.status_code == 201, r.text
        reg = r.json()
        assert reg["client_id"] and "client_secret" not in reg
        stored = await env.server.clients.get(reg["client_id"])
        assert stored.redirect_uris == ["http://127.0.0.1:7777/cb"]
        r = await http.post("/auth/register", json={"client_name": "Secret app",
                                                     "redirect_uris": ["https://app.example/cb"]})
        assert r.status_code == 201 and r.json()["client_secret"]
        assert (await env.server.clients.get(r.json()["client_id"])).secret_hash != r.json()["client_secret"]
        bad = await http.post("/auth/register", json={"client_name": "x", "token_endpoint_auth_method": "none"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_redirect_uri"
        system = await http.post("/auth/register", json={
            "client_name": "Backend", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [_rsa().as_dict(private=False)]}})
        assert system.status_code == 400 and system.json()["error"] == "invalid_client_metadata"
        env.server.settings.dynamic_registration = False
        try:
            off = await http.post("/auth/register", json={"client_name": "Late",
                                                          "redirect_uris": ["http://127.0.0.1:7777/cb"]})
            assert off.status_code == 404 and off.json()["error"] == "invalid_request"
            doc = (await http.get("/.well-known/smart-configuration")).json()
            assert "registration_endpoint" not in doc
        finally:
            env.server.settings.dynamic_registration = True


# ---------------- audit ----------------

async def test_token_refused_with_503_when_audit_is_down(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    key = _rsa()
    backend = await _backend_client(env, key)
    env.audit.failing = True
    try:
        r = await _cc(env, _assertion(env, backend.client_id, key))
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
        async with env.http() as http:
            r = await http.post("/auth/token", data={"grant_type": "password", "client_id": client.client_id})
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    finally:
        env.audit.failing = False


# ---------------- CLI ----------------

async def test_cli_registers_clients_and_creates_launches(oauth_env: Any, tmp_path: Any) -> None:
    import asyncio
    import json
    import os
    import sys

    env = oauth_env
    key = _rsa()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    cli_env = {**os.environ, "PORTAL_REDIS_URL": env.settings.redis_url}

    async def cli(*args: str) -> dict:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smart_auth.cli", *args, env=cli_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return json.loads(out)

    backend = await cli("client", "add", "--name", "Nightly export", "--jwks", str(jwks_file),
                        "--scope", "system/Patient.rs")
    assert backend["token_endpoint_auth_method"] == "private_key_jwt"
    assert backend["grant_types"] == ["client_credentials"]
    r = await _cc(env, _assertion(env, backend["client_id"], key))
    assert r.status_code == 200, r.text
    confidential = await cli("client", "add", "--name", "Web app", "--redirect-uri",
                             "http://127.0.0.1:8888/cb", "--confidential")
    stored = await env.server.clients.get(confidential["client_id"])
    assert stored.check_secret(confidential["client_secret"]) and stored.secret_hash != confidential["client_secret"]
    listed = await cli("client", "list")
    assert {backend["client_id"], confidential["client_id"]} <= {c["client_id"] for c in listed}
    assert all("secret_hash" not in c for c in listed)
    launch = await cli("launch", "create", "--patient", "pt-0001")
    assert (await env.server.launches.get(launch["launch"])).patient == "pt-0001"
    assert (await cli("client", "remove", backend["client_id"]))["removed"] is True
    assert await env.server.clients.get(backend["client_id"]) is None
