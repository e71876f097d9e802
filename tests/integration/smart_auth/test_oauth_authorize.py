"""SMART standalone/EHR launch over real HTTP: discovery, authorize + PKCE + consent, token, refusals."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt

from smart_auth.revocation import is_revoked

pytestmark = pytest.mark.integration

PATIENT_SCOPE = "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Patient.rs"


def _claims(env: Any, token: str) -> dict:
    return dict(jwt.decode(token, env.server.deps.keys.verification_keys()).claims)


def _redirect_query(response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)


async def test_discovery_documents_are_identical_and_complete(oauth_env: Any) -> None:
    async with oauth_env.http() as http:
        a = await http.get("/.well-known/smart-configuration", headers={"Origin": "https://app.example"})
        b = await http.get("/fhir/.well-known/smart-configuration")
        jwks = await http.get("/.well-known/jwks.json")
        oidc = await http.get("/.well-known/openid-configuration")
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    doc = a.json()
    assert a.headers["access-control-allow-origin"] == "*"
    assert doc["issuer"] == oauth_env.url
    assert doc["token_endpoint"] == oauth_env.url + "/auth/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert {"launch-ehr", "launch-standalone", "client-confidential-asymmetric", "permission-v2",
            "sso-openid-connect", "authorize-post", "context-standalone-patient"} <= set(doc["capabilities"])
    assert doc["registration_endpoint"] == oauth_env.url + "/auth/register"
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert jwks.json()["keys"][0]["kid"] == oauth_env.server.deps.keys.kid
    assert oidc.json()["jwks_uri"] == doc["jwks_uri"]


async def test_standalone_launch_issues_smart_tokens(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account("patient", "pt-0001")
    body = await env.full_flow(account, client, PATIENT_SCOPE, nonce="n-42")
    assert body["token_type"] == "Bearer"
    assert body["patient"] == "pt-0001"
    assert body["need_patient_banner"] is True
    assert set(body["scope"].split()) == set(PATIENT_SCOPE.split())
    assert body["refresh_token"]
    claims = _claims(env, body["access_token"])
    assert claims["aud"] == env.fhir_base and claims["iss"] == env.url
    assert claims["patient"] == "pt-0001" and claims["fhirUser"] == "Patient/pt-0001"
    assert claims["client_id"] == client.client_id and claims["grant_id"]
    assert claims["exp"] - claims["iat"] == env.settings.access_token_ttl
    id_token = _claims(env, body["id_token"])
    assert id_token["aud"] == client.client_id and id_token["nonce"] == "n-42"
    assert id_token["fhirUser"] == env.fhir_base + "/Patient/pt-0001"
    assert ("token.issue", "success") in env.audit.kinds()
    assert ("consent", "success") in env.audit.kinds()


async def test_token_response_headers_no_store_and_cors(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    verifier, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="patient/Observation.rs", challenge=challenge)
        code, _ = await env.code_from(await env.consent(browser, page))
    async with env.http() as http:
        r = await http.post("/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": client.redirect_uris[0],
                                                 "code_verifier": verifier, "client_id": client.client_id},
                            headers={"Origin": "https://app.example"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    assert r.headers["access-control-allow-origin"] == "*"
    assert "refresh_token" not in r.json()  # neither offline_access nor online_access asked for


async def test_not_signed_in_goes_to_login_with_next(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    _, challenge = oauth_env.pkce()
    async with env.http() as anonymous:
        r = await env.authorize(anonymous, client, scope=PATIENT_SCOPE, challenge=challenge)
    assert r.status_code == 303
    location = urlsplit(r.headers["location"])
    assert location.path == "/auth/login"
    nxt = parse_qs(location.query)["next"][0]
    assert nxt.startswith("/auth/authorize?") and client.client_id in nxt and "code_challenge" in nxt
    async with env.http() as anonymous:
        login = await anonymous.get(r.headers["location"])
    assert login.status_code == 200 and "<form" in login.text  # the accounts side's sign-in page


async def test_unknown_client_and_redirect_mismatch_get_error_page_not_redirect(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    _, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        r = await browser.get("/auth/authorize", params={
            "response_type": "code", "client_id": "no-such-app", "redirect_uri": "http://evil.example/cb",
            "scope": "patient/*.rs", "state": "s", "aud": env.fhir_base, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        assert r.status_code == 400 and "location" not in r.headers
        assert "not registered" in r.text
        r = await browser.get("/auth/authorize", params={
            "response_type": "code", "client_id": client.client_id, "redirect_uri": "http://evil.example/cb",
            "scope": "patient/*.rs", "state": "s", "aud": env.fhir_base, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        assert r.status_code == 400 and "location" not in r.headers
        assert "<h1>App address mismatch</h1>" in r.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"aud": "http://other.example/fhir"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "system/Patient.rs"}, "invalid_scope"),
        ({"scope": "patient/Observation.xyz"}, "invalid_scope"),
        ({"launch": "not-a-launch"}, "invalid_request"),
    ],
)
async def test_authorize_refusals_redirect_with_rfc_error_and_state(
    oauth_env: Any, overrides: dict, error: str
) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    _, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        params = {"challenge": challenge, "scope": "patient/Observation.rs", "state": "keep-me"}
        extra = {k: v for k, v in overrides.items() if k not in ("scope",)}
        if "scope" in overrides:
            params["scope"] = overrides["scope"]
        if "code_challenge" in extra:
            extra.pop("code_challenge")
            params["challenge"] = None
        r = await env.authorize(browser, client, **params, **extra)
    query = _redirect_query(r)
    assert r.headers["location"].startswith(client.redirect_uris[0])
    assert query["error"] == [error]
    assert query["state"] == ["keep-me"]
    assert query["error_description"][0]


async def test_pkce_wrong_verifier_and_code_reuse_revokes_tokens(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    verifier, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="offline_access patient/Observation.rs",
                                   challenge=challenge)
        code, _ = await env.code_from(await env.consent(browser, page))
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uris[0],
            "client_id": client.client_id}
    async with env.http() as http:
        missing = await http.post("/auth/token", data=base)
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        wrong = await http.post("/auth/token", data=base | {"code_verifier": oauth_env.pkce()[0]})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        # The failed attempt consumed the code (single use), so a fresh authorization is needed.
    verifier, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="offline_access patient/Observation.rs",
                                   challenge=challenge)
        code, _ = await env.code_from(page if page.status_code == 302 else await env.consent(browser, page))
    base["code"] = code
    async with env.http() as http:
        bad_redirect = await http.post("/auth/token", data=base | {"code_verifier": verifier,
                                                                   "redirect_uri": "http://127.0.0.1:9999/other"})
        assert bad_redirect.json()["error"] == "invalid_grant"
    verifier, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="offline_access patient/Observation.rs",
                                   challenge=challenge)
        code, _ = await env.code_from(page if page.status_code == 302 else await env.consent(browser, page))
    base["code"] = code
    async with env.http() as http:
        good = await http.post("/auth/token", data=base | {"code_verifier": verifier})
        assert good.status_code == 200
        claims = _claims(env, good.json()["access_token"])
        assert not await is_revoked(env.redis, claims)
        again = await http.post("/auth/token", data=base | {"code_verifier": verifier})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        # RFC 6749 §4.1.2: the reuse revoked what the code had produced
        assert await is_revoked(env.redis, claims)
        refresh = await http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                       "refresh_token": good.json()["refresh_token"]})
        assert refresh.json()["error"] == "invalid_grant"
    assert ("token.code_reuse", "failure") in env.audit.kinds()


async def test_remembered_consent_skips_page_for_same_or_fewer_scopes(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    await env.full_flow(account, client, "patient/Observation.rs patient/Patient.rs")
    _, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        same = await env.authorize(browser, client, scope="patient/Observation.rs", challenge=challenge)
        assert same.status_code == 302 and "code=" in same.headers["location"]
        more = await env.authorize(browser, client, scope="patient/Observation.rs patient/Condition.rs",
                                   challenge=challenge)
        assert more.status_code == 200 and "Read your health conditions" in more.text


async def test_unticking_scopes_reduces_granted_scope(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    verifier, challenge = oauth_env.pkce()
    scope = "patient/Observation.rs?category=laboratory patient/Appointment.cruds patient/Patient.rs"
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope=scope, challenge=challenge)
        assert "Read your lab results" in page.text
        assert "See, book and change your appointments" in page.text
        assert "Allow <strong>Test Health App</strong>" in page.text
        answer = await env.consent(browser, page, keep=["patient/Observation.rs?category=laboratory"])
        code, _ = await env.code_from(answer)
    async with env.http() as http:
        r = await http.post("/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": client.redirect_uris[0],
                                                 "code_verifier": verifier, "client_id": client.client_id})
    assert r.json()["scope"] == "patient/Observation.rs?category=laboratory"
    assert _claims(env, r.json()["access_token"])["scope"] == "patient/Observation.rs?category=laboratory"


async def test_deny_redirects_access_denied(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    _, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="patient/Observation.rs", challenge=challenge)
        r = await env.consent(browser, page, decision="deny")
    assert _redirect_query(r)["error"] == ["access_denied"]
    assert ("consent", "failure") in env.audit.kinds()


async def test_consent_form_needs_csrf(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    _, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="patient/Observation.rs", challenge=challenge)
        pending = re.search(r'name="pending" value="([^"]+)"', page.text).group(1)
        r = await browser.post("/auth/authorize/decision", data={"pending": pending, "decision": "allow",
                                                                 "scope": "patient/Observation.rs",
                                                                 "csrf_token": "forged"})
    assert r.status_code == 403 and "location" not in r.headers


async def test_patient_account_cannot_get_user_scopes(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    body = await env.full_flow(account, client, "user/Observation.rs patient/Observation.rs")
    assert body["scope"] == "patient/Observation.rs"


async def test_authorize_post_is_supported(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    account = await env.new_account()
    _, challenge = oauth_env.pkce()
    async with await env.browser(account) as browser:
        page = await env.authorize(browser, client, scope="patient/Observation.rs", challenge=challenge,
                                   method="POST")
    assert page.status_code == 200 and "Read your test results and measurements" in page.text


async def test_caregiver_picks_patient_and_token_carries_on_behalf_of(oauth_env: Any) -> None:
    env = oauth_env
    client, _ = await env.new_client()
    carer = await env.new_account("caregiver", None, fhir_user="RelatedPerson/rp-0002-a")
    await env.add_proxy(carer, "pt-0002", "rp-0002-a", "Alex Two")
    await env.add_proxy(carer, "pt-0003", "rp-0003-a", "Sam Three")
    verifier, challenge = oauth_env.pkce()
    async with await env.browser(carer) as browser:
        picker = await env.authorize(browser, client, scope="openid fhirUser launch/patient patient/*.rs",
                                     challenge=challenge)
        assert picker.status_code == 200 and "Alex Two" in picker.text and "Sam Three" in picker.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', picker.text).group(1)
        pending = re.search(r'name="pending" value="([^"]+)"', picker.text).group(1)
        forged = await browser.post("/auth/authorize/patient", data={"csrf_token": csrf, "pending": pending,
                                                                     "patient": "pt-0009"})
        assert forged.status_code == 400  # not one of the listed people
        consent = await browser.post("/auth/authorize/patient", data={"csrf_token": csrf, "pending": pending,
                                                                      "patient": "pt-0003"})
        code, _ = await env.code_from(await env.consent(browser, consent))
    async with env.http() as http:
        r = await http.post("/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": client.redirect_uris[0],
                                                 "code_verifier": verifier, "client_id": client.client_id})
    body = r.json()
    assert body["patient"] == "pt-0003"
    claims = _claims(env, body["access_token"])
    assert claims["on_behalf_of"] == "RelatedPerson/rp-0003-a" == claims["fhirUser"]
    assert _claims(env, body["id_token"])["fhirUser"] == env.fhir_base + "/RelatedPerson/rp-0003-a"


async def test_ehr_launch_context_via_launch_api(oauth_env: Any) -> None:
    env = oauth_env
    staff_app, _ = await env.new_client(client_name="EHR app")
    staff = await env.new_account("staff", None, fhir_user="Practitioner/prac-01")
    body = await env.full_flow(staff, staff_app, "openid fhirUser user/Patient.rs")
    assert "patient" not in body
    assert _claims(env, body["access_token"])["fhirUser"] == "Practitioner/prac-01"
    async with env.http() as http:
        r = await http.post("/auth/launch", json={"patient": "pt-0001", "encounter": "enc-7"},
                            headers={"Authorization": "Bearer " + body["access_token"]})
        assert r.status_code == 201, r.text
        launch = r.json()["launch"]
        patient_token = (await env.full_flow(await env.new_account(), staff_app, "patient/*.rs"))["access_token"]
        refused = await http.post("/auth/launch", json={"patient": "pt-0001"},
                                  headers={"Authorization": "Bearer " + patient_token})
        assert refused.status_code == 403
    patient = await env.new_account("patient", "pt-0001")
    app, _ = await env.new_client(client_name="Launched app")
    got = await env.full_flow(patient, app, "launch openid fhirUser patient/Observation.rs", launch=launch)
    assert got["patient"] == "pt-0001" and got["encounter"] == "enc-7"
    assert got["need_patient_banner"] is False
    other = await env.new_account("patient", "pt-0005")
    _, challenge = oauth_env.pkce()
    async with await env.browser(other) as browser:
        r = await env.authorize(browser, app, scope="launch patient/Observation.rs", challenge=challenge,
                                launch=launch)
    assert _redirect_query(r)["error"] == ["access_denied"]
