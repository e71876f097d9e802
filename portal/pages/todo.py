"""To do: medicines that may run out soon, visits coming up, forms to fill in, vaccines and check-ups due;
the full list (/portal/todo), a calendar file for each to-do with a date still to come, and the searches
and shaping the dashboard's short panel shares. The rules for what is due are data (mappers/data/
care_due.toml, each naming its guideline); the wording is mappers', in the reader's language."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from locales import N_, gettext_in
from mappers.appointments import upcoming_appointments
from mappers.calendar_file import calendar_file
from mappers.care_due import CareRule, DueItem, care_due, evidence_codes, load_rules
from mappers.form_tasks import TASK_CODE, assigned_forms
from mappers.medications import medication_list
from mappers.todo import ToDo, to_dos
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..fhir import NotFound
from ..sections import Section, load_sections

TASK_SYSTEM = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
# Only the tests the rules count are fetched for "due", not every result (vaccines: all of them).
NARROWED = ("Observation", "DiagnosticReport", "Procedure")
CODES_PER_SEARCH = 20  # the gateway's limit on the values of one search parameter
DUE_PARTS = ("patient", "immunizations", "conditions", "tests", "test_reports", "procedures")
SOURCES = {"medicines": ("medicines", "dispenses"), "visits": ("appointments",),
           "forms": ("tasks", "responses", "forms"), "due": DUE_PARTS}
SOURCE_WORDS = {"medicines": N_("your medicines"), "visits": N_("your visits"), "forms": N_("your forms"),
                "due": N_("vaccines and check-ups due")}


async def _evidence_search(visit: Visit, rtype: str, codes: dict[str, list[str]]) -> list[dict[str, Any]]:
    params = [("patient", visit.patient_id), ("_sort", "-date"), ("_count", "200")]
    wanted = codes.get(rtype) if rtype in NARROWED else None
    if not wanted:
        return await visit.fhir.search(rtype, params, all_pages=False)
    # The gateway takes at most CODES_PER_SEARCH values per parameter: more codes, more searches (at once).
    chunks = [wanted[i:i + CODES_PER_SEARCH] for i in range(0, len(wanted), CODES_PER_SEARCH)]
    found = await asyncio.gather(*(visit.fhir.search(rtype, [*params, ("code", ",".join(chunk))], all_pages=False)
                                   for chunk in chunks))
    return list({(r.get("resourceType"), r.get("id")): r for part in found for r in part}.values())


def care_due_loads(visit: Visit, rules: list[CareRule]) -> dict[str, Awaitable[Any]]:
    codes = evidence_codes(rules)
    fhir, pid = visit.fhir, visit.patient_id
    return {
        "patient": fhir.read("Patient", pid),
        "immunizations": _evidence_search(visit, "Immunization", codes),
        "conditions": fhir.search("Condition", [("patient", pid), ("_count", "200")], all_pages=False),
        "tests": _evidence_search(visit, "Observation", codes),
        "test_reports": _evidence_search(visit, "DiagnosticReport", codes),
        "procedures": _evidence_search(visit, "Procedure", codes),
    }


def todo_loads(visit: Visit, rules: list[CareRule]) -> dict[str, Awaitable[Any]]:
    """Every search the to-do list needs (the dashboard runs them with its own, at once)."""
    fhir, pid, today = visit.fhir, visit.patient_id, visit.portal.clock.today()
    return {
        "appointments": fhir.search("Appointment", [("patient", pid), ("date", f"ge{today.isoformat()}"),
                                                    ("status", "booked"), ("_sort", "date"), ("_count", "10")],
                                    all_pages=False),
        "medicines": fhir.search("MedicationRequest", [("patient", pid), ("status", "active")]),
        "dispenses": fhir.search("MedicationDispense", [("patient", pid), ("_count", "200")], all_pages=False),
        "tasks": fhir.search("Task", [("patient", pid), ("code", f"{TASK_SYSTEM}|{TASK_CODE}"), ("_count", "50")],
                             all_pages=False),
        "responses": fhir.search("QuestionnaireResponse", [("patient", pid), ("_sort", "-authored"),
                                                           ("_count", "100")], all_pages=False),
        "forms": fhir.search("Questionnaire", [("status", "active"), ("_count", "50")], all_pages=False),
        **care_due_loads(visit, rules),
    }


@dataclass(frozen=True)
class ToDoList:
    items: list[ToDo]
    due: list[DueItem]
    unavailable: list[str]  # what could not be read, in words
    missing: frozenset[str] = frozenset()  # the same, as SOURCES' names

    def ok(self, source: str) -> bool:
        return source not in self.missing


def _ok(parts: dict[str, Section[Any]], source: str) -> bool:
    return all(parts[name].ok for name in SOURCES[source])


def build_to_dos(visit: Visit, parts: dict[str, Section[Any]], rules: list[CareRule]) -> ToDoList:
    clock = visit.portal.clock
    today, now, tz, words = clock.today(), clock.now(), clock.tz, clock.formats(visit.locale)
    current, _ = medication_list(parts["medicines"].value or [], dispenses=parts["dispenses"].value or [], tz=tz) \
        if _ok(parts, "medicines") else ([], [])
    visits = upcoming_appointments(parts["appointments"].value or [], today, now, tz=tz, locale=words)
    forms = assigned_forms(parts["tasks"].value or [], parts["responses"].value or [], parts["forms"].value or [],
                           today, tz, words) if _ok(parts, "forms") else []
    due = care_due(parts["patient"].value or {}, [r for name in DUE_PARTS[1:] for r in parts[name].value or []],
                   today, rules, words) if _ok(parts, "due") else []
    items = to_dos(medicines=current, visits=visits, forms=forms, due=due, today=today, now=now, tz=tz, locale=words)
    missing = [s for s in SOURCES if not _ok(parts, s)]
    return ToDoList(items, due, [gettext_in(words, SOURCE_WORDS[s]) for s in missing], frozenset(missing))


async def _to_do_list(visit: Visit) -> ToDoList:
    rules = load_rules()
    return build_to_dos(visit, await load_sections(**todo_loads(visit, rules)), rules)


async def show_todo(visit: Visit) -> Response:
    found = await _to_do_list(visit)
    return visit.render("portal/todo.html", title=_l("To do"), todo=found)


async def todo_calendar(visit: Visit) -> Response:
    """One to-do as a calendar file, to add to the person's own calendar."""
    wanted = visit.request.path_params["todo_id"]
    found = await _to_do_list(visit)
    item = next((t for t in found.items if t.id == wanted and t.event is not None), None)
    if item is None or item.event is None:
        raise NotFound("to-do")
    return Response(calendar_file([item.event]), media_type="text/calendar", headers={
        "Content-Disposition": f'attachment; filename="{item.id}.ics"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def add_todo_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/todo", include_in_schema=False)(portal.page(show_todo))
    router.get(PREFIX + "/todo/{todo_id}.ics", include_in_schema=False)(portal.page(todo_calendar))
