"""Messages as a patient reads them: conversations, unread marks, who to write to, form problems."""

from __future__ import annotations

from datetime import date

from mappers.messages import (
    care_team_recipients,
    compose_errors,
    outgoing,
    thread_id,
    threads,
    unread_count,
)

ME = "Patient/pt-1"
DOC = {"reference": "Practitioner/prac-01", "display": "Dr. Margaret Ellison"}
TOPIC = [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/message-topic", "code": "billing"}],
          "text": "Billing question"}]


def msg(mid: str, sent: str, *, mine: bool, part_of: str | None = None, received: str | None = None,
        **extra: object) -> dict:
    m = {"resourceType": "Communication", "id": mid, "status": "completed", "sent": sent,
         "subject": {"reference": ME}, "category": TOPIC,
         "sender": {"reference": ME} if mine else DOC, "recipient": [DOC] if mine else [{"reference": ME}],
         "payload": [{"contentString": f"text of {mid}"}], **extra}
    if part_of:
        m["partOf"] = [{"reference": f"Communication/{part_of}"}]
    if received:
        m["received"] = received
    return m


def test_conversations_newest_first_with_their_messages_oldest_first_and_unread_counted() -> None:
    old = msg("a1", "2026-01-01T10:00:00Z", mine=True, topic={"text": "My statement"}, received="2026-01-01T11:00:00Z")
    answer = msg("a2", "2026-01-02T10:00:00Z", mine=False, part_of="a1")
    other = msg("b1", "2025-12-01T10:00:00Z", mine=False, received="2025-12-02T10:00:00Z",
                topic={"text": "Flu shots"})
    found = threads([answer, other, old], [ME], date(2026, 1, 3))
    assert [t.id for t in found] == ["a1", "b1"]
    first = found[0]
    assert first.subject == "My statement" and first.topic == "Billing question"
    assert first.with_whom == "Dr. Margaret Ellison" and first.reply_recipient == "Practitioner/prac-01"
    assert [m.id for m in first.messages] == ["a1", "a2"] and first.reply_to == "a2"
    assert [m.sender for m in first.messages] == ["You", "Dr. Margaret Ellison"]
    assert first.unread == 1 and found[1].unread == 0
    # Only messages TO the person count as unread; theirs waiting to be read by the clinic do not.
    assert unread_count([answer, other, old], [ME]) == 1
    assert unread_count([msg("c", "2026-01-01", mine=True)], [ME]) == 0


def test_message_text_is_kept_as_written_and_files_are_listed() -> None:
    html = msg("h1", "2026-01-01T10:00:00Z", mine=False,
               payload=[{"contentString": "<b>hi</b>"},
                        {"contentAttachment": {"contentType": "application/pdf", "url": "Binary/f1", "size": 2048,
                                               "title": "statement.pdf"}}])
    view = threads([html], [ME], date(2026, 1, 1))[0].messages[0]
    assert view.texts == ["<b>hi</b>"]  # escaped by the template, never interpreted here
    assert view.attachments[0].binary_id == "f1" and view.attachments[0].kind == "PDF"
    assert view.attachments[0].size == "2 KB"


def test_a_reply_points_at_its_conversation() -> None:
    assert thread_id(msg("x2", "2026-01-01", mine=False, part_of="x1")) == "x1"
    assert thread_id(msg("x1", "2026-01-01", mine=False)) == "x1"


CARE_TEAM = {"resourceType": "CareTeam", "status": "active", "participant": [
    {"member": {"reference": "Practitioner/prac-01", "display": "Dr. Margaret Ellison"},
     "role": [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/staff-role", "code": "clinician"}],
               "text": "Clinician"}]},
    {"member": {"reference": "Practitioner/prac-staff-05", "display": "Derek Sims"},
     "role": [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/staff-role", "code": "billing"}],
               "text": "Billing"}]},
    {"member": {"reference": "Organization/org-team-billing", "display": "Billing office"},
     "role": [{"text": "Questions about statements, insurance and payments"}]},
]}


def test_recipients_are_the_teams_then_named_clinicians() -> None:
    found = care_team_recipients([CARE_TEAM, {**CARE_TEAM, "status": "inactive",
                                              "participant": [{"member": {"reference": "Practitioner/x",
                                                                          "display": "Old"}}]}])
    assert [r.reference for r in found] == ["Organization/org-team-billing", "Practitioner/prac-01"]
    assert found[0].about.startswith("Questions about statements")


def test_form_problems_are_named_field_by_field() -> None:
    recipients = care_team_recipients([CARE_TEAM])
    errors = compose_errors({"to": "Practitioner/prac-99", "topic": "gossip", "subject": "", "text": "  "},
                            recipients)
    assert set(errors) == {"to", "topic", "subject", "text"}
    ok = {"to": "Practitioner/prac-01", "topic": "care", "subject": "Hi", "text": "A question"}
    assert compose_errors(ok, recipients) == {}
    assert compose_errors({**ok, "text": "x" * 10_001}, recipients)["text"][0].startswith("Your message is too long")
    assert compose_errors({"text": "thanks"}, [], reply=True) == {}


def test_outgoing_message_and_reply() -> None:
    new = outgoing(patient_ref=ME, recipient="Organization/org-team-care", text=" Hello ", submission="s-1",
                   topic="medication", subject="Refill")
    assert new["identifier"] == [{"system": "urn:portal:message", "value": "s-1"}]
    assert new["category"][0]["coding"][0]["code"] == "medication" and new["topic"] == {"text": "Refill"}
    assert new["payload"] == [{"contentString": "Hello"}] and "partOf" not in new
    root = msg("r1", "2026-01-01", mine=True, topic={"text": "Refill"})
    reply = outgoing(patient_ref=ME, recipient="Practitioner/prac-01", text="Thanks", submission="s-2",
                     thread=root, answers="r2")
    assert reply["partOf"] == [{"reference": "Communication/r1"}]
    assert reply["inResponseTo"] == [{"reference": "Communication/r2"}]
    assert reply["topic"] == {"text": "Refill"} and reply["category"] == TOPIC
