"""A patient sees only their own access log: through /portal/api/access-log and through a FHIR search of
AuditEvent, with the running gateway exporting its events to the real HAPI server."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayServer
from tests.integration.gateway.helpers import auth, mint

from .conftest import request_id_of

pytestmark = pytest.mark.integration

A, B = "pt-0001", "pt-0002"
PATIENT_SCOPES = "launch/patient openid fhirUser patient/*.rs"
LOG = "/portal/api/access-log"


def patients_in(event: dict[str, Any]) -> set[str]:
    return {(e.get("what") or {}).get("reference") for e in event.get("entity") or []
            if (e.get("role") or {}).get("code") == "1"}


async def exported(gw: GatewayServer, ehr: str, since: str, rids: set[str], timeout: float = 90) -> dict[str, dict]:
    """This gateway's events since `since`, read straight from the EHR, once all of `rids` have arrived."""
    tag = f"{gw.url}/CodeSystem/audit-source|smart-portal-gateway"
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=30, headers={"Cache-Control": "no-cache"}) as client:
        while time.monotonic() < deadline:
            url: str | None = f"{ehr}/AuditEvent"
            params: dict[str, Any] | None = {"_tag": tag, "date": f"ge{since}", "_count": 500}
            while url:
                bundle = (await client.get(url, params=params)).json()
                for entry in bundle.get("entry", []):
                    if rid := request_id_of(entry["resource"]):
                        found[rid] = entry["resource"]
                url = next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)
                params = None
            if rids <= found.keys():
                return found
            await asyncio.sleep(0.5)
    pytest.fail(f"the exporter did not bring {sorted(rids - found.keys())} to the EHR within {timeout} s")


def display_name(resource: dict[str, Any]) -> str:
    name = resource["name"][0]
    return " ".join([*name.get("prefix", []), *name.get("given", []), name["family"]])


