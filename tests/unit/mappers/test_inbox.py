"""The care team's inbox in words and order: waiting conversations oldest first with their clock, answered
ones after; a staff reply and a work item shaped and checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mappers.inbox import (
    checked_reply,
    checked_work_item,
    clock_words,
    inbox_items,
    staff_reply,
    work_item,
)
from mappers.validation import InboundError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DOC = "Practitioner/prac-01"


def msg(mid: str, pid: str, sent: datetime, *, sender: str | None = None, part_of: str | None = None) -> dict:
    m = {"resourceType": "Communication", "id": mid, "status": "completed", "subject": {"reference": f"Patient/{pid}"},
         "sender": {"reference": sender or f"Patient/{pid}"},
         "recipient": [{"reference": "Organization/org-team-care", "display": "Care team"}],
         "sent": sent.isoformat(), "topic": {"text": f"About {mid}"}, "payload": [{"contentString": "hi"}]}
    if part_of:
        m["partOf"] = [{"reference": f"Communication/{part_of}"}]
    return m


def test_waiting_conversations_come_oldest_first_with_their_clock() -> None:
    messages = [
        msg("a", "p1", NOW - timedelta(hours=3)),
        msg("b", "p2", NOW - timedelta(days=2)),
        msg("b2", "p2", NOW - timedelta(days=1), part_of="b"),  # a second patient message: clock from the first
        msg("c", "p3", NOW - timedelta(days=5)),
        msg("c2", "p3", NOW - timedelta(days=4), sender=DOC, part_of="c"),  # answered
        msg("d", "p4", NOW - timedelta(days=6)),
    ]
    done = work_item(msg("d", "p4", NOW), status="completed", owner=None, requester=DOC)
    items = inbox_items(messages, [done], {"Patient/p1": "Ann Lee"})
    assert [i.thread for i in items if i.waiting] == ["b", "a"]
    b = items[0]
    assert b.clock(NOW) == timedelta(days=2) and b.late(NOW) and clock_words(b.clock(NOW)) == "2 days 0 h"
    a = items[1]
    assert a.patient_name == "Ann Lee" and not a.late(NOW) and clock_words(a.clock(NOW)) == "3 h 0 min"
    assert a.team_name == "Care team" and a.subject == "About a"
    assert {i.thread for i in items if not i.waiting} == {"c", "d"}


def test_a_reply_is_checked_against_its_thread() -> None:
    start = msg("a", "p1", NOW - timedelta(hours=1))
    body = staff_reply(start, practitioner=DOC, practitioner_name="Dr. Who", text=" Yes. ", submission="s-1")
    checked = checked_reply(body, start, practitioner=DOC, now=NOW)
    assert checked["sent"] == NOW.isoformat(timespec="seconds") and checked["topic"] == {"text": "About a"}
    assert checked["payload"] == [{"contentString": "Yes."}]
    with pytest.raises(InboundError):
        checked_reply(body, start, practitioner="Practitioner/other", now=NOW)
    with pytest.raises(InboundError):
        checked_reply({**body, "payload": [{"contentString": "  "}]}, start, practitioner=DOC, now=NOW)
    with pytest.raises(InboundError):
        checked_reply({**body, "identifier": []}, start, practitioner=DOC, now=NOW)


def test_a_work_item_goes_only_to_the_care_team() -> None:
    start = msg("a", "p1", NOW)
    proposed = work_item(start, status="in-progress", owner="Practitioner/n1", requester=DOC)
    task = checked_work_item(proposed, start, current=None, allowed_owners={"Practitioner/n1"}, requester=DOC,
                             now=NOW)
    assert task["owner"]["reference"] == "Practitioner/n1" and task["authoredOn"]
    with pytest.raises(InboundError):
        checked_work_item(proposed, start, current=None, allowed_owners={DOC}, requester=DOC, now=NOW)
    with pytest.raises(InboundError):
        checked_work_item({**proposed, "status": "cancelled"}, start, current=None,
                          allowed_owners={"Practitioner/n1"}, requester=DOC, now=NOW)
