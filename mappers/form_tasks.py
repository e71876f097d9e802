"""The forms a patient has been asked to fill in, and where each stands (pure).

The clinic assigns a form with a Task (code `complete-questionnaire`, the form's canonical as `input`, a
check-in's visit as `focus`, the due date as `restriction.period.end`). The Task's own status may lag
behind (patients do not change Tasks), so where a form stands comes from the patient's answers: none yet,
a draft saved, or sent. Answers the patient gave without a Task (a check-in opened from a visit) are listed
too. Words are in the `locale` passed in (English by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from locales import ENGLISH, NP_, gettext_in, pgettext_in

from .dates import date_words
from .inbound import APPOINTMENT_EXTENSION
from .instants import parse_date
from .questionnaires import cites
from .references import parse_reference

TASK_CODE = "complete-questionnaire"
OPEN_TASK = frozenset({"requested", "received", "accepted", "ready", "in-progress"})
STATE_WORDS = {"todo": NP_("a form not filled in yet", "To do"), "draft": NP_("form", "Draft saved"),
               "sent": NP_("form", "Sent")}


@dataclass(frozen=True, slots=True)
class AssignedForm:
    title: str
    questionnaire_id: str
    appointment_id: str | None
    state: str  # todo | draft | sent
    state_text: str
    due: date | None
    due_text: str | None
    is_overdue: bool
    visit_text: str | None  # "For your visit: Annual physical"
    response_id: str | None
    updated_text: str | None

    @property
    def href(self) -> str:
        base = f"/portal/forms/{self.questionnaire_id}"
        return f"{base}?appointment={self.appointment_id}" if self.appointment_id else base


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_form_task(task: Mapping[str, Any]) -> bool:
    codings = (task.get("code") or {}).get("coding") if isinstance(task.get("code"), Mapping) else None
    return any(isinstance(c, Mapping) and c.get("code") == TASK_CODE for c in codings or [])


def _task_form(task: Mapping[str, Any]) -> str:
    for item in task.get("input") or []:
        if isinstance(item, Mapping) and isinstance(item.get("valueCanonical"), str):
            return item["valueCanonical"]
    return ""


def response_appointment_id(response: Mapping[str, Any]) -> str | None:
    for ext in response.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == APPOINTMENT_EXTENSION:
            ref = parse_reference(ext.get("valueReference"), "Appointment")
            return ref.id if ref else None
    return None


def _task_appointment(task: Mapping[str, Any]) -> tuple[str | None, str | None]:
    ref = parse_reference(task.get("focus"), "Appointment")
    if ref is None:
        return None, None
    return ref.id, _str((task.get("focus") or {}).get("display")) or None


def task_outputs(task: Mapping[str, Any]) -> list[str]:
    """The ids of the QuestionnaireResponses a form's Task names as its result."""
    found = []
    for item in task.get("output") or []:
        ref = parse_reference(item.get("valueReference") if isinstance(item, Mapping) else None,
                              "QuestionnaireResponse")
        if ref:
            found.append(ref.id)
    return found


def _output(task: Mapping[str, Any]) -> str | None:
    return next(iter(task_outputs(task)), None)


def _latest(responses: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    # A draft in hand counts before an older sent copy; otherwise the newest wins.
    if not responses:
        return None
    return max(responses, key=lambda r: (_str(r.get("authored")), r.get("status") == "in-progress"))


def assigned_forms(tasks: Iterable[Any], responses: Iterable[Any], forms: Iterable[Any], today: date,
                   tz: tzinfo | None = None, locale: str = ENGLISH) -> list[AssignedForm]:
    """Every form asked of this patient (open ones first, soonest due first), then answers given without a
    Task. `forms` are the clinic's published Questionnaires; a Task for a form that is not among them is
    left out (nothing to open)."""
    published = [f for f in forms if isinstance(f, Mapping) and f.get("id")]
    answers = [r for r in responses if isinstance(r, Mapping) and r.get("status") in ("in-progress", "completed")]
    used: set[str] = set()
    out: list[AssignedForm] = []
    for task in tasks:
        if not isinstance(task, Mapping) or not _is_form_task(task) or task.get("status") in ("cancelled",
                                                                                             "entered-in-error"):
            continue
        wanted = _task_form(task)
        form = next((f for f in published if cites(wanted, f)), None)
        if form is None:
            continue
        appointment_id, visit = _task_appointment(task)
        by_output = _output(task)
        mine = [r for r in answers if cites(r.get("questionnaire"), form)
                and response_appointment_id(r) == appointment_id
                and (r.get("id") == by_output or _str(r.get("authored")) >= _str(task.get("authoredOn"))[:10])]
        if by_output:
            mine += [r for r in answers if r.get("id") == by_output and r not in mine]
        response = _latest(mine)
        if response is None and task.get("status") not in OPEN_TASK:
            continue  # done some other way (on paper at the desk): nothing to do here
        used.update(_str(r.get("id")) for r in mine)
        period = (task.get("restriction") or {}).get("period") if isinstance(task.get("restriction"), Mapping) else None
        due = parse_date((period or {}).get("end")) if isinstance(period, Mapping) else None
        out.append(_line(form, response, appointment_id, visit, due, today, tz, locale))
    for response in answers:
        if _str(response.get("id")) in used:
            continue
        form = next((f for f in published if cites(response.get("questionnaire"), f)), None)
        if form is not None:
            out.append(_line(form, response, response_appointment_id(response), None, None, today, tz, locale))
    order = {"todo": 0, "draft": 0, "sent": 1}
    out.sort(key=lambda f: (order[f.state], f.due or date.max, f.title))
    return out


def _line(form: Mapping[str, Any], response: Mapping[str, Any] | None, appointment_id: str | None,
          visit: str | None, due: date | None, today: date, tz: tzinfo | None, locale: str = ENGLISH) -> AssignedForm:
    state = "todo" if response is None else "sent" if response.get("status") == "completed" else "draft"
    authored = response.get("authored") if response else None
    return AssignedForm(
        title=_str(form.get("title")) or _str(form.get("name")) or gettext_in(locale, "Form"),
        questionnaire_id=_str(form.get("id")),
        appointment_id=appointment_id,
        state=state,
        state_text=pgettext_in(locale, *STATE_WORDS[state]),
        due=due if state != "sent" else None,
        due_text=date_words(due, tz, locale) if due and state != "sent" else None,
        is_overdue=state != "sent" and due is not None and due < today,
        visit_text=visit,
        response_id=_str(response.get("id")) or None if response else None,
        updated_text=date_words(authored, tz, locale) if authored else None,
    )
