"""What a SMART App Launch 2.x certification run (the ONC g(10) test kit's SMART groups) and a security
review check, one test per item of the conformance and hardening list, against the whole running app
(uvicorn, real HAPI, real Redis), driven over HTTP as apps and people do."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import (
    AppClient,
    Person,
    StreamTail,
    authorize_url,
    bearer,
    browser,
    code_flow,
    csrf,
    enrol_patient,
    fhir_get,
    follow_authorize,
    identity_of,
    pkce,
    portal_auth,
    register_public_client,
    sign_in,
)
from tests.integration.gateway.helpers import ehr_search

from .conftest import PATIENT

pytestmark = pytest.mark.integration

PERSON_SCOPES = "openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs"


def jwks(gw: GatewayServer, **kwargs: Any) -> KeySet:
    return KeySet.import_key_set(httpx.get(f"{gw.url}/.well-known/jwks.json", timeout=10, **kwargs).json())


def header(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


# ---- 1. id_tokens signed RS256 with an RSA key in the JWKS; both algorithms; rotation -------------------
def test_01_id_tokens_are_rs256_and_keys_rotate(gateway: GatewayServer, app: AppClient,
                                               patient_browser: httpx.Client) -> None:
    oidc = httpx.get(f"{gateway.url}/.well-known/openid-configuration", timeout=10).json()
    assert {"RS256", "ES256"} <= set(oidc["id_token_signing_alg_values_supported"])
    published = httpx.get(f"{gateway.url}/.well-known/jwks.json", timeout=10).json()["keys"]
    rsa = [k for k in published if k["kty"] == "RSA"]
    assert rsa and all(len(base64.urlsafe_b64decode(k["n"] + "==")) * 8 >= 2048 for k in rsa)
    before = code_flow(gateway, patient_browser, app, PERSON_SCOPES)
    assert header(before["id_token"])["alg"] == "RS256" and header(before["access_token"])["alg"] == "ES256"
    claims = jwt.decode(before["id_token"], jwks(gateway), algorithms=["RS256"]).claims
    assert claims["aud"] == app.client_id and claims["iss"] == gateway.url

    rotated = json.loads(portal_auth(gateway, "keys", "rotate"))
    assert {k["status"] for k in rotated} == {"active", "retired"}
    # The running server picks up a rotation made by another process within a second (KeyStore.refresh
    # looks at the key files at most once a second).
    time.sleep(1.1)
    after = code_flow(gateway, patient_browser, app, PERSON_SCOPES)
    assert header(after["id_token"])["kid"] != header(before["id_token"])["kid"]
    assert header(after["access_token"])["kid"] != header(before["access_token"])["kid"]
    keys = jwks(gateway)  # old and new keys both published: every token above still verifies
    for token in (before["id_token"], after["id_token"]):
        jwt.decode(token, keys, algorithms=["RS256"])
    for token in (before["access_token"], after["access_token"]):  # and the gateway takes both
        assert fhir_get(gateway, f"Patient/{PATIENT}", token).status_code == 200


# ---- 2. context-banner, context-style, context-ehr-encounter ------------------------------------------
def test_02_banner_style_and_encounter_context(gateway: GatewayServer, ehr_base_url: str, app: AppClient,
                                               patient_browser: httpx.Client) -> None:
    config = httpx.get(f"{gateway.url}/.well-known/smart-configuration", timeout=10).json()
    assert {"context-banner", "context-style", "context-ehr-encounter"} <= set(config["capabilities"])
    token = code_flow(gateway, patient_browser, app, PERSON_SCOPES)
    assert token["need_patient_banner"] is True
    style = httpx.get(token["smart_style_url"], timeout=10)
    assert style.status_code == 200 and style.headers["content-type"].startswith("application/json")
    css = httpx.get(f"{gateway.url}/static/site.css", timeout=10).text
    assert style.json()["color_highlight"] in css and style.json()["color_text"] in css
    assert {"color_background", "color_error", "font_family_body", "dim_border_radius"} <= set(style.json())

    encounter = ehr_search(ehr_base_url, "Encounter", {"patient": PATIENT, "_count": 1})[0]["id"]
    launch = json.loads(portal_auth(gateway, "launch", "create", "--patient", PATIENT, "--encounter", encounter))
    ehr = code_flow(gateway, patient_browser, app, "launch openid fhirUser patient/Encounter.rs",
                    launch=launch["launch"])
    assert ehr["encounter"] == encounter and ehr["patient"] == PATIENT
    assert ehr["need_patient_banner"] is False  # the EHR around the app shows the banner itself
    assert fhir_get(gateway, f"Encounter/{encounter}", ehr["access_token"]).status_code == 200


# ---- 3. public clients refresh without client_id; confidential clients must authenticate ---------------
def test_03_refresh_without_client_id_for_public_clients_only(gateway: GatewayServer, app: AppClient,
                                                              patient_browser: httpx.Client) -> None:
    first = code_flow(gateway, patient_browser, app, PERSON_SCOPES)
    refreshed = httpx.post(f"{gateway.url}/auth/token", timeout=10, headers={"Origin": "https://app.example"},
                           data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["access-control-allow-origin"] == "*"
    assert fhir_get(gateway, f"Patient/{PATIENT}", refreshed.json()["access_token"]).status_code == 200

    redirect = f"http://127.0.0.1:{40000 + secrets.randbelow(20000)}/callback"
    created = json.loads(portal_auth(gateway, "client", "add", "--name", "Confidential", "--redirect-uri",
                                     redirect, "--confidential"))
    confidential = AppClient(created["client_id"], redirect)
    verifier, challenge = pkce()
    final = follow_authorize(patient_browser, authorize_url(gateway, confidential, PERSON_SCOPES, challenge,
                                                            "st-c"), redirect)
    code = parse_qs(urlsplit(final).query)["code"][0]
    issued = httpx.post(f"{gateway.url}/auth/token", timeout=10, auth=(confidential.client_id,
                                                                        created["client_secret"]),
                        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                              "code_verifier": verifier}).json()
    bare = httpx.post(f"{gateway.url}/auth/token", timeout=10,
                      data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"
    authenticated = httpx.post(f"{gateway.url}/auth/token", timeout=10,
                               auth=(confidential.client_id, created["client_secret"]),
                               data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert authenticated.status_code == 200, authenticated.text


# ---- 4. the CapabilityStatement and every resource the gateway builds validate with 0 errors -----------
def validation_errors(ehr_base_url: str, resource: dict[str, Any]) -> list[str]:
    r = httpx.post(f"{ehr_base_url}/{resource['resourceType']}/$validate", json=resource, timeout=60,
                   headers={"Content-Type": "application/fhir+json"})
    outcome = r.json()
    return [f"{i.get('diagnostics')} @ {i.get('location') or i.get('expression')}"
            for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def test_04_what_the_gateway_builds_is_valid_fhir(gateway: GatewayServer, ehr_base_url: str, app: AppClient,
                                                  patient_browser: httpx.Client) -> None:
    capability = httpx.get(f"{gateway.fhir}/metadata", timeout=10).json()
    oauth = capability["rest"][0]["security"]["extension"][0]
    assert {e["url"] for e in oauth["extension"]} <= {"token", "authorize", "register", "manage"}
    token = code_flow(gateway, patient_browser, app, PERSON_SCOPES)["access_token"]
    tail = StreamTail(gateway.env["PORTAL_REDIS_URL"]).start()
    try:
        bundle = fhir_get(gateway, "Observation", token, _count=5).json()
        outcome = fhir_get(gateway, "Observation/no-such-observation", token).json()
        events = [e for _, e in tail.snapshot() if e.get("resourceType") == "AuditEvent"]
    finally:
        tail.stop()
    assert bundle["resourceType"] == "Bundle" and outcome["resourceType"] == "OperationOutcome" and events
    built = {"CapabilityStatement": capability, "Bundle": bundle, "OperationOutcome": outcome,
             "AuditEvent": events[-1]}
    problems = {kind: validation_errors(ehr_base_url, resource) for kind, resource in built.items()}
    assert not any(problems.values()), problems


# ---- 5. introspection's fhirUser is the id_token's; the consent page says each thing once --------------
def test_05_introspection_fhir_user_and_one_line_per_consent_item(gateway: GatewayServer, app: AppClient,
                                                                  patient_browser: httpx.Client) -> None:
    token = code_flow(gateway, patient_browser, app, PERSON_SCOPES)
    id_claims = jwt.decode(token["id_token"], jwks(gateway), algorithms=["RS256"]).claims
    info = httpx.post(f"{gateway.url}/auth/introspect", data={"token": token["access_token"]},
                      headers=bearer(token["access_token"]), timeout=10).json()
    assert info["active"] is True and info["fhirUser"] == id_claims["fhirUser"]
    assert info["fhirUser"] == f"{gateway.fhir}/Patient/{PATIENT}"

    _, challenge = pkce()
    url = authorize_url(gateway, app, "openid fhirUser profile patient/Condition.rs", challenge, "st-5")
    page = patient_browser.get(url)
    assert page.status_code == 200, page.text[:500]
    assert page.text.count("Know who you are") == 1


# ---- 6. every HTML page: strict CSP, no inline script or style; nosniff on everything --------------------
INLINE = re.compile(r"<style|\sstyle=|<script(?![^>]*\bsrc=)|\son[a-z]+=", re.I)


def html_pages(gw: GatewayServer, ehr_base_url: str, patient: Person, app: AppClient) -> dict[str, httpx.Response]:
    pages: dict[str, httpx.Response] = {}
    with browser(gw) as b:
        pages["sign-in"] = b.get("/auth/login")
        pages["sign-in error"] = b.post("/auth/login", data={"csrf_token": csrf(pages["sign-in"].text),
                                                             "username": "nobody", "password": "wrong"})
        pages["form expired"] = b.post("/auth/login", data={"csrf_token": "forged"})
        pages["reset"] = b.get("/auth/reset")
        b.post("/auth/reset", data={"csrf_token": csrf(pages["reset"].text), "username": "nobody"})
        pages["reset code"] = b.get("/auth/reset/verify")
        pages["enrolment link not valid"] = b.get("/auth/enroll", params={"code": "made-up"})
        invite = re.search(r"link:\s+(\S+)", portal_auth(gw, "invite", "--patient", PATIENT)).group(1)
        pages["enrolment identity"] = b.get(invite.removeprefix(gw.url))
        ident = identity_of(ehr_base_url, PATIENT)
        b.post("/auth/enroll/verify", data={"csrf_token": csrf(pages["enrolment identity"].text),
                                            "birth_date": ident["birth_date"], "mrn": ident["mrn"]})
        pages["enrolment account"] = b.get("/auth/enroll/account")
        pages["authorize error"] = b.get("/auth/authorize", params={"client_id": "no-such-app"})
    with browser(gw) as b:
        sign_in(b, patient, "/portal/")
        pages["caregivers"] = b.get("/auth/proxies")
        pages["sign-out"] = b.get("/auth/logout")
        _, challenge = pkce()
        pages["consent"] = b.get(authorize_url(gw, app, "openid fhirUser patient/Immunization.rs", challenge, "s6"))
    return pages


def test_06_every_html_page_has_a_strict_csp_and_no_inline_code(gateway: GatewayServer, ehr_base_url: str,
                                                               patient: Person, app: AppClient) -> None:
    pages = html_pages(gateway, ehr_base_url, patient, app)
    for name, page in pages.items():
        assert page.headers["content-type"].startswith("text/html"), (name, page.status_code)
        policy = page.headers.get("content-security-policy", "")
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                          "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"):
            assert directive in policy, (name, policy)
        assert "unsafe-inline" not in policy, name
        assert page.headers["x-content-type-options"] == "nosniff", name
        assert page.headers["x-frame-options"] == "DENY", name
        assert not INLINE.search(page.text), (name, INLINE.search(page.text))
    for path in ("/fhir/metadata", "/.well-known/smart-configuration", "/static/site.css", "/healthz"):
        assert httpx.get(gateway.url + path, timeout=10).headers["x-content-type-options"] == "nosniff", path
    assert httpx.get(f"{gateway.url}/docs", timeout=10).status_code == 404  # Swagger UI is off by default


# ---- 7. patients are granted only what their role can ever use --------------------------------------------
def test_07_patients_are_granted_only_what_they_can_use(gateway: GatewayServer, app: AppClient,
                                                        patient_browser: httpx.Client) -> None:
    _, challenge = pkce()
    page = patient_browser.get(authorize_url(gateway, app, "launch/patient patient/*.cruds", challenge, "s7"))
    offered = {s for line in re.findall(r'name="scope" value="([^"]+)"', page.text) for s in line.split()}
    assert offered == {"launch/patient", "patient/*.rs", "patient/Appointment.cu", "patient/Communication.cu",
                       "patient/MedicationRequest.c", "patient/Patient.u", "patient/AllergyIntolerance.c",
                       "patient/ServiceRequest.c", "patient/PaymentReconciliation.c",
                       "patient/QuestionnaireResponse.cu", "patient/Observation.cu"}
    assert "Read all of your health record" in page.text and "Send messages to your care team" in page.text
    token = code_flow(gateway, patient_browser, app, "launch/patient patient/*.cruds")
    granted = set(token["scope"].split())
    assert granted == offered and not any(s.endswith(("d", ".cruds", ".*")) for s in granted)


# ---- 8. no account data readable in Redis -------------------------------------------------------------
def test_08_account_data_is_not_readable_in_redis(gateway: GatewayServer, ehr_base_url: str,
                                                 patient: Person) -> None:
    resource = identity_of(ehr_base_url, PATIENT)["resource"]
    name = resource["name"][0]
    personal = [patient.username, name["family"], *name.get("given", [])]
    personal += [t["value"] for t in resource.get("telecom", []) if t.get("value")]
    state = redis.Redis.from_url(gateway.env["PORTAL_REDIS_URL"])
    try:
        readable = []
        for key in state.scan_iter(match="auth:*", count=1000):
            value = state.get(key) if state.type(key) == b"string" else b""
            readable.append(key.decode() + " " + (value or b"").decode(errors="replace"))
    finally:
        state.close()
    text = "\n".join(readable).casefold()
    assert any(k.startswith("auth:account:") for k in readable)
    for item in personal:
        assert item.casefold() not in text, f"{item!r} is readable in Redis"


# ---- 9. TLS: uvicorn serving https itself, HSTS, Secure cookies, the whole flow over https -----------------
def test_09_the_whole_flow_over_https(https_gateway: GatewayServer, ehr_base_url: str, tls: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # the clients trust the development CA
    gw = https_gateway
    config = httpx.get(f"{gw.url}/.well-known/smart-configuration", timeout=10)
    assert config.headers["strict-transport-security"].startswith("max-age=")
    assert all(config.json()[k].startswith("https://") for k in ("authorization_endpoint", "token_endpoint"))
    with pytest.raises(httpx.HTTPError):  # the certificate is checked, not waved through
        httpx.get(f"{gw.url}/healthz", timeout=10, verify=True, trust_env=False)
    app = register_public_client(gw, "TLS App")
    person = enrol_patient(gw, ehr_base_url, "pt-0007")
    with browser(gw) as b:
        login = b.get("/auth/login")
        assert "secure" in login.headers["set-cookie"].lower()
        token = code_flow(gw, b, app, PERSON_SCOPES.replace(PATIENT, "pt-0007"), person=person)
        cookies = {c.name: c for c in b.cookies.jar}
        assert "portal_session" in cookies and all(c.secure for c in cookies.values())
    read = fhir_get(gw, "Patient/pt-0007", token["access_token"])
    assert read.status_code == 200 and read.json()["id"] == "pt-0007"
    assert jwt.decode(token["id_token"], jwks(gw), algorithms=["RS256"]).claims["fhirUser"].startswith("https://")
