"""Home: what is coming up and what is new, in one glance: the first few to-dos, next visits, new results,
new messages, medicines (refills due first) and vaccines or screenings due. Its FHIR searches run at once
(those of the to-do list among them); the wording is mappers'."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.appointments import upcoming_appointments
from mappers.care_due import load_rules
from mappers.explanations import load_explanations, plain_names
from mappers.instants import parse_instant
from mappers.medications import Medication, medication_list, refill_due
from mappers.messages import unread_count
from mappers.notebook import for_next_visit
from mappers.results import report_panel
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..sections import load_sections
from .notebook import entries_of, notebook_search
from .todo import build_to_dos, todo_loads

UPCOMING = 3
NEW_RESULTS_SHOWN = 5
REFILL_WITHIN_DAYS = 14


@dataclass(frozen=True)
class NewResult:
    name: str
    date_text: str
    is_new: bool


@dataclass(frozen=True)
class MedicineLine:
    medicine: Medication
    refill_due: bool


def _after(value: Any, since: float | None) -> bool:
    when = parse_instant(value)
    return since is not None and when is not None and when.timestamp() > since


def _reported(report: Mapping[str, Any]) -> Any:
    return report.get("issued") or report.get("effectiveDateTime")


TODO_SHOWN = 3
# Before a visit, Home shows the notebook's questions for it and the notes of the weeks before it.
NOTES_SINCE_DAYS = 30


async def show_dashboard(visit: Visit) -> Response:
    fhir, pid, clock = visit.fhir, visit.patient_id, visit.portal.clock
    locale = clock.formats(visit.locale)
    names, rules = plain_names(load_explanations(), locale), load_rules()  # both validated once (cached)
    since = visit.session.previous_sign_in
    now, today, tz = clock.now(), clock.today(), clock.tz
    parts = await load_sections(
        reports=fhir.search("DiagnosticReport", [("patient", pid), ("_sort", "-date"), ("_count", "20")],
                            all_pages=False),
        messages=fhir.search("Communication", [("subject", pid), ("_sort", "-sent"), ("_count", "50")],
                             all_pages=False),
        notebook=notebook_search(visit),
        **todo_loads(visit, rules),  # next visits, medicines and what is due come from the same searches
    )
    todo = build_to_dos(visit, parts, rules)
    upcoming = upcoming_appointments(parts["appointments"].value or [], today, now, tz=tz,
                                     locale=clock.formats(visit.locale))[:UPCOMING]
    reports = parts["reports"].value or []  # newest first, as asked for
    results = [NewResult(report_panel(r, None, tz, names, locale).name, clock.day(_reported(r), visit.locale),
                         _after(_reported(r), since)) for r in reports[:NEW_RESULTS_SHOWN]]
    next_ref = upcoming[0].reference if upcoming else None
    notes = for_next_visit(entries_of(visit, parts["notebook"].value), (next_ref or "").split("/")[-1] or None,
                           today - timedelta(days=NOTES_SINCE_DAYS)) if next_ref else None
    current, _past = medication_list(parts["medicines"].value or [], dispenses=parts["dispenses"].value, tz=tz,
                                     locale=locale)
    medicines = sorted((MedicineLine(m, refill_due(m, today, REFILL_WITHIN_DAYS)) for m in current),
                       key=lambda line: not line.refill_due)
    return visit.render(
        "portal/dashboard.html", title=_l("Home"), parts=parts, due_ok=todo.ok("due"), upcoming=upcoming,
        results=results, new_results=sum(1 for r in reports if _after(_reported(r), since)),
        unread_messages=unread_count(parts["messages"].value or [], [f"Patient/{pid}", visit.session.fhir_user]),
        medicines=medicines, refills_due=sum(1 for line in medicines if line.refill_due), due=todo.due,
        # Visits have their own card here: the panel shows the other to-dos first.
        todo=[t for t in todo.items if t.kind != "visit"][:TODO_SHOWN], todo_count=len(todo.items),
        todo_unavailable=todo.unavailable,
        previous_sign_in=since, first_sign_in=since is None, next_visit=upcoming[0] if upcoming else None,
        visit_notes=notes)


def add_dashboard_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/", include_in_schema=False)(portal.page(show_dashboard))
