"""End-to-end SMART flows through the whole running app (`fhir_gateway.app:create_app` in uvicorn), real
HAPI and Redis, driven over HTTP exactly as people and apps do: the `portal-auth` CLI for set-up, the
enrolment / sign-in / consent pages in a cookie-holding client, the `fhirclient` library as a SMART app,
and private_key_jwt for a backend service. No handler is called directly and no token is minted here.

Tests share one enrolled patient (the patient of a fixture RelatedPerson, so the same person can later
withdraw that caregiver's access) and one signed-in browser session. The audit test runs last and checks
what all the others left in the audit stream.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fhirclient import client as fhir_client
from fhirclient.models.observation import Observation
from fhirclient.server import FHIRNotFoundException, FHIRUnauthorizedException
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from fixtures.context import fixture_tag
from tests.conftest import GatewayServer, RedisServer
from tests.integration.gateway.helpers import ehr_search

from .flows import (
    AppClient,
    Person,
    StreamTail,
    all_pages,
    assert_oauth_error,
    assert_refused,
    authorize_url,
    bearer,
    browser,
    code_flow,
    enrol_patient,
    fhir_get,
    follow_authorize,
    identity_of,
    person_from_cli,
    pkce,
    portal_auth,
    register_public_client,
    sign_in,
    subject_ref,
)

pytestmark = pytest.mark.integration

PATIENT_SCOPES = "patient/Patient.rs patient/Observation.rs"


# ---------------------------------------------------------------- shared set-up (module scope)
@pytest.fixture(scope="module")
def audit_tail(gateway: GatewayServer, redis_server: RedisServer) -> Iterator[StreamTail]:
    """Started before any flow: collects every AuditEvent the app appends to `audit:events`."""
    tail = StreamTail(gateway.env["PORTAL_REDIS_URL"]).start()
    try:
        yield tail
    finally:
        tail.stop()


@pytest.fixture(scope="module")
def caregiver_target(ehr_base_url: str) -> Iterator[dict[str, Any]]:
    """A fixture RelatedPerson whose patient has Observations: that patient is our patient. Fixture
    RelatedPersons are active; one left inactive by an interrupted earlier run is made active again."""
    tag = fixture_tag("")
    people = ehr_search(ehr_base_url, "RelatedPerson", {"_tag": f"{tag['system']}|{tag['code']}"})
    for rp in sorted(people, key=lambda r: (r["patient"]["reference"], r["id"]), reverse=True):
        patient_id = rp["patient"]["reference"].split("/", 1)[1]
        found = httpx.get(f"{ehr_base_url}/Observation", params={"patient": patient_id, "_summary": "count"},
                          timeout=30).json()
        if found.get("total"):
            break
    else:
        pytest.fail("the fixture data has no RelatedPerson of a patient with Observations")

    def make_active() -> None:
        current = httpx.get(f"{ehr_base_url}/RelatedPerson/{rp['id']}", timeout=30).json()
        if current.get("active") is not True:
            restored = {k: v for k, v in current.items() if k != "meta"} | {"active": True}
            restored["meta"] = {"tag": current.get("meta", {}).get("tag", [])}
            put = httpx.put(f"{ehr_base_url}/RelatedPerson/{rp['id']}", json=restored, timeout=30,
                            headers={"Content-Type": "application/fhir+json"})
            assert put.status_code in (200, 201), put.text

    make_active()
    yield {"related_person": rp["id"], "patient": patient_id}
    make_active()  # withdrawal marks the RelatedPerson inactive in the EHR: put the shared fixture back


@pytest.fixture(scope="module")
def patient_id(caregiver_target: dict[str, Any]) -> str:
    return caregiver_target["patient"]


@pytest.fixture(scope="module")
def other_patient(ehr_base_url: str, patient_id: str) -> str:
    for n in range(25, 0, -1):
        candidate = f"pt-{n:04d}"
        if candidate == patient_id:
            continue
        found = httpx.get(f"{ehr_base_url}/Observation", params={"patient": candidate, "_summary": "count"},
                          timeout=30).json()
        if found.get("total"):
            return candidate
    pytest.fail("no second patient with Observations")


@pytest.fixture(scope="module")
def app(gateway: GatewayServer, audit_tail: StreamTail) -> AppClient:
    return register_public_client(gateway, "E2E Health App")


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str, patient_id: str, audit_tail: StreamTail) -> Person:
    return enrol_patient(gateway, ehr_base_url, patient_id)


@pytest.fixture(scope="module")
def patient_browser(gateway: GatewayServer, patient: Person) -> Iterator[httpx.Client]:
    """The patient's browser, signed in once (password + TOTP) and reused by later flows."""
    with browser(gateway) as b:
        done = sign_in(b, patient, "/portal/")
        assert done.headers["location"] == "/portal/"
        yield b


