"""The personal health notebook: notes a patient keeps between visits (symptoms, side effects of one of their
medicines, questions for the next visit), stored in the EHR as patient-authored Observations.

How an entry is recorded (the gateway's notebook rule enforces it; see mappers/notebook_rules.py):
- `category`: `survey` (HL7 observation-category: reported by the patient, not measured) and our own
  `health-notebook` code, which is how the portal finds entries and tells them from the clinic's results;
- `code`: symptom = LOINC 75325-1 "Symptom"; side effect = SNOMED 62014003 "Adverse reaction to drug";
  question = our own `question` code (no standard code says "a question for my clinician");
- `valueString`: the patient's own words; `effectiveDateTime`: the day it happened (or was written);
- `component` severity (SNOMED 246112005) with SNOMED mild / moderate / severe, for symptoms and side effects;
- extensions naming the medicine (`MedicationRequest`) a side effect is about and the visit (`Appointment`)
  a question is for: R4 Observation has no element that points at either with that meaning;
- `subject` the patient, `performer` whoever wrote it (the patient or their caregiver);
- `status`: `preliminary` while private, `final` once the patient shares it, `amended` when a shared entry
  is changed. A shared entry is never made private again: the care team may have read it.

Everything here is pure: the form's checks in words, the Observation the portal sends, and entries shaped
for the notebook page, the dashboard and the printout. Words for people come in the `locale` the caller
names (the catalogue's, `locales`), with dates written that language's way; what goes into the record
(codes and their display texts) is always the same, whatever language the patient reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from locales import N_, gettext_in

from .dates import ENGLISH, day_words, long_date, short_date, typed_date
from .instants import parse_date

NOTEBOOK_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/health-notebook"
NOTEBOOK_CATEGORY_CODE = "health-notebook"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
MEDICINE_EXTENSION = "http://hospital.example.org/fhir/StructureDefinition/notebook-medication"
VISIT_EXTENSION = "http://hospital.example.org/fhir/StructureDefinition/notebook-appointment"
IDENTIFIER_SYSTEM = "urn:portal:notebook-entry"
# The search that finds a record's notebook entries (and only them).
CATEGORY_SEARCH = f"{NOTEBOOK_SYSTEM}|{NOTEBOOK_CATEGORY_CODE}"

CATEGORIES = [
    {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]},
    {"coding": [{"system": NOTEBOOK_SYSTEM, "code": NOTEBOOK_CATEGORY_CODE, "display": "Health notebook"}],
     "text": "Written by the patient"},
]

SYMPTOM, SIDE_EFFECT, QUESTION = "symptom", "side-effect", "question"
KIND_CODES: dict[str, dict[str, Any]] = {
    SYMPTOM: {"coding": [{"system": LOINC, "code": "75325-1", "display": "Symptom"},
                         {"system": NOTEBOOK_SYSTEM, "code": SYMPTOM, "display": "Symptom"}], "text": "Symptom"},
    SIDE_EFFECT: {"coding": [{"system": SNOMED, "code": "62014003", "display": "Adverse reaction to drug"},
                             {"system": NOTEBOOK_SYSTEM, "code": SIDE_EFFECT, "display": "Side effect"}],
                  "text": "Side effect of a medicine"},
    QUESTION: {"coding": [{"system": NOTEBOOK_SYSTEM, "code": QUESTION, "display": "Question for a visit"}],
               "text": "Question for my next visit"},
}
KIND_WORDS = {SYMPTOM: N_("How I feel"), SIDE_EFFECT: N_("Side effect of a medicine"),
              QUESTION: N_("Question for my visit")}
ADD_WORDS = {SYMPTOM: N_("Write down how you feel"), SIDE_EFFECT: N_("Write down a side effect of a medicine"),
             QUESTION: N_("Write down a question for your next visit")}

SEVERITY_CODE = {"coding": [{"system": SNOMED, "code": "246112005", "display": "Severity"}]}
SEVERITIES = {"mild": ("255604002", "Mild"), "moderate": ("6736007", "Moderate"), "severe": ("24484000", "Severe")}
SEVERITY_WORDS = {"mild": N_("Mild: it bothers me a little"), "moderate": N_("Moderate: it gets in the way of my day"),
                  "severe": N_("Severe: I can't do my usual things")}
SEVERITY_SHORT = {"mild": N_("Mild"), "moderate": N_("Moderate"), "severe": N_("Severe")}
A_MEDICINE = N_("A medicine")

PRIVATE, SHARED, CHANGED_AFTER_SHARING = "preliminary", "final", "amended"
STATUSES = (PRIVATE, SHARED, CHANGED_AFTER_SHARING)
TEXT_MAX = 500
NEXT_VISIT = ""  # a question for whichever visit comes next (no visit booked, or not chosen)


def in_words(words: Mapping[str, str], locale: str = ENGLISH) -> dict[str, str]:
    """One of the tables above (KIND_WORDS, ADD_WORDS, SEVERITY_WORDS...) in `locale`."""
    return {key: gettext_in(locale, text) for key, text in words.items()}


def _words(fields: Mapping[str, str], name: str) -> str:
    return " ".join(str(fields.get(name) or "").split())


def _codes(concept: Any) -> set[tuple[str, str]]:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return {(str(c.get("system")), str(c.get("code"))) for c in codings or [] if isinstance(c, Mapping)}


def is_notebook_entry(resource: Any) -> bool:
    """An Observation from a patient's health notebook (not a result the clinic recorded)."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Observation":
        return False
    return any((NOTEBOOK_SYSTEM, NOTEBOOK_CATEGORY_CODE) in _codes(c) for c in resource.get("category") or [])


