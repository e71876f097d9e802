"""Procedures are part of a patient's record: readable and searchable in their own compartment only,
never writable by a patient."""

from __future__ import annotations

from typing import Any

import respx

from .conftest import Harness, bundle

PT, OTHER = "pt-0001", "pt-0002"
SCOPES = "launch/patient openid fhirUser patient/*.rs patient/*.cud"


def procedure(pid: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": pid, "status": "completed",
            "subject": {"reference": f"Patient/{patient}"}, "code": {"text": "Colonoscopy"},
            "performedDateTime": "2024-05-02"}


async def test_a_patient_searches_and_reads_only_their_own_procedures(harness: Harness,
                                                                    ehr: respx.MockRouter) -> None:
    search = ehr.get("/Procedure").respond(json=bundle(procedure("pr1", PT)))
    ehr.get("/Procedure/pr1").respond(json=procedure("pr1", PT))
    ehr.get("/Procedure/pr2").respond(json=procedure("pr2", OTHER))
    headers = {"Authorization": f"Bearer {harness.token(SCOPES, patient=PT)}"}
    async with harness.client() as c:
        found = await c.get("/fhir/Procedure", params={"code": "http://snomed.info/sct|73761001"}, headers=headers)
        assert found.status_code == 200, found.text
        assert [e["resource"]["id"] for e in found.json()["entry"]] == ["pr1"]
        # The gateway put the patient into the search itself.
        assert search.calls.last.request.url.params["patient"] == f"Patient/{PT}"
        assert (await c.get("/fhir/Procedure/pr1", headers=headers)).status_code == 200
        # Another patient's procedure does not exist as far as this patient can tell.
        other = await c.get("/fhir/Procedure/pr2", headers=headers)
        assert other.status_code == 404 and other.json()["resourceType"] == "OperationOutcome"
        # Reading is all: a patient cannot record a procedure.
        wrote = await c.post("/fhir/Procedure", json=procedure("new", PT), headers=headers)
        assert wrote.status_code in (403, 405)
    assert not any(call.request.method == "POST" for call in ehr.calls)


async def test_asking_for_another_patients_procedures_shows_none_of_them(harness: Harness,
                                                                        ehr: respx.MockRouter) -> None:
    # Even an EHR that wrongly answers with another patient's procedure leaks nothing.
    ehr.get("/Procedure").respond(json=bundle(procedure("pr2", OTHER)))
    headers = {"Authorization": f"Bearer {harness.token(SCOPES, patient=PT)}"}
    async with harness.client() as c:
        answer = await c.get("/fhir/Procedure", params={"patient": OTHER}, headers=headers)
    assert "pr2" not in answer.text and "Colonoscopy" not in answer.text
    sent = [call.request.url.params.get_list("patient") for call in ehr.calls]
    assert all(f"Patient/{PT}" in params for params in sent)
