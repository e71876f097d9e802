"""A break-the-glass access reads as one in its AuditEvent: purposeOfUse BTG on the person and the event,
their reason on the request entity; an ordinary access carries no purpose."""

from __future__ import annotations

from fhir.resources.R4B.auditevent import AuditEvent

from audit.events import rest_event


def _event(**extra: object) -> dict:
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=["Observation/o9"],
                      patient_refs=["Patient/pt-0002"], account_ref="Practitioner/prac-01", account_id="acct-1",
                      client_id="staff-portal-x", on_behalf_of=None, source_ip="203.0.113.7", request_id="rid-1",
                      query=None, **extra)


def test_break_the_glass_is_recorded_with_its_reason() -> None:
    event = _event(purpose_of_use="BTG", purpose_reason="Unconscious in the ER\nno carer")
    AuditEvent.model_validate(event)  # still a valid R4 AuditEvent
    user = event["agent"][0]
    assert user["purposeOfUse"][0]["coding"][0]["code"] == "BTG"
    assert event["purposeOfEvent"][0]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    details = [d["valueString"] for e in event["entity"] for d in e.get("detail", [])]
    assert details == ["BTG: Unconscious in the ER no carer"]


def test_an_ordinary_access_has_no_purpose() -> None:
    event = _event()
    assert "purposeOfEvent" not in event and "purposeOfUse" not in event["agent"][0]
    assert not [d for e in event["entity"] for d in e.get("detail", [])]