def ehr_observation_ids(ehr_base_url: str, patient_id: str) -> set[str]:
    return {o["id"] for o in ehr_search(ehr_base_url, "Observation", {"patient": patient_id})}


# ---------------------------------------------------------------- 1. fhirclient standalone launch
def test_standalone_launch_with_fhirclient(gateway: GatewayServer, ehr_base_url: str, app: AppClient,
                                           patient: Person, patient_id: str) -> None:
    """fhirclient discovers the endpoints from /fhir/metadata, builds the authorize URL (PKCE S256),
    the person signs in (password + TOTP) and consents in the browser, fhirclient exchanges the code and
    reads the Patient and every Observation of that patient through /fhir."""
    smart_config = httpx.get(f"{gateway.fhir}/.well-known/smart-configuration", timeout=10)
    assert smart_config.status_code == 200
    config = smart_config.json()
    assert "S256" in config["code_challenge_methods_supported"]

    saved: dict[str, Any] = {}
    smart = fhir_client.FHIRClient(settings={
        "app_id": app.client_id, "api_base": gateway.fhir, "redirect_uri": app.redirect_uri,
        "scope": f"openid fhirUser {PATIENT_SCOPES}",
    }, save_func=saved.update)
    url = smart.authorize_url
    assert url.split("?")[0] == config["authorization_endpoint"]
    query = parse_qs(urlsplit(url).query)
    # fhirclient 4.x sends PKCE S256 itself, and asks for launch/patient (standalone patient picker).
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["aud"] == [gateway.fhir] and "launch/patient" in query["scope"][0].split()

    with browser(gateway) as b:
        redirect = follow_authorize(b, url, app.redirect_uri, person=patient)
    assert "code=" in redirect and "error=" not in redirect
    smart.handle_callback(redirect)
    assert smart.patient_id == patient_id
    assert smart.launch_context["token_type"] == "Bearer"

    resource = smart.patient
    assert resource is not None and resource.id == patient_id
    ident = identity_of(ehr_base_url, patient_id)
    assert resource.birthDate.isostring == ident["birth_date"]

    search = Observation.where(struct={"patient": patient_id, "_count": "100"})
    observations = list(search.perform_resources_iter(smart.server))
    assert observations, "the patient has Observations in the EHR"
    assert all(o.subject.reference.endswith(f"Patient/{patient_id}") for o in observations)
    assert {o.id for o in observations} == ehr_observation_ids(ehr_base_url, patient_id)

    # Another patient's data is not reachable with this token: a search naming them gets the compartment
    # constraint added (nothing found), a read of one of their Observations is 404 (no existence leak).
    stranger = "pt-0001" if patient_id != "pt-0001" else "pt-0002"
    assert list(Observation.where(struct={"patient": stranger}).perform_resources_iter(smart.server)) == []
    their_obs = ehr_search(ehr_base_url, "Observation", {"patient": stranger, "_count": 1})[0]["id"]
    with pytest.raises(FHIRNotFoundException):
        Observation.read(their_obs, smart.server)

    # The code is single-use: presenting it again is invalid_grant and revokes what it produced.
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    again = httpx.post(f"{gateway.url}/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
        "code_verifier": smart.server.auth.code_verifier or "x" * 43, "client_id": app.client_id}, timeout=10)
    assert_oauth_error(again, 400, "invalid_grant")
    smart._patient = None
    with pytest.raises(FHIRUnauthorizedException):
        list(Observation.where(struct={"patient": patient_id}).perform_resources_iter(smart.server))


