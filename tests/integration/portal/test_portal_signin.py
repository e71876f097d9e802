"""Signing in to the portal as a patient does, against the running app (uvicorn, real HAPI and Redis):
the SMART launch done by the server, tokens that never reach the browser, sealed sessions, audit records
that name the person's browser, sign-out that ends everything, and sessions that cannot be forged."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from tests.conftest import GatewayServer, RedisServer
from tests.integration.audit.conftest import request_id_of, stored_events
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import auth, mint

from .helpers import BROWSER_ADDRESS, csrf_of, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0003"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _recorded(redis_server: RedisServer, gateway: GatewayServer) -> list[dict]:
    """The gateway's audit events wherever they are now: still in the stream, or already moved into its audit
    store (the feeder stores an entry before it deletes it from the stream, so reading in this order misses
    none)."""
    r = redis.Redis.from_url(redis_server.url)
    try:
        events = [json.loads(fields[b"event"]) for _id, fields in r.xrange("audit:events")]
    finally:
        r.close()
    return events + stored_events(gateway.state_dir)


def test_sign_in_lands_on_the_page_asked_for_with_no_token_in_the_browser(
        gateway: GatewayServer, patient: Person, redis_server: RedisServer) -> None:
    hops: list[str] = []
    with portal_browser(gateway) as b:
        page = portal_sign_in(b, patient, "/portal/account", hops=hops)
        assert page.status_code == 200, page.text[:500]
        assert str(page.url).endswith("/portal/account")
        words = text_of(page.text)
        assert "Your sign-ins" in words and "Chrome on Linux (this device)" in words
        assert BROWSER_ADDRESS in words
        # The standalone launch: portal -> authorize (PKCE S256) -> sign-in -> back to the portal's callback.
        authorize = next(h for h in hops if urlsplit(h).path == "/auth/authorize")
        query = parse_qs(urlsplit(authorize).query)
        assert query["code_challenge_method"] == ["S256"] and query["client_id"][0].startswith("patient-portal-")
        assert any(urlsplit(h).path == "/portal/callback" for h in hops)
        # No consent page for the product's own portal; no token anywhere the browser can see.
        assert not any("/auth/authorize/decision" in h for h in hops)
        # (portal_device: a random id of this browser, so a sign-in from a new one can be told to the person;
        # portal_lang: "en" or "es", so the pages after sign-out stay in the person's language)
        assert set(b.cookies.keys()) <= {"portal_session", "portal_app", "portal_device", "portal_lang"}
        assert b.cookies.get("portal_lang") in (None, "en", "es")
        assert "eyJ" not in page.text and all("eyJ" not in c for c in b.cookies.values())
        # The session in Redis is sealed: neither the access token nor the patient's id in clear.
        r = redis.Redis.from_url(redis_server.url)
        try:
            sealed = [r.get(k) for k in r.scan_iter("portal:session:*")]
        finally:
            r.close()
        assert sealed and all(b"eyJ" not in v and PATIENT.encode() not in v for v in sealed if v)


def test_audit_names_the_person_the_portal_and_the_browser_address(
        gateway: GatewayServer, patient: Person, redis_server: RedisServer) -> None:
    with portal_browser(gateway, "198.51.100.23") as b:
        assert portal_sign_in(b, patient, "/portal/account").status_code == 200
    reads = [e for e in _recorded(redis_server, gateway)
             if any((a.get("network") or {}).get("address") == "198.51.100.23" for a in e.get("agent", []))
             and any(str(((a.get("who") or {}).get("identifier") or {}).get("value")).startswith("patient-portal-")
                     for a in e.get("agent", []))]
    assert reads, "the portal's read of the patient names the browser's address and the portal"
    agents = reads[-1]["agent"]
    assert any((a.get("who") or {}).get("reference", "").endswith(f"Patient/{PATIENT}") for a in agents)


def test_a_forged_address_header_from_outside_is_not_believed(gateway: GatewayServer,
                                                              redis_server: RedisServer) -> None:
    token = mint(gateway, "launch/patient patient/*.rs", patient=PATIENT)
    headers = {**auth(token), "X-Forwarded-For": "192.0.2.50", "X-Request-Id": "forged-addr-1",
               "X-Portal-Client-Address": "10.9.9.9; ts=1; sig=AAAA"}
    assert httpx.get(f"{gateway.fhir}/Patient/{PATIENT}", headers=headers, timeout=30).status_code == 200
    events = [e for e in _recorded(redis_server, gateway) if request_id_of(e) == "forged-addr-1"]
    addresses = {(a.get("network") or {}).get("address") for e in events for a in e.get("agent", [])}
    assert events and "10.9.9.9" not in addresses and "192.0.2.50" in addresses


def test_sign_out_ends_the_portal_session_the_tokens_and_the_sign_in(gateway: GatewayServer,
                                                                    patient: Person) -> None:
    with portal_browser(gateway) as b:
        page = portal_sign_in(b, patient, "/portal/account")
        assert page.status_code == 200
        old_cookie = b.cookies.get("portal_app", path="/portal")
        done = b.post("/portal/signout", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 303 and done.headers["location"] == "/portal/signed-out?reason=signed-out"
        assert "You have signed out" in text_of(b.get(done.headers["location"]).text)
        # The sign-in is gone too: the portal asks for a sign-in again.
        again = b.get("/portal/account")
        assert again.status_code == 303 and again.headers["location"].startswith("/portal/login")
        assert b.get("/auth/logout").headers.get("location") == "/auth/login"
    # The old cookie, replayed from somewhere else, opens nothing.
    with portal_browser(gateway) as thief:
        thief.cookies.set("portal_app", old_cookie, path="/portal")
        assert thief.get("/portal/account").status_code == 303


def test_sign_out_without_the_form_token_changes_nothing(gateway: GatewayServer, patient: Person) -> None:
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient, "/portal/account").status_code == 200
        refused = b.post("/portal/signout", data={"csrf_token": "not-the-token"})
        assert refused.status_code == 400 and "This form has expired" in text_of(refused.text)
        assert b.get("/portal/account").status_code == 200


def test_a_callback_not_started_by_this_browser_is_refused(gateway: GatewayServer, patient: Person) -> None:
    with portal_browser(gateway) as b:
        start = b.get("/portal/login", params={"next": "/portal/account"})
        assert start.status_code == 303
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    with portal_browser(gateway) as other:
        answer = other.get("/portal/callback", params={"state": state, "code": "x"})
        assert answer.status_code == 400 and "Please sign in again" in text_of(answer.text)
        assert "portal_app" not in other.cookies


def test_next_never_leaves_the_portal(gateway: GatewayServer) -> None:
    with portal_browser(gateway) as b:
        for bad in ("https://evil.example/", "//evil.example/x", "/auth/token", "/portal/../auth"):
            start = b.get("/portal/login", params={"next": bad})
            assert start.status_code == 303
        # Not signed in: every portal page sends the person to sign in, remembering where they were going.
        page = b.get("/portal/account")
        assert page.headers["location"] == "/portal/login?next=%2Fportal%2Faccount"
