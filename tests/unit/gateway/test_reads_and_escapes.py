"""Reads, searches and every route out of a patient's compartment, with respx as the EHR."""

from __future__ import annotations

import httpx
import pytest
import respx

from .conftest import EHR, Harness, bundle, obs

PT = "pt-0001"
OTHER = "pt-0002"
PATIENT_SCOPES = "launch/patient openid fhirUser patient/*.rs"


async def get(h: Harness, path: str, token: str | None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    async with h.client() as c:
        return await c.get(path, headers=headers, **kw)


def assert_outcome(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
    return body


async def test_metadata_is_our_own_capability_statement(harness: Harness) -> None:
    r = await get(harness, "/fhir/metadata", None, headers={"Origin": "https://app.example"})
    cs = r.json()
    assert r.status_code == 200 and cs["resourceType"] == "CapabilityStatement"
    types = {res["type"] for res in cs["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Appointment", "Communication", "MedicationRequest"} <= types
    assert "Claim" not in types
    ext = cs["rest"][0]["security"]["extension"][0]
    uris = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert uris["token"] == "http://portal.test/auth/token"
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("auth", [None, "Basic abc", "Bearer not-a-jwt"])
async def test_missing_or_bad_token_is_401_with_www_authenticate(harness: Harness, auth: str | None) -> None:
    async with harness.client() as c:
        r = await c.get("/fhir/Observation", headers={"Authorization": auth} if auth else {})
    assert_outcome(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("override", [{"aud": "http://elsewhere/fhir"}, {"exp": 1000}, {"iss": "http://evil"}])
async def test_token_for_other_audience_expired_or_foreign_is_refused(harness: Harness, override: dict) -> None:
    r = await get(harness, "/fhir/Observation", harness.token(PATIENT_SCOPES, patient=PT, **override))
    assert_outcome(r, 401)


async def test_revoked_token_is_refused(harness: Harness, ehr: respx.MockRouter) -> None:
    token = harness.token(PATIENT_SCOPES, patient=PT)
    ehr.get("/Observation").respond(json=bundle())
    assert (await get(harness, "/fhir/Observation", token)).status_code == 200
    harness.revoked.add(__import__("joserfc").jwt.decode(token, harness.keys.verification_keys()).claims["jti"])
    assert_outcome(await get(harness, "/fhir/Observation", token), 401)


async def test_own_read_has_etag_and_is_audited(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o1").respond(json=obs("o1", PT))
    r = await get(harness, "/fhir/Observation/o1", harness.token(PATIENT_SCOPES, patient=PT))
    assert r.status_code == 200 and r.json()["id"] == "o1"
    assert r.headers["etag"] == 'W/"3"'
    assert r.headers["last-modified"] == "Fri, 02 Jan 2026 03:04:05 GMT"
    assert harness.audit[-1].entity_refs == ["Observation/o1"]
    assert harness.audit[-1].patient_refs == [f"Patient/{PT}"] and harness.audit[-1].outcome == "0"


async def test_if_none_match_304_only_after_the_compartment_check(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o1").respond(json=obs("o1", PT))
    ehr.get("/Observation/o2").respond(json=obs("o2", OTHER))
    token = harness.token(PATIENT_SCOPES, patient=PT)
    r = await get(harness, "/fhir/Observation/o1", token, headers={"If-None-Match": 'W/"3"'})
    assert r.status_code == 304
    # Guessing another patient's ETag must not reveal that the resource exists.
    r = await get(harness, "/fhir/Observation/o2", token, headers={"If-None-Match": 'W/"3"'})
    assert_outcome(r, 404)


async def test_other_patients_resource_is_404_like_a_missing_one(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o2").respond(json=obs("o2", OTHER))
    ehr.get("/Observation/nope").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    token = harness.token(PATIENT_SCOPES, patient=PT)
    other = await get(harness, "/fhir/Observation/o2", token)
    missing = await get(harness, "/fhir/Observation/nope", token)
    assert_outcome(other, 404)
    assert_outcome(missing, 404)
    assert OTHER not in other.text
    assert other.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]
    assert harness.audit[-2].outcome == "4"


async def test_search_is_pinned_to_the_patient(harness: Harness, ehr: respx.MockRouter) -> None:
    route = ehr.get("/Observation").respond(json=bundle(obs("o1", PT), obs("o9", OTHER)))
    r = await get(harness, "/fhir/Observation?code=4548-4&subject=Patient/pt-0002",
                  harness.token(PATIENT_SCOPES, patient=PT))
    assert r.status_code == 200
    sent = route.calls.last.request.url.params
    assert sent.get_list("patient") == [f"Patient/{PT}"]
    ids = [e["resource"]["id"] for e in r.json()["entry"]]
    # Even if the EHR answered with someone else's record, it never reaches the caller.
    assert ids == ["o1"] and OTHER not in r.text
    assert r.json()["entry"][0]["fullUrl"] == "http://portal.test/fhir/Observation/o1"


async def test_granular_v2_scope_adds_its_constraint(harness: Harness, ehr: respx.MockRouter) -> None:
    route = ehr.get("/Observation").respond(json=bundle(obs("o1", PT)))
    token = harness.token("patient/Observation.rs?category=laboratory", patient=PT)
    assert (await get(harness, "/fhir/Observation", token)).status_code == 200
    assert route.calls.last.request.url.params.get("category") == "laboratory"
    # A granular read checks the constraint through the EHR's own search.
    ehr.get("/Observation/o1").respond(json=obs("o1", PT, category="vital-signs"))
    route.respond(json={"resourceType": "Bundle", "type": "searchset", "total": 0})
    assert_outcome(await get(harness, "/fhir/Observation/o1", token), 404)


async def test_scopes_limit_resource_types(harness: Harness) -> None:
    token = harness.token("patient/Observation.rs", patient=PT)
    body = assert_outcome(await get(harness, "/fhir/MedicationRequest", token), 403)
    assert "MedicationRequest" in body["issue"][0]["diagnostics"]


async def test_refusals_before_the_ehr_are_audited_too(harness: Harness, ehr: respx.MockRouter) -> None:
    catch_all = ehr.route().respond(json={})
    token = harness.token("patient/Observation.rs", patient=PT)
    before = len(harness.audit)
    assert_outcome(await get(harness, "/fhir/MedicationRequest/m1", token), 403)
    assert_outcome(await get(harness, f"/fhir/Patient/{PT}/$everything", token), 403)
    refused = harness.audit[before:]
    assert [(a.interaction, a.outcome, a.entity_refs) for a in refused] == [
        ("read", "4", ["MedicationRequest/m1"]), ("operation", "4", [f"Patient/{PT}"])]
    assert all(a.patient_refs == [f"Patient/{PT}"] for a in refused)
    assert not catch_all.called


async def test_an_empty_search_still_names_whose_record_was_searched(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation").respond(json=bundle())
    r = await get(harness, "/fhir/Observation?code=none", harness.token(PATIENT_SCOPES, patient=PT))
    assert r.status_code == 200 and not r.json().get("entry")
    assert harness.audit[-1].outcome == "0" and harness.audit[-1].patient_refs == [f"Patient/{PT}"]


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Observation?_has:Observation:patient:code=1",
        "/fhir/Observation?subject.name=Smith",
        "/fhir/Observation?subject:Patient.name=Smith",
        "/fhir/Observation?_filter=subject eq Patient/pt-0002",
        "/fhir/Observation?_include=*",
        "/fhir/Observation?_include=Observation:has-member",
        "/fhir/Observation?_include:iterate=Observation:patient",
        "/fhir/Practitioner?_revinclude=Observation:performer",
        "/fhir/Observation?made-up-param=1",
        "/fhir/_history",
        "/fhir/Observation/_history",
        "/fhir/$graphql",
        "/fhir?_type=Observation",
    ],
)
async def test_escape_routes_are_refused(harness: Harness, ehr: respx.MockRouter, path: str) -> None:
    catch_all = ehr.route().respond(json=bundle(obs("o9", OTHER)))
    r = await get(harness, path, harness.token(PATIENT_SCOPES, patient=PT))
    body = assert_outcome(r, 403)
    assert OTHER not in r.text and body["issue"][0]["code"] == "forbidden"
    assert not catch_all.called


async def test_batch_and_transaction_are_refused(harness: Harness, ehr: respx.MockRouter) -> None:
    catch_all = ehr.route().respond(json={})
    async with harness.client() as c:
        r = await c.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": []},
                         headers={"Authorization": f"Bearer {harness.token(PATIENT_SCOPES, patient=PT)}"})
    assert_outcome(r, 403)
    assert not catch_all.called


async def test_everything_of_another_patient_is_404(harness: Harness, ehr: respx.MockRouter) -> None:
    catch_all = ehr.route().respond(json=bundle(obs("o9", OTHER)))
    r = await get(harness, f"/fhir/Patient/{OTHER}/$everything", harness.token(PATIENT_SCOPES, patient=PT))
    assert_outcome(r, 404)
    assert not catch_all.called and OTHER not in r.json()["issue"][0]["diagnostics"].replace(OTHER, "", 1) + ""


async def test_paging_links_point_at_us_and_are_bound_to_the_caller(harness: Harness, ehr: respx.MockRouter) -> None:
    next_url = f"{EHR}?_getpages=abc&_getpagesoffset=20&_count=20&_bundletype=searchset"
    ehr.get("/Observation").respond(json=bundle(obs("o1", PT), next_url=next_url))
    page = ehr.get("").respond(json=bundle(obs("o2", PT)))
    token = harness.token(PATIENT_SCOPES, patient=PT)
    first = (await get(harness, "/fhir/Observation", token)).json()
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert nxt.startswith("http://portal.test/fhir?") and "ehr.test" not in nxt
    r = await get(harness, nxt.replace("http://portal.test", ""), token)
    assert r.status_code == 200 and r.json()["entry"][0]["resource"]["id"] == "o2"
    assert page.calls.last.request.url.params["_getpages"] == "abc"
    # Another patient's token cannot follow the same link.
    stranger = harness.token(PATIENT_SCOPES, patient=OTHER)
    assert_outcome(await get(harness, nxt.replace("http://portal.test", ""), stranger), 404)


async def test_caregiver_token_behaves_like_the_patients(harness: Harness, ehr: respx.MockRouter) -> None:
    route = ehr.get("/Observation").respond(json=bundle(obs("o1", PT)))
    ehr.get("/Observation/o2").respond(json=obs("o2", OTHER))
    token = harness.token(PATIENT_SCOPES, patient=PT, fhir_user="http://portal.test/fhir/RelatedPerson/rp-1")
    assert (await get(harness, "/fhir/Observation", token)).status_code == 200
    assert route.calls.last.request.url.params["patient"] == f"Patient/{PT}"
    assert harness.audit[-1].caller.on_behalf_of == f"Patient/{PT}"
    assert_outcome(await get(harness, "/fhir/Observation/o2", token), 404)


async def test_staff_and_backend_tokens_are_not_pinned(harness: Harness, ehr: respx.MockRouter) -> None:
    """No patient is added to a staff search; what comes back is held to the practitioner's care teams."""
    route = ehr.get("/Observation").respond(json=bundle(obs("o1", PT), obs("o9", OTHER)))
    staff = harness.token("user/Observation.rs", fhir_user="http://portal.test/fhir/Practitioner/prac-01")
    r = await get(harness, "/fhir/Observation?code=x", staff)
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["o1"]
    assert "patient" not in route.calls.last.request.url.params
    system = harness.token("system/Observation.rs")
    assert (await get(harness, "/fhir/Observation", system)).status_code == 200
    assert_outcome(await get(harness, "/fhir/Patient", system), 403)


async def test_ehr_failures_map_to_clear_errors(harness: Harness, ehr: respx.MockRouter) -> None:
    token = harness.token(PATIENT_SCOPES, patient=PT)
    ehr.get("/Observation/t").mock(side_effect=httpx.ReadTimeout("slow"))
    ehr.get("/Observation/d").mock(side_effect=httpx.ConnectError("refused"))
    ehr.get("/Observation/e").respond(500, text="java.lang.NullPointerException at ca.uhn...")
    assert_outcome(await get(harness, "/fhir/Observation/t", token), 504)
    assert_outcome(await get(harness, "/fhir/Observation/d", token), 503)
    r = await get(harness, "/fhir/Observation/e", token)
    assert_outcome(r, 502)
    assert "java" not in r.text


async def test_unknown_type_is_a_fhir_404(harness: Harness) -> None:
    body = assert_outcome(await get(harness, "/fhir/Claim", harness.token("user/*.rs",
                                    fhir_user="Practitioner/prac-01")), 404)
    assert "Claim" in body["issue"][0]["diagnostics"]