# ---------------------------------------------------------------- 2. id_token fhirUser
def test_id_token_fhir_user_resolves_through_fhir(gateway: GatewayServer, app: AppClient,
                                                  patient_browser: httpx.Client, patient_id: str) -> None:
    nonce = secrets.token_urlsafe(8)
    token = code_flow(gateway, patient_browser, app, f"openid fhirUser {PATIENT_SCOPES}", nonce=nonce)
    jwks = httpx.get(f"{gateway.url}/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200
    keys = KeySet.import_key_set(jwks.json())
    decoded = jwt.decode(token["id_token"], keys)
    claims = decoded.claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": gateway.url}, aud={"essential": True, "value":
                          app.client_id}, exp={"essential": True}, sub={"essential": True}).validate(claims)
    assert claims["nonce"] == nonce
    assert claims["fhirUser"] == f"{gateway.fhir}/Patient/{patient_id}"

    resolved = httpx.get(claims["fhirUser"], headers=bearer(token["access_token"]), timeout=30)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resourceType"] == "Patient" and resolved.json()["id"] == patient_id

    # Without fhirUser in the scope the id_token carries no fhirUser claim.
    plain = code_flow(gateway, patient_browser, app, f"openid {PATIENT_SCOPES}")
    assert "fhirUser" not in jwt.decode(plain["id_token"], keys).claims


# ---------------------------------------------------------------- 3. EHR launch
def test_ehr_launch_binds_the_launch_patient(gateway: GatewayServer, ehr_base_url: str, app: AppClient,
                                             patient_browser: httpx.Client, patient_id: str,
                                             other_patient: str) -> None:
    """A staff account (`portal-auth staff add`) opens an app from a launch context made with
    `portal-auth launch create`: the token is bound to the launch patient. A patient account cannot use a
    launch for someone else's record (access_denied back at the app)."""
    practitioner = ehr_search(ehr_base_url, "Practitioner", {"_count": 1})[0]["id"]
    staff = person_from_cli(portal_auth(gateway, "staff", "add", "--username", f"e2e-staff-{secrets.token_hex(3)}",
                                        "--practitioner", practitioner))
    launch = json.loads(portal_auth(gateway, "launch", "create", "--patient", other_patient))["launch"]

    with browser(gateway) as b:
        token = code_flow(gateway, b, app, "launch openid fhirUser patient/Observation.rs patient/Patient.rs",
                          person=staff, launch=launch)
    assert token["patient"] == other_patient
    assert token["id_token"]
    assert "patient/Observation.rs" in token["scope"].split()
    observations = all_pages(gateway, "Observation", token["access_token"], {"_count": 100})
    assert observations and {subject_ref(o) for o in observations} == {f"Patient/{other_patient}"}
    assert {o["id"] for o in observations} == ehr_observation_ids(ehr_base_url, other_patient)
    read = fhir_get(gateway, f"Patient/{other_patient}", token["access_token"])
    assert read.status_code == 200 and read.json()["id"] == other_patient
    outside = fhir_get(gateway, f"Patient/{patient_id}", token["access_token"])
    assert_refused(outside, 404)  # outside the launch compartment: no existence leak

    # The patient account is not allowed the launch patient's record.
    launch2 = json.loads(portal_auth(gateway, "launch", "create", "--patient", other_patient))["launch"]
    _, challenge = pkce()
    redirect = follow_authorize(patient_browser, authorize_url(
        gateway, app, "launch patient/Observation.rs", challenge, "st-launch", launch=launch2), app.redirect_uri)
    query = parse_qs(urlsplit(redirect).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st-launch"] and "code" not in query

    # An unknown launch id is invalid_request, sent back to the app.
    redirect = follow_authorize(patient_browser, authorize_url(
        gateway, app, "launch patient/Observation.rs", challenge, "st-x", launch="no-such-launch"),
        app.redirect_uri)
    assert parse_qs(urlsplit(redirect).query)["error"] == ["invalid_request"]


# ---------------------------------------------------------------- 4. revocation and refresh reuse
def test_revocation_is_seen_by_the_gateway_at_once(gateway: GatewayServer, app: AppClient,
                                                   patient_browser: httpx.Client, patient_id: str) -> None:
    token = code_flow(gateway, patient_browser, app, PATIENT_SCOPES)
    access = token["access_token"]
    ok = fhir_get(gateway, f"Patient/{patient_id}", access)
    assert ok.status_code == 200, ok.text
    revoked = httpx.post(f"{gateway.url}/auth/revoke", data={"token": access, "token_type_hint": "access_token",
                                                             "client_id": app.client_id}, timeout=10)
    assert revoked.status_code == 200
    refused = fhir_get(gateway, f"Patient/{patient_id}", access)
    assert_refused(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    # Another client cannot revoke (RFC 7009: 200 either way, but nothing happens) - checked in test 4b.


def test_refresh_token_reuse_revokes_the_grant(gateway: GatewayServer, app: AppClient,
                                               patient_browser: httpx.Client, patient_id: str) -> None:
    token = code_flow(gateway, patient_browser, app, f"offline_access {PATIENT_SCOPES}")
    first_access, first_refresh = token["access_token"], token["refresh_token"]
    rotated = httpx.post(f"{gateway.url}/auth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": first_refresh,
                                                            "client_id": app.client_id}, timeout=10)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first_refresh and second["patient"] == patient_id
    assert fhir_get(gateway, f"Patient/{patient_id}", second["access_token"]).status_code == 200

    reused = httpx.post(f"{gateway.url}/auth/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": first_refresh,
                                                           "client_id": app.client_id}, timeout=10)
    assert_oauth_error(reused, 400, "invalid_grant")
    for access in (second["access_token"], first_access):
        refused = fhir_get(gateway, f"Patient/{patient_id}", access)
        assert_refused(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer")
    # The whole grant is dead: the newest refresh token is refused too.
    newest = httpx.post(f"{gateway.url}/auth/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": second["refresh_token"],
                                                           "client_id": app.client_id}, timeout=10)
    assert_oauth_error(newest, 400, "invalid_grant")