async def test_patients_and_caregivers_see_only_the_patients_own_access_log(
    gateway: GatewayServer, ehr_base_url: str
) -> None:
    gw = gateway
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    async with httpx.AsyncClient(timeout=30) as direct:
        rp = (await direct.get(f"{ehr_base_url}/RelatedPerson", params={"patient": f"Patient/{A}"})).json()
        caregiver_id = rp["entry"][0]["resource"]["id"]
        caregiver_name = display_name(rp["entry"][0]["resource"])
        doctor_name = display_name((await direct.get(f"{ehr_base_url}/Practitioner/prac-01")).json())
    token_a = mint(gw, PATIENT_SCOPES, patient=A)
    token_b = mint(gw, PATIENT_SCOPES, patient=B)
    token_care = mint(gw, PATIENT_SCOPES, patient=A, fhir_user=f"RelatedPerson/{caregiver_id}")
    token_staff = mint(gw, "openid fhirUser user/*.rs", fhir_user="Practitioner/prac-01")
    run = uuid.uuid4().hex[:8]
    rid = {k: f"log-{run}-{k}" for k in ("a", "b", "care", "staff")}

    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as c:
        for key, token, path in [("a", token_a, "/fhir/Observation?category=laboratory&_count=3"),
                                 ("b", token_b, "/fhir/Observation?category=laboratory&_count=3"),
                                 ("care", token_care, "/fhir/MedicationRequest?_count=3"),
                                 ("staff", token_staff, f"/fhir/Patient/{A}")]:
            r = await c.get(path, headers={**auth(token), "X-Request-Id": rid[key]})
            assert r.status_code == 200, r.text
        # a search that matches nothing is an access too, and its event must be one the EHR accepts
        empty = f"log-{run}-empty"
        r = await c.get("/fhir/Observation", params={"code": "http://loinc.org|0000-0"},
                        headers={**auth(token_a), "X-Request-Id": empty})
        assert r.status_code == 200 and not r.json().get("entry")
        events = await exported(gw, ehr_base_url, since, {*rid.values(), empty})
        assert events[empty]["outcome"] == "0"
        ev = {k: events[v]["id"] for k, v in rid.items()}
        of_a = {e["id"] for e in events.values() if f"Patient/{A}" in patients_in(e)}
        of_b = {e["id"] for e in events.values() if f"Patient/{B}" in patients_in(e)}
        assert {ev["a"], ev["care"], ev["staff"]} <= of_a and ev["b"] in of_b and not of_a & of_b

        async def log(token: str, **params: str) -> httpx.Response:
            return await c.get(LOG, params={"since": since, "count": "200", **params}, headers=auth(token))

        # -- the portal's JSON log -------------------------------------------------------------------
        r = await log(token_a)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["patient"] == f"Patient/{A}"
        entries = {e["id"]: e for e in body["entries"]}
        assert {ev["a"], ev["care"], ev["staff"]} <= entries.keys()
        assert ev["b"] not in entries and not entries.keys() & of_b
        # every entry is about A, as the EHR itself says
        stored = (await c.get(f"{ehr_base_url}/AuditEvent", params={"_id": ",".join(entries), "_count": "500"},
                              headers={"Cache-Control": "no-cache"})).json()
        assert len(stored["entry"]) == len(entries)
        assert all(f"Patient/{A}" in patients_in(e["resource"]) for e in stored["entry"])
        assert (entries[ev["a"]]["who"], entries[ev["a"]]["what"]) == ("You", "looked through your lab results")
        assert entries[ev["staff"]]["who"] == doctor_name
        assert entries[ev["staff"]]["text"].startswith(f"{doctor_name} viewed your personal details via it-app on ")
        assert entries[ev["care"]]["who"] == f"Your caregiver {caregiver_name}"
        assert entries[ev["care"]]["what"] == "looked through your medications"
        whens = [e["when"] for e in body["entries"]]
        assert whens == sorted(whens, reverse=True)  # newest first

        # paging through the same log two at a time shows the same events, each once, in the same order
        # (plus, at the top, A's own views of the log exported since: each look is itself logged)
        paged: list[dict[str, Any]] = []
        params = {"since": since, "count": "2"}
        for _ in range(100):
            page = (await c.get(LOG, params=params, headers=auth(token_a))).json()
            paged += page["entries"]
            if "next" not in page:
                break
            params = dict(httpx.URL(page["next"]).params)
        paged_ids = [e["id"] for e in paged]
        assert len(paged_ids) == len(set(paged_ids))
        assert [i for i in paged_ids if i in entries] == [e["id"] for e in body["entries"]]
        assert all(e["what"] == "looked through your access history" for e in paged if e["id"] not in entries)

        body_b = (await log(token_b)).json()
        ids_b = {e["id"] for e in body_b["entries"]}
        assert ev["b"] in ids_b and not ids_b & {ev["a"], ev["care"], ev["staff"]} and not ids_b & of_a

        care = {e["id"]: e for e in (await log(token_care)).json()["entries"]}
        assert {ev["a"], ev["care"], ev["staff"]} <= care.keys() and ev["b"] not in care
        assert care[ev["a"]]["who"] == "The patient" and care[ev["care"]]["who"] == "You"

        # -- who may not ------------------------------------------------------------------------------
        other = await log(token_b, patient=A)
        unknown = await log(token_b, patient="pt-does-not-exist")
        assert other.status_code == unknown.status_code == 404
        assert other.json() == unknown.json() and other.json()["error"] == "not_found"
        assert (await log(token_staff, patient=A)).status_code == 403
        assert (await log(mint(gw, "launch/patient patient/Observation.rs", patient=A))).status_code == 403
        assert (await c.get(LOG)).status_code == 401

        # -- a FHIR search of AuditEvent through the gateway --------------------------------------------
        async def search(token: str) -> set[str]:
            r = await c.get("/fhir/AuditEvent", params={"date": f"ge{since}", "_count": "200"}, headers=auth(token))
            assert r.status_code == 200, r.text
            found = [e["resource"] for e in r.json().get("entry", [])]
            return {e["id"] for e in found}

        seen_a, seen_b = await search(token_a), await search(token_b)
        assert {ev["a"], ev["care"], ev["staff"]} <= seen_a and not seen_a & of_b
        assert ev["b"] in seen_b and not seen_b & of_a
        assert (await c.get(f"/fhir/AuditEvent/{ev['b']}", headers=auth(token_a))).status_code == 404
        assert (await c.get(f"/fhir/AuditEvent/{ev['a']}", headers=auth(token_a))).status_code == 200

        # -- looking at the log is itself an audited access of A's data ------------------------------------
        view = f"log-{run}-view"
        r = await c.get(LOG, params={"since": since}, headers={**auth(token_a), "X-Request-Id": view})
        assert r.status_code == 200
    viewed = (await exported(gw, ehr_base_url, since, {view}))[view]
    assert patients_in(viewed) == {f"Patient/{A}"}
    assert viewed["subtype"][0]["code"] == "search-type" and viewed["outcome"] == "0"
    query = next(e for e in viewed["entity"] if (e.get("role") or {}).get("code") == "24")
    assert query["type"]["code"] == "AuditEvent"
