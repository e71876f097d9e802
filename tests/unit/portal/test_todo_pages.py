"""The to-do list and its calendar files, rendered from the demo data: what a person reads, in what order,
what the dashboard's short panel shows, and what happens when part of the record cannot be read."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from icalendar import Calendar

from portal.core import Visit
from portal.fhir import NotFound
from portal.pages.dashboard import show_dashboard
from portal.pages.todo import show_todo, todo_calendar

from .pages_harness import demo_visit
from .test_pages import NOON, text_of

PID = "pt-0005"  # 86: vaccines and screenings apply; forms asked of them in the demo data


def running_out() -> dict:
    written = (NOON - timedelta(days=25)).date().isoformat()
    return {"resourceType": "MedicationRequest", "id": "rx-due", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{PID}"}, "medicationCodeableConcept": {"text": "Lisinopril 10 mg"},
            "authoredOn": written, "dispenseRequest": {"numberOfRepeatsAllowed": 0,
                                                      "expectedSupplyDuration": {"value": 30}}}


async def test_the_list_says_what_to_do_by_when_with_a_calendar_file_where_there_is_a_date(
        tmp_path: Path, records: dict) -> None:
    visit = demo_visit(tmp_path, [*records[PID], running_out()], PID, NOON)
    html = (await show_todo(visit)).body.decode()
    text = text_of(html)
    assert "Refill: Lisinopril 10 mg" in text and "May run out by" in text
    assert "Why this is suggested" in text and "Source:" in text
    assert 'href="/portal/todo/refill-rx-due.ics"' in html
    assert "http://" not in text and "None" not in text.split()
    calendar = await todo_calendar(_with_path(tmp_path, records, "refill-rx-due"))
    assert calendar.media_type == "text/calendar"
    assert 'filename="refill-rx-due.ics"' in calendar.headers["content-disposition"]
    [event] = Calendar.from_ical(calendar.body).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Medicine may run out: Lisinopril 10 mg"
    assert event.decoded("DTSTART") == (NOON + timedelta(days=5)).date()


def _with_path(tmp_path: Path, records: dict, todo_id: str) -> Visit:
    visit = demo_visit(tmp_path, [*records[PID], running_out()], PID, NOON)
    visit.request.scope["path_params"] = {"todo_id": todo_id}
    return visit


async def test_a_to_do_without_a_date_to_come_or_of_another_kind_has_no_calendar_file(
        tmp_path: Path, records: dict) -> None:
    for wanted in ("care-made-up", "../refill-rx-due"):
        with pytest.raises(NotFound):
            await todo_calendar(_with_path(tmp_path, records, wanted))


async def test_the_dashboard_shows_the_first_few_to_dos_and_links_to_the_rest(tmp_path: Path, records: dict) -> None:
    html = (await show_dashboard(demo_visit(tmp_path, [*records[PID], running_out()], PID, NOON))).body.decode()
    panel = html.split('id="todo"', 1)[1].split('id="appointments"', 1)[0]
    assert "Refill: Lisinopril 10 mg" in text_of(panel)
    shown = panel.count("<li>")
    total = int(re.search(r"See all (\d+) to-dos", text_of(panel)).group(1))  # type: ignore[union-attr]
    assert 1 <= shown <= 3 < total


async def test_a_part_of_the_record_that_cannot_be_read_is_named_and_the_rest_still_shown(
        tmp_path: Path, records: dict) -> None:
    visit = demo_visit(tmp_path, [*records[PID], running_out()], PID, NOON, down=["Task"])
    text = text_of((await show_todo(visit)).body.decode())
    assert "We can't show your forms right now" in text
    assert "Refill: Lisinopril 10 mg" in text