# ---------------------------------------------------------------- 5. backend services
def test_backend_service_private_key_jwt(gateway: GatewayServer, ehr_base_url: str, patient_id: str,
                                         other_patient: str, tmp_path: Any) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": f"e2e-{uuid.uuid4().hex[:8]}", "alg": "RS384",
                                                "use": "sig"})
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    registered = json.loads(portal_auth(gateway, "client", "add", "--name", "E2E Backend", "--jwks",
                                        str(jwks_file), "--scope", "system/Observation.rs system/Patient.rs"))
    client_id = registered["client_id"]
    token_url = f"{gateway.url}/auth/token"

    def assertion(jti: str | None = None) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"},
                          {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + 240,
                           "jti": jti or uuid.uuid4().hex}, key, algorithms=["RS384"])

    def ask(scope: str, signed: str) -> httpx.Response:
        return httpx.post(token_url, data={
            "grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed}, timeout=10)

    jti = uuid.uuid4().hex
    got = ask("system/Observation.rs system/Patient.rs", assertion(jti))
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"
    body = got.json()
    assert "refresh_token" not in body and "patient" not in body
    access = body["access_token"]
    for who in (patient_id, other_patient):
        found = all_pages(gateway, "Observation", access, {"patient": who, "_count": 100})
        assert found and {subject_ref(o) for o in found} == {f"Patient/{who}"}
        assert {o["id"] for o in found} == ehr_observation_ids(ehr_base_url, who)
    assert fhir_get(gateway, f"Patient/{other_patient}", access).status_code == 200
    assert_refused(fhir_get(gateway, "MedicationRequest", access, patient=patient_id), 403)

    # Refusals at the token endpoint, each with its RFC 6749 code.
    assert_oauth_error(ask("system/Observation.rs", assertion(jti)), 401, "invalid_client")  # jti replay
    assert_oauth_error(ask("system/MedicationRequest.rs", assertion()), 400, "invalid_scope")
    assert_oauth_error(ask("patient/Observation.rs", assertion()), 400, "invalid_scope")
    stranger = RSAKey.generate_key(2048, parameters={"kid": key.kid})
    now = int(time.time())
    forged = jwt.encode({"alg": "RS384", "kid": key.kid}, {"iss": client_id, "sub": client_id, "aud": token_url,
                                                           "iat": now, "exp": now + 240, "jti": uuid.uuid4().hex},
                        stranger, algorithms=["RS384"])
    assert_oauth_error(ask("system/Observation.rs", forged), 401, "invalid_client")


# ---------------------------------------------------------------- 6. caregiver
def test_caregiver_reads_then_loses_access_when_withdrawn(
        gateway: GatewayServer, ehr_base_url: str, app: AppClient, caregiver_target: dict[str, Any],
        patient: Person, patient_browser: httpx.Client, patient_id: str, other_patient: str) -> None:
    rp_id = caregiver_target["related_person"]
    out = portal_auth(gateway, "proxy", "link", "--patient", patient_id, "--related-person", rp_id,
                      "--caregiver-username", f"e2e-carer-{secrets.token_hex(3)}")
    carer = person_from_cli(out)

    with browser(gateway) as c:
        token = code_flow(gateway, c, app, f"openid fhirUser launch/patient {PATIENT_SCOPES}", person=carer,
                          pick=patient_id)
    assert token["patient"] == patient_id
    id_claims = jwt.decode(token["id_token"], KeySet.import_key_set(
        httpx.get(f"{gateway.url}/.well-known/jwks.json", timeout=10).json())).claims
    assert id_claims["fhirUser"] == f"{gateway.fhir}/RelatedPerson/{rp_id}"
    access = token["access_token"]
    found = all_pages(gateway, "Observation", access, {"_count": 100})
    assert found and {subject_ref(o) for o in found} == {f"Patient/{patient_id}"}
    assert {o["id"] for o in found} == ehr_observation_ids(ehr_base_url, patient_id)
    assert_refused(fhir_get(gateway, f"Patient/{other_patient}", access), 404)

    # The patient withdraws the caregiver's access through the JSON API of their signed-in session.
    listing = patient_browser.get("/auth/api/proxies")
    assert listing.status_code == 200, listing.text
    link = next(p for p in listing.json()["proxies"] if p["relatedPerson"] == f"RelatedPerson/{rp_id}")
    assert link["status"] == "active"
    no_csrf = patient_browser.delete(f"/auth/api/proxies/{link['id']}")
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "invalid_csrf"
    withdrawn = patient_browser.delete(f"/auth/api/proxies/{link['id']}",
                                       headers={"X-CSRF-Token": listing.json()["csrf_token"]})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
    assert withdrawn.json()["revoked_grants"] >= 1

    refused = fhir_get(gateway, "Observation", access)
    assert_refused(refused, 401)
    rp = httpx.get(f"{ehr_base_url}/RelatedPerson/{rp_id}", timeout=30).json()
    assert rp["active"] is False  # the EHR's record of the caregiver relationship is ended too
    assert refused.headers["www-authenticate"].startswith("Bearer")

    # Signed in again, the caregiver has no patient left to open.
    with browser(gateway) as c:
        _, challenge = pkce()
        redirect = follow_authorize(c, authorize_url(gateway, app, f"launch/patient {PATIENT_SCOPES}", challenge,
                                                     "st-carer"), app.redirect_uri, person=carer)
    assert parse_qs(urlsplit(redirect).query)["error"] == ["access_denied"]


# ---------------------------------------------------------------- 7. audit (runs last)
def test_audit_stream_holds_reads_and_token_events_without_demographics(
        gateway: GatewayServer, ehr_base_url: str, audit_tail: StreamTail, patient_id: str,
        other_patient: str) -> None:
    events = audit_tail.snapshot()
    assert events, "no AuditEvent reached the audit stream"
    assert all(e["resourceType"] == "AuditEvent" for _, e in events)

    def entity_refs(event: dict[str, Any]) -> set[str]:
        return {(x.get("what") or {}).get("reference", "") for x in event.get("entity", [])}

    def is_rest(event: dict[str, Any]) -> bool:
        return event["type"].get("code") == "rest"

    def subtype_codes(event: dict[str, Any]) -> set[str]:
        return {c.get("code", "") for c in event.get("subtype", [])}

    for who in (patient_id, other_patient):
        reads = [e for _, e in events if is_rest(e) and any(r.endswith(f"Patient/{who}") for r in entity_refs(e))]
        assert reads, f"no REST AuditEvent names Patient/{who}"
        assert any(e["outcome"] == "0" for e in reads)
        assert any({"read", "search-type"} & subtype_codes(e) for e in reads)
    # Refused reads are audited too (the 401s and 403s above).
    assert any(is_rest(e) and e["outcome"] != "0" for _, e in events)

    token_events = [e for _, e in events if not is_rest(e)
                    and any("token" in c for c in subtype_codes(e))]
    assert token_events, "no token issue events in the audit stream"
    assert any(any(r.endswith(f"Patient/{patient_id}") for r in entity_refs(e)) for e in token_events)

    # No patient name or birth date in any of them.
    forbidden: set[str] = set()
    for who in (patient_id, other_patient):
        resource = identity_of(ehr_base_url, who)["resource"]
        forbidden.add(resource["birthDate"])
        for name in resource.get("name", []):
            forbidden.update(p for p in [name.get("family"), name.get("text"), *name.get("given", [])] if p)
    for raw, _ in events:
        for word in forbidden:
            assert not re.search(rf"\b{re.escape(word)}\b", raw), f"{word!r} leaked into an AuditEvent: {raw[:300]}"
