"""The patient's access log: plain-words descriptions and a search that never shows another patient's events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from audit.access_log import AccessLogUnavailable, access_log, describe
from audit.events import auth_event, rest_event
from fhir_gateway.upstream import Upstream, make_client

EHR = "http://ehr.test/fhir"
NAMES = {
    "Practitioner/prac-01": "Dr. Ana Ruiz",
    "RelatedPerson/rp-7": "Sam Lee",
    "portal-web": "Patient Portal",
    "bulk-exporter": "Nightly quality export",
}


def event(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        interaction="read", outcome="0", action="R", entity_refs=["Observation/obs-1"],
        patient_refs=["Patient/pt-0001"], account_ref="Practitioner/prac-01", account_id="acct-1",
        client_id="portal-web", on_behalf_of=None, source_ip="203.0.113.9", request_id="r-1", query=None,
        recorded=datetime(2024, 6, 1, 9, 30, tzinfo=UTC),
    )
    args.update(overrides)
    return rest_event(**args)


def test_doctor_viewing_lab_results() -> None:
    e = event(interaction="search-type", action="E", query="patient=Patient/pt-0001&category=laboratory",
              entity_refs=["Observation/obs-1", "Observation/obs-2"])
    assert describe(e, NAMES, patient="pt-0001") == {
        "when": "2024-06-01T09:30:00.000+00:00",
        "who": "Dr. Ana Ruiz",
        "what": "looked through your lab results",
        "app": "Patient Portal",
        "outcome": "success",
        "from": "203.0.113.9",
    }


def test_patient_themselves_is_you() -> None:
    e = event(account_ref="Patient/pt-0001", entity_refs=["MedicationRequest/mr-1"])
    d = describe(e, NAMES, patient="Patient/pt-0001")
    assert d["who"] == "You"
    assert d["what"] == "viewed your medications"


def test_caregiver_is_named() -> None:
    e = event(account_ref="RelatedPerson/rp-7", on_behalf_of="Patient/pt-0001",
              entity_refs=["Appointment/ap-1"], interaction="update", action="U")
    d = describe(e, NAMES, patient="pt-0001")
    assert d["who"] == "Your caregiver Sam Lee"
    assert d["what"] == "moved or cancelled an appointment"


def test_forms_saved_sent_or_refused_read_as_what_the_person_did() -> None:
    me = {"account_ref": "Patient/pt-0001", "entity_refs": ["QuestionnaireResponse/qr-1"]}
    assert describe(event(**me, interaction="create", action="C"), NAMES, patient="pt-0001")["what"] == (
        "saved answers to a form")
    assert describe(event(**me, interaction="update", action="U"), NAMES, patient="pt-0001")["what"] == (
        "saved or sent answers to a form")
    refused = describe(event(**me, interaction="update", action="U", outcome="4"), NAMES, patient="pt-0001")
    assert refused["what"] == "tried to save or send answers to a form" and refused["outcome"] == "failure"


def test_backend_service() -> None:
    e = event(account_ref="Device/bulk-exporter", client_id="bulk-exporter", account_id=None,
              entity_refs=["Condition/c-1"])
    d = describe(e, NAMES, patient="pt-0001")
    assert d["who"] == "Backend service Nightly quality export"
    assert d["what"] == "viewed your health conditions"


def test_failure_and_unknown_names() -> None:
    e = event(outcome="4", account_ref="Practitioner/prac-99", entity_refs=["AllergyIntolerance/a-1"],
              client_id="some-app")
    d = describe(e, {}, patient="pt-0001")
    assert d == {**d, "who": "A member of your care team", "what": "tried to view your allergies",
                 "app": "some-app", "outcome": "failure"}


def test_paying_a_bill_and_reading_bills_in_words() -> None:
    paid = event(interaction="create", action="C", account_ref="Patient/pt-0001",
                 entity_refs=["PaymentReconciliation/pr-1", "PaymentNotice/pn-1", "Invoice/inv-1"])
    assert describe(paid, NAMES, patient="pt-0001")["what"] == "paid a bill"
    refused = event(interaction="create", action="C", outcome="4", account_ref="Patient/pt-0001",
                    entity_refs=["PaymentReconciliation"])
    assert describe(refused, NAMES, patient="pt-0001")["what"] == "tried to pay a bill"
    read = event(account_ref="Patient/pt-0001", entity_refs=["Invoice/inv-1"])
    assert describe(read, NAMES, patient="pt-0001")["what"] == "viewed your bills"


def test_reading_the_patient_resource_is_personal_details() -> None:
    e = event(entity_refs=["Patient/pt-0001"])
    assert describe(e, NAMES, patient="pt-0001")["what"] == "viewed your personal details"


def test_profile_changes_in_plain_words() -> None:
    mine = {"account_ref": "Patient/pt-0001", "outcome": "0"}
    contact = event(**mine, interaction="update", action="U", entity_refs=["Patient/pt-0001"])
    allergy = event(**mine, interaction="create", action="C", entity_refs=["AllergyIntolerance/a-9"])
    refused = event(**{**mine, "outcome": "4"}, interaction="create", action="C", entity_refs=[])
    assert describe(contact, NAMES, patient="pt-0001")["what"] == "changed your personal details"
    assert describe(allergy, NAMES, patient="pt-0001")["what"] == "added an allergy to your record"
    assert describe({**refused, "entity": allergy["entity"]}, NAMES, patient="pt-0001")["what"] == (
        "tried to add an allergy to your record")


def test_security_events_in_plain_words() -> None:
    grant = auth_event("proxy.grant", "success", fhir_user="Patient/pt-0001", patient_id="pt-0001",
                       client_id="portal-web", source_ip="198.51.100.1")
    d = describe(grant, NAMES, patient="pt-0001")
    assert (d["who"], d["what"], d["outcome"]) == ("You", "gave caregiver access to your record", "success")
    failed = auth_event("login", "failure", fhir_user="Patient/pt-0001", patient_id="pt-0001")
    assert describe(failed, NAMES, patient="pt-0001")["what"] == "tried but failed: signed in to the portal"


def bundle(*events: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": e, "search": {"mode": "match"}} for e in events]}


@pytest.fixture
async def ehr() -> Any:
    client = make_client(EHR, connect_timeout=1, read_timeout=2, max_connections=5, transport="httpx")  # for respx
    try:
        yield Upstream(client, EHR, retries=0)
    finally:
        await client.aclose()


@respx.mock
async def test_access_log_searches_by_patient_entity_and_filters_others(ehr: Upstream) -> None:
    mine_old = event(recorded=datetime(2024, 1, 1, tzinfo=UTC))
    mine_new = event(recorded=datetime(2024, 3, 1, tzinfo=UTC))
    someone_else = event(patient_refs=["Patient/pt-0002"], recorded=datetime(2024, 4, 1, tzinfo=UTC))
    route = respx.get(f"{EHR}/AuditEvent").mock(
        return_value=httpx.Response(200, json=bundle(mine_old, someone_else, mine_new))
    )
    events = await access_log(ehr, "pt-0001", count=10, since="2023-12-01")
    assert [e["id"] for e in events] == [mine_new["id"], mine_old["id"]]
    params = route.calls.last.request.url.params
    assert params["entity"] == "Patient/pt-0001"
    assert params["_sort"] == "-date"
    assert params["_count"] == "10"
    assert params["date"] == "ge2023-12-01"


@respx.mock
async def test_access_log_reports_ehr_failure(ehr: Upstream) -> None:
    respx.get(f"{EHR}/AuditEvent").mock(return_value=httpx.Response(400, json={"resourceType": "OperationOutcome"}))
    with pytest.raises(AccessLogUnavailable):
        await access_log(ehr, "pt-0001")
    respx.get(f"{EHR}/AuditEvent").mock(side_effect=httpx.ConnectError("down"))
    with pytest.raises(AccessLogUnavailable):
        await access_log(ehr, "pt-0001")


def test_notebook_entries_read_as_the_notebook_and_clinic_results_stay_results() -> None:
    me = {"account_ref": "Patient/pt-0001", "entity_refs": ["Observation/nb-1"]}
    assert describe(event(**me, interaction="create", action="C"), NAMES, patient="pt-0001")["what"] == (
        "wrote in your health notebook")
    caregiver = describe(event(account_ref="RelatedPerson/rp-7", on_behalf_of="Patient/pt-0001",
                               entity_refs=["Observation/nb-1"], interaction="update", action="U"), NAMES,
                         patient="pt-0001")
    assert caregiver["what"] == "changed or shared a note in your health notebook"
    looked = event(**me, interaction="search-type", action="E",
                   query="patient=pt-0001&category=http://hospital.example.org/fhir/CodeSystem/health-notebook"
                         "|health-notebook")
    assert describe(looked, NAMES, patient="pt-0001")["what"] == "looked through your health notebook"
    clinic = describe(event(interaction="create", action="C"), NAMES, patient="pt-0001")
    assert clinic["what"] == "added to your test results"
