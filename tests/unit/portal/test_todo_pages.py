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


async def test_the_list_in_spanish_says_what_to_do_by_when_in_spanish(tmp_path: Path, records: dict) -> None:
    visit = demo_visit(tmp_path, [*records[PID], running_out()], PID, NOON, lang="es", down=["Task"])
    html = (await show_todo(visit)).body.decode()
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    text = text_of(main)
    assert '<html lang="es">' in html and not re.search(r"<main[^>]*lang=", html)
    for words in ("Lo que tiene pendiente para su salud", "Resurtido: Lisinopril 10 mg",
                  "Pida un resurtido unos días antes.", "Vacuna contra la gripe", "Por qué se lo sugerimos",
                  "Agregar a mi calendario", "Ahora no podemos mostrar sus formularios"):
        assert words in text, words
    # Dates are written the Spanish way: "Se le puede acabar para el miércoles, 11 de marzo de 2026."
    assert re.search(r"para el \w+, \d{1,2} de \w+ de \d{4}\.", text)
    # Nothing of ours is left in English; only the guidelines' own titles are, marked as English.
    spanish_only = text_of(re.sub(r'<span lang="en">.*?</span>', " ", main))
    for english in ("Refill", "May run out", "Due now", "Why this is suggested", "Add to my calendar", "Source:",
                    "Flu shot", "Ask your care team", "We can't show"):
        assert english not in spanish_only, english
    # The calendar file speaks the reader's language too.
    calendar_visit = _with_path(tmp_path, records, "refill-rx-due")
    calendar_visit.session.extra["lang"] = "es"
    [event] = Calendar.from_ical((await todo_calendar(calendar_visit)).body).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Se le puede acabar un medicamento: Lisinopril 10 mg"