def entry_kind(resource: Mapping[str, Any]) -> str | None:
    """symptom, side-effect or question (our own code in `code`), else None."""
    ours = [code for system, code in _codes(resource.get("code")) if system == NOTEBOOK_SYSTEM]
    return ours[0] if len(ours) == 1 and ours[0] in KIND_CODES else None


def without_notebook(resources: Iterable[Any]) -> list[Any]:
    """The clinic's observations only: the notebook's entries are not test results."""
    return [r for r in resources if not is_notebook_entry(r)]


# -- the form ------------------------------------------------------------------------------------------
def entry_errors(fields: Mapping[str, str], today: date, *, medicines: Mapping[str, str],
                 visits: Mapping[str, str], locale: str = ENGLISH) -> dict[str, list[str]]:
    """What is wrong with a notebook form, in words (in `locale`) for the field it is about. `medicines` and
    `visits` map the patient's own MedicationRequest and upcoming Appointment ids to their names."""

    def _(message: str) -> str:
        return gettext_in(locale, message)

    errors: dict[str, list[str]] = {}
    kind = fields.get("kind", "")
    if kind not in KIND_CODES:
        return {"kind": [_("Choose what you want to write down.")]}
    text = _words(fields, "text")
    if not text:
        errors["text"] = [{SYMPTOM: _("Say how you feel, for example “headache after lunch”."),
                           SIDE_EFFECT: _("Say what happened, for example “dry mouth”."),
                           QUESTION: _("Write your question.")}[kind]]
    elif len(text) > TEXT_MAX:
        errors["text"] = [_("This can be at most %(most)s characters. You have %(count)s.")
                          % {"most": TEXT_MAX, "count": len(text)}]
    if kind in (SYMPTOM, SIDE_EFFECT):
        when = _words(fields, "day")
        day = typed_date(when) if when else None
        if not when:
            errors["day"] = [_("Enter the day it happened.")]
        elif day is None:
            errors["day"] = [_("Enter a real date, for example 05/30/2026.")]
        elif day > today:
            errors["day"] = [_("This date is in the future. Enter the day it happened.")]
        if fields.get("severity", "") not in SEVERITIES:
            errors["severity"] = [_("Choose how bad it is: mild, moderate or severe.")]
    if kind == SIDE_EFFECT and fields.get("medicine", "") not in medicines:
        errors["medicine"] = [_("Choose the medicine from your list.") if medicines else
                              _("You have no medicines on record. Write it down as how you feel instead.")]
    if kind == QUESTION and fields.get("visit", NEXT_VISIT) not in (NEXT_VISIT, *visits):
        errors["visit"] = [_("Choose one of your visits, or “My next visit”.")]
    return errors


