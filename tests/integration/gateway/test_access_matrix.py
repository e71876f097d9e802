"""Each core type read, searched and written as the owner, another patient, a caregiver, staff and a
backend service, through the running gateway against the real HAPI server."""

from __future__ import annotations

import httpx
import pytest

from fhir_gateway.compartment import patients_of
from tests.conftest import GatewayServer

from .helpers import auth, ehr_search, first_id, mint

pytestmark = pytest.mark.integration

OWNER, OTHER = "pt-0001", "pt-0004"
PATIENT_SCOPES = "launch/patient openid fhirUser patient/*.cruds"
CORE = {
    "Observation": "patient",
    "MedicationRequest": "patient",
    "Appointment": "patient",
    "Communication": "subject",
}


def other_ids_absent(text: str) -> None:
    assert f"Patient/{OTHER}" not in text and f'"{OTHER}"' not in text


@pytest.fixture(scope="module")
def ids(gateway: GatewayServer, ehr_base_url: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"Patient": {"own": OWNER, "other": OTHER}}
    for rtype, param in CORE.items():
        out[rtype] = {"own": first_id(ehr_base_url, rtype, {param: f"Patient/{OWNER}"}),
                      "other": first_id(ehr_base_url, rtype, {param: f"Patient/{OTHER}"})}
    return out


@pytest.fixture(scope="module")
def caregiver(ehr_base_url: str) -> tuple[str, str]:
    """A fixture patient with a RelatedPerson caregiver: (patient id, RelatedPerson id)."""
    for rp in ehr_search(ehr_base_url, "RelatedPerson", {}):
        return rp["patient"]["reference"].split("/")[1], rp["id"]
    pytest.fail("fixture data has no RelatedPerson")


