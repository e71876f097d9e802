"""Health-notebook entries against the real EHR: stored as patient-authored Observations (private, then shared),
once however often they are sent; the clinic's results, another record's medicine and a shared entry made
private again are refused, with nothing written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from mappers.notebook import CATEGORY_SEARCH, MEDICINE_EXTENSION, entry_resource, shared
from tests.conftest import GatewayServer

from .helpers import auth, ehr_search, first_id, mint

pytestmark = pytest.mark.integration

OWNER, OTHER = "pt-0023", "pt-0018"
SCOPES = "launch/patient patient/*.rs patient/Observation.cu"


def entry(kind: str, medicine: str = "", **extra: str) -> dict:
    today = datetime.now(UTC).date()
    form = {"kind": kind, "text": f"Dizzy after the dose {uuid.uuid4().hex[:6]}", "day": today.isoformat(),
            "severity": "moderate", "medicine": medicine, **extra}
    return entry_resource(form, patient_ref=f"Patient/{OWNER}", author_ref=f"Patient/{OWNER}",
                          submission=uuid.uuid4().hex, today=today, medicines={medicine: "typed"}, visits={})


def notebook(base: str, patient: str = OWNER) -> list[dict]:
    return ehr_search(base, "Observation", {"patient": f"Patient/{patient}", "category": CATEGORY_SEARCH})


def test_a_side_effect_is_stored_once_private_then_shared_and_changed_as_amended(
        gateway: GatewayServer, ehr_base_url: str) -> None:
    rx = first_id(ehr_base_url, "MedicationRequest", {"patient": f"Patient/{OWNER}"})
    body = entry("side-effect", rx)
    before = len(notebook(ehr_base_url))
    with httpx.Client(base_url=gateway.fhir, headers=auth(mint(gateway, SCOPES, patient=OWNER)), timeout=60) as c:
        first = c.post("/Observation", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        again = c.post("/Observation", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert first.status_code == 201, first.text
        assert again.json()["id"] == first.json()["id"]
        made = first.json()
        share = c.put(f"/Observation/{made['id']}", json=shared(made),
                      headers={"If-Match": f'W/"{made["meta"]["versionId"]}"'})
        assert share.status_code == 200, share.text
        changed = c.put(f"/Observation/{made['id']}", json={**shared(share.json()), "valueString": "Worse now"})
        private = c.put(f"/Observation/{made['id']}", json={**shared(changed.json()), "status": "preliminary"})
    after = notebook(ehr_base_url)
    assert len(after) == before + 1
    stored = next(o for o in after if o["id"] == made["id"])
    assert stored["status"] == "amended" and stored["valueString"] == "Worse now"
    assert stored["subject"]["reference"] == stored["performer"][0]["reference"] == f"Patient/{OWNER}"
    assert made["status"] == "preliminary" and share.json()["status"] == "final"
    medicine = next(e for e in stored["extension"] if e["url"] == MEDICINE_EXTENSION)["valueReference"]
    assert medicine["reference"] == f"MedicationRequest/{rx}" and medicine["display"] != "typed"
    assert private.status_code == 422 and "made private again" in private.json()["issue"][0]["diagnostics"]


def test_clinic_results_and_other_records_are_refused_with_nothing_written(
        gateway: GatewayServer, ehr_base_url: str) -> None:
    lab = ehr_search(ehr_base_url, "Observation", {"patient": f"Patient/{OWNER}", "category": "laboratory",
                                                   "_count": 1})[0]
    theirs = first_id(ehr_base_url, "MedicationRequest", {"patient": f"Patient/{OTHER}"})
    mine = notebook(ehr_base_url) or []
    before_lab, before_mine, before_other = ehr_search(ehr_base_url, "Observation", {"_id": lab["id"]}), len(mine), \
        len(notebook(ehr_base_url, OTHER))
    with httpx.Client(base_url=gateway.fhir, headers=auth(mint(gateway, SCOPES, patient=OWNER)), timeout=60) as c:
        clinic = c.put(f"/Observation/{lab['id']}", json={**{k: v for k, v in lab.items() if k != "meta"},
                                                          "status": "cancelled"})
        disguised = c.put(f"/Observation/{lab['id']}", json={**entry("symptom"), "id": lab["id"]})
        other_medicine = c.post("/Observation", json=entry("side-effect", theirs))
        lab_create = c.post("/Observation", json={"resourceType": "Observation", "status": "final",
                                                  "code": {"text": "Glucose"}, "subject": {"reference":
                                                                                          f"Patient/{OWNER}"}})
    assert clinic.status_code == disguised.status_code == lab_create.status_code == 403
    assert other_medicine.status_code == 404 and theirs not in other_medicine.text
    assert ehr_search(ehr_base_url, "Observation", {"_id": lab["id"]}) == before_lab
    assert len(notebook(ehr_base_url)) == before_mine and len(notebook(ehr_base_url, OTHER)) == before_other