def entry_resource(fields: Mapping[str, str], *, patient_ref: str, author_ref: str, submission: str, today: date,
                   medicines: Mapping[str, str], visits: Mapping[str, str],
                   current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Observation for a form `entry_errors` found nothing wrong with: a new private entry, or `current`
    changed (it keeps its id, identifier, status and kind)."""
    kind = str((current and entry_kind(current)) or fields["kind"])
    body: dict[str, Any] = {"resourceType": "Observation"}
    if current is not None:
        body["id"] = current["id"]
    identifiers = (current or {}).get("identifier") or [{"system": IDENTIFIER_SYSTEM, "value": submission}]
    body |= {
        "identifier": identifiers,
        "status": (current or {}).get("status") or PRIVATE,
        "category": CATEGORIES,
        "code": KIND_CODES[kind],
        "subject": {"reference": patient_ref},
        "performer": (current or {}).get("performer") or [{"reference": author_ref}],
        "valueString": _words(fields, "text"),
    }
    day = typed_date(_words(fields, "day")) if kind != QUESTION else None
    written = parse_date((current or {}).get("effectiveDateTime")) if kind == QUESTION else None
    body["effectiveDateTime"] = (day or written or today).isoformat()
    extensions = []
    if kind == SIDE_EFFECT:
        rx = fields["medicine"]
        extensions.append({"url": MEDICINE_EXTENSION, "valueReference": {
            "reference": f"MedicationRequest/{rx}", "display": medicines[rx]}})
    if kind == QUESTION and (visit := fields.get("visit", NEXT_VISIT)):
        extensions.append({"url": VISIT_EXTENSION, "valueReference": {"reference": f"Appointment/{visit}"}})
    if extensions:
        body["extension"] = extensions
    if kind != QUESTION:
        code, display = SEVERITIES[fields["severity"]]
        body["component"] = [{"code": SEVERITY_CODE,
                              "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code, "display": display}],
                                                       "text": display}}]
    return body


def shared(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as the care team will see it: the same words, now `final`."""
    return {**{k: v for k, v in resource.items() if k != "meta"}, "status": SHARED}


# -- shown to the patient ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotebookEntry:
    id: str
    version: str
    kind: str
    kind_text: str
    text: str
    day: date | None
    day_text: str  # "yesterday", "3 days ago", "4 March 2026" (in the language asked for)
    date_text: str  # always the date itself ("4 March 2026"), for paper
    severity: str | None
    severity_text: str | None
    medicine_id: str | None
    medicine: str | None
    visit_id: str | None  # the Appointment a question is for (None: the next visit)
    shared: bool
    status_text: str
    written_by_me: bool

    def form(self) -> dict[str, str]:
        """The entry as the edit form's fields."""
        return {"kind": self.kind, "text": self.text, "day": self.day.isoformat() if self.day else "",
                "severity": self.severity or "", "medicine": self.medicine_id or "", "visit": self.visit_id or ""}


def _extension_ref(resource: Mapping[str, Any], url: str) -> Mapping[str, Any]:
    for ext in resource.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == url and isinstance(ext.get("valueReference"), Mapping):
            return ext["valueReference"]
    return {}


def _severity(resource: Mapping[str, Any]) -> str | None:
    by_code = {code: name for name, (code, _) in SEVERITIES.items()}
    for component in resource.get("component") or []:
        if isinstance(component, Mapping) and (SNOMED, "246112005") in _codes(component.get("code")):
            value = _codes(component.get("valueCodeableConcept"))
            found = [by_code[c] for s, c in value if s == SNOMED and c in by_code]
            return found[0] if found else None
    return None


def notebook_entry(resource: Mapping[str, Any], today: date, *, mine: Iterable[str] = (),
                   tz: tzinfo | None = None, locale: str = ENGLISH) -> NotebookEntry | None:
    """One notebook Observation in words, in `locale` (None for anything else, or an entry marked as a
    mistake)."""
    kind = entry_kind(resource) if is_notebook_entry(resource) else None
    if kind is None or resource.get("status") not in STATUSES or not isinstance(resource.get("id"), str):
        return None
    day = parse_date(resource.get("effectiveDateTime"))
    severity = _severity(resource)
    medicine = _extension_ref(resource, MEDICINE_EXTENSION)
    visit = str(_extension_ref(resource, VISIT_EXTENSION).get("reference") or "")
    rx = str(medicine.get("reference") or "")
    is_shared = resource.get("status") in (SHARED, CHANGED_AFTER_SHARING)
    performers = {str(p.get("reference")) for p in resource.get("performer") or [] if isinstance(p, Mapping)}
    return NotebookEntry(
        id=resource["id"], version=str((resource.get("meta") or {}).get("versionId") or ""), kind=kind,
        kind_text=gettext_in(locale, KIND_WORDS[kind]), text=str(resource.get("valueString") or ""), day=day,
        day_text=day_words(day.isoformat(), today, tz, locale) if day else "",
        date_text=short_date(day, locale) if day else "", severity=severity,
        severity_text=gettext_in(locale, SEVERITY_SHORT[severity]) if severity in SEVERITY_SHORT else None,
        medicine_id=rx.split("/", 1)[1] if rx.startswith("MedicationRequest/") else None,
        medicine=str(medicine.get("display") or "") or None,
        visit_id=visit.split("/", 1)[1] if visit.startswith("Appointment/") else None,
        shared=is_shared,
        status_text=gettext_in(locale, N_("Shared with your care team") if is_shared
                               else N_("Private: only you can see it here")),
        written_by_me=bool(performers & set(mine)),
    )


def notebook_entries(resources: Iterable[Any], today: date, *, mine: Iterable[str] = (),
                     tz: tzinfo | None = None, locale: str = ENGLISH) -> list[NotebookEntry]:
    """The notebook, newest first, in words in `locale`."""
    mine = list(mine)
    written = [(r, e) for r in resources if isinstance(r, Mapping)
               and (e := notebook_entry(r, today, mine=mine, tz=tz, locale=locale))]
    # Newest day first; on one day, the last written first (the time the gateway stamped, `issued`).
    written.sort(key=lambda pair: (pair[1].day or date.min, str(pair[0].get("issued") or "")), reverse=True)
    return [e for _, e in written]


@dataclass(frozen=True)
class VisitNotes:
    """What to bring up at one visit: questions for it (or for the next visit) and notes written since the
    last one."""

    questions: list[NotebookEntry]
    notes: list[NotebookEntry]

    def __bool__(self) -> bool:
        return bool(self.questions or self.notes)


def for_next_visit(entries: Iterable[NotebookEntry], visit_id: str | None, since: date | None) -> VisitNotes:
    """The questions for visit `visit_id` (or not tied to a visit) and the symptoms and side effects noted
    on or after `since` (all of them when None)."""
    entries = list(entries)
    questions = [e for e in entries if e.kind == QUESTION and e.visit_id in (None, visit_id)]
    notes = [e for e in entries if e.kind != QUESTION and (since is None or (e.day is not None and e.day >= since))]
    return VisitNotes(questions, notes)


def print_heading(name: str | None, today: date, locale: str = ENGLISH) -> str:
    """The printout's heading; `name` None when the record's name could not be read."""
    if not name:
        return gettext_in(locale, N_("Your health notebook, printed %(day)s")) % {"day": long_date(today, locale)}
    return gettext_in(locale, N_("Health notebook of %(name)s, printed %(day)s")) % {
        "name": name, "day": long_date(today, locale)}


def medicine_choices(medicines: Iterable[Any], locale: str = ENGLISH) -> dict[str, str]:
    """MedicationRequest id -> name, from the `Medication`s of mappers.medications (current first)."""
    choices: dict[str, str] = {}
    for m in medicines:
        ref = str(getattr(m, "reference", "") or "")
        if ref.startswith("MedicationRequest/"):
            choices.setdefault(ref.split("/", 1)[1], str(getattr(m, "name", "") or gettext_in(locale, A_MEDICINE)))
    return choices


def visit_choices(views: Iterable[Any], tz: tzinfo | None = None, locale: str = ENGLISH) -> dict[str, str]:
    """Appointment id -> "4 March 2026: Check-up", from mappers.appointments views (the date in `locale`; the
    kind of visit as the appointments mapper words it)."""
    choices: dict[str, str] = {}
    for v in views:
        ref = str(getattr(v, "reference", "") or "")
        start = getattr(v, "start", None)
        when = short_date(start.local_day(tz), locale) if start is not None else gettext_in(locale, N_("Date not set"))
        if ref.startswith("Appointment/"):
            what = getattr(v, "what", None) or gettext_in(locale, N_("Visit"))
            choices[ref.split("/", 1)[1]] = f"{when}: {what}"
    return choices