@pytest.mark.parametrize("rtype", ["Patient", *CORE])
async def test_owner_reads_and_searches_only_their_own(gateway: GatewayServer, ehr_base_url: str, ids, rtype) -> None:
    token = mint(gateway, PATIENT_SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        own = await c.get(f"/{rtype}/{ids[rtype]['own']}")
        assert own.status_code == 200, own.text
        assert f"Patient/{OWNER}" in patients_of(own.json())
        other = await c.get(f"/{rtype}/{ids[rtype]['other']}")
        assert other.status_code == 404 and other.json()["resourceType"] == "OperationOutcome"
        other_ids_absent(other.text.replace(ids[rtype]["other"], ""))
        found = await c.get(f"/{rtype}", params={"_count": 500})
        assert found.status_code == 200
        entries = [e["resource"] for e in found.json().get("entry", [])]
        assert entries and all(patients_of(r) == {f"Patient/{OWNER}"} or rtype == "Communication" for r in entries)
        assert all(f"Patient/{OWNER}" in patients_of(r) for r in entries)
        other_ids_absent(found.text)


@pytest.mark.parametrize("rtype", ["Patient", *CORE])
async def test_staff_and_backend_see_what_their_scopes_grant(gateway: GatewayServer, ids, rtype) -> None:
    staff = mint(gateway, "openid fhirUser user/*.rs", fhir_user="Practitioner/prac-01")
    backend = mint(gateway, f"system/{rtype}.rs")
    narrow_backend = mint(gateway, "system/Organization.rs")
    async with httpx.AsyncClient(base_url=gateway.fhir, timeout=60) as c:
        for token in (staff, backend):
            for which in ("own", "other"):
                r = await c.get(f"/{rtype}/{ids[rtype][which]}", headers=auth(token))
                assert r.status_code == 200, r.text
        r = await c.get(f"/{rtype}/{ids[rtype]['own']}", headers=auth(narrow_backend))
        assert r.status_code == 403


async def test_caregiver_acts_exactly_as_the_patient(gateway: GatewayServer, ehr_base_url: str, caregiver) -> None:
    patient, rp = caregiver
    token = mint(gateway, PATIENT_SCOPES, patient=patient, fhir_user=f"RelatedPerson/{rp}")
    other_patient = OTHER if patient != OTHER else OWNER
    theirs = first_id(ehr_base_url, "Observation", {"patient": f"Patient/{patient}"})
    not_theirs = first_id(ehr_base_url, "Observation", {"patient": f"Patient/{other_patient}"})
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        assert (await c.get(f"/Observation/{theirs}")).status_code == 200
        assert (await c.get(f"/Observation/{not_theirs}")).status_code == 404
        found = (await c.get("/Observation", params={"_count": 50})).json()
        assert {p for e in found["entry"] for p in patients_of(e["resource"])} == {f"Patient/{patient}"}


async def test_paging_to_the_end_returns_every_match_once(gateway: GatewayServer, ehr_base_url: str) -> None:
    expected = {r["id"] for r in ehr_search(ehr_base_url, "Observation", {"patient": f"Patient/{OWNER}"})}
    assert len(expected) > 30, "fixture patient should have a long history"
    token = mint(gateway, PATIENT_SCOPES, patient=OWNER)
    seen: list[str] = []
    async with httpx.AsyncClient(headers=auth(token), timeout=60) as c:
        url: str | None = f"{gateway.fhir}/Observation?_count=7"
        pages = 0
        while url:
            bundle = (await c.get(url)).json()
            assert all(e["fullUrl"].startswith(gateway.fhir + "/") for e in bundle.get("entry", []))
            seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
            url = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
            assert url is None or url.startswith(gateway.fhir)
            pages += 1
            assert pages < 500
    assert len(seen) == len(set(seen)) and set(seen) == expected


@pytest.mark.parametrize(
    "query",
    ["_has:Observation:patient:code=4548-4", "subject.name=Smith", "_filter=subject eq Patient/pt-0002",
     "_include=*", "_include:iterate=Observation:patient", "not-a-param=1", "subject:Patient.birthdate=1980"],
)
async def test_escape_routes_refused_against_the_real_ehr(gateway: GatewayServer, query: str) -> None:
    token = mint(gateway, PATIENT_SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        r = await c.get(f"/Observation?{query}")
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    other_ids_absent(r.text)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/_history"), ("GET", "/Observation/_history"), ("POST", "/"), ("GET", f"/Patient/{OTHER}/$everything"),
    ("GET", "/$graphql"), ("GET", "/Practitioner?_revinclude=Observation:performer"),
])
async def test_system_level_and_cross_compartment_operations_refused(gateway: GatewayServer, method, path) -> None:
    token = mint(gateway, PATIENT_SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        r = await c.request(method, path.rstrip("/") or "", json={"resourceType": "Bundle", "type": "batch"}
                            if method == "POST" else None)
    assert r.status_code in (403, 404), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    # The diagnostic may echo the id the caller itself asked for; nothing else about that patient.
    other_ids_absent(r.text.replace(f"Resource Patient/{OTHER} is not known", ""))


async def test_own_everything_stays_in_the_compartment(gateway: GatewayServer) -> None:
    token = mint(gateway, PATIENT_SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=120) as c:
        # The record's types, not the AuditEvents every test run adds about this patient (on a long-lived
        # EHR thousands of them, which make $everything slower than any timeout).
        r = await c.get(f"/Patient/{OWNER}/$everything", params={
            "_count": 100, "_type": "Patient,Encounter,Observation,Condition,MedicationRequest,Appointment,"
                                    "Communication,Practitioner,Organization,RelatedPerson,Account,Invoice"})
    assert r.status_code == 200
    for entry in r.json()["entry"]:
        res = entry["resource"]
        pats = patients_of(res)
        assert not pats or pats == {f"Patient/{OWNER}"} or f"Patient/{OWNER}" in pats
    other_ids_absent(r.text)


async def test_metadata_and_readiness(gateway: GatewayServer) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as c:
        cs = (await c.get("/fhir/metadata")).json()
        assert cs["fhirVersion"] == "4.0.1"
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"ehr": "up", "redis": "up", "cache": "up"}
