"""A person's health summary in words, for the printable page and the PDF: who, current problems,
current medicines, allergies, vaccines, procedures, the latest value of each test and the last visits.

Everything is built from the other mappers; this module only chooses what a short summary keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .allergies import Allergy, allergy_list
from .conditions import Problem, problem_list
from .dates import age_words, date_words
from .immunizations import Vaccine, vaccine_list
from .instants import parse_date
from .medications import Medication, medication_list
from .names import human_name
from .procedures import ProcedureDone, procedure_list
from .results import HIDDEN_STATUSES, ResultRow, result_row
from .visits import Visit, visit_list

RECENT_VISITS = 5
NO_NAME = N_("Name not recorded")


@dataclass(frozen=True, slots=True)
class HealthSummary:
    name: str
    born_text: str | None  # "Monday 15 September 1966 (59 years old)"
    made_text: str  # the day the summary was made, in words
    problems: tuple[Problem, ...]
    medicines: tuple[Medication, ...]
    allergies: tuple[Allergy, ...]
    vaccines: tuple[Vaccine, ...]
    procedures: tuple[ProcedureDone, ...]
    latest_results: tuple[ResultRow, ...]  # the newest value of each test, by name
    visits: tuple[Visit, ...]  # the most recent ones, newest first

    @property
    def has_no_known_allergies(self) -> bool:
        return len(self.allergies) == 1 and self.allergies[0].no_known


def latest_results(observations: Iterable[Any], tz: tzinfo | None = None,
                   names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> list[ResultRow]:
    """The newest result of each test (by LOINC code, else by name), sorted by name."""
    newest: dict[str, ResultRow] = {}
    for observation in observations:
        if not isinstance(observation, Mapping) or observation.get("status") in HIDDEN_STATUSES:
            continue
        row = result_row(observation, tz, names, locale=locale)
        key = row.loinc or row.name.casefold()
        kept = newest.get(key)
        if row.effective is None:
            newest.setdefault(key, row)
        elif kept is None or kept.effective is None or row.effective.sort_key() > kept.effective.sort_key():
            newest[key] = row
    return sorted(newest.values(), key=lambda r: r.name.casefold())


def health_summary(patient: Mapping[str, Any], resources: Iterable[Any], today: date, tz: tzinfo | None = None,
                   names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> HealthSummary:
    """The summary of one person's record, in `locale`. `resources` may hold any of their resources; each part takes the
    types it knows (Condition, MedicationRequest, AllergyIntolerance, Immunization, Procedure, Observation,
    Encounter, DocumentReference)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        if isinstance(resource, dict):
            by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    born = parse_date(patient.get("birthDate")) if isinstance(patient, Mapping) else None
    age = age_words(born, today, locale) if born else None
    current_problems, _ = problem_list(by_type.get("Condition", []), tz, locale)
    current_medicines, _ = medication_list(by_type.get("MedicationRequest", []), tz=tz, locale=locale)
    visits = visit_list(by_type.get("Encounter", []), by_type.get("DocumentReference", []), tz=tz, locale=locale)
    return HealthSummary(
        name=human_name(patient) or gettext_in(locale, NO_NAME),
        born_text=date_words(born, None, locale) + (f" ({age})" if age else "") if born else None,
        made_text=date_words(today, None, locale),
        problems=tuple(current_problems),
        medicines=tuple(current_medicines),
        allergies=tuple(allergy_list(by_type.get("AllergyIntolerance", []), tz, locale)),
        vaccines=tuple(v for v in vaccine_list(by_type.get("Immunization", []), tz, locale) if v.was_given),
        procedures=tuple(procedure_list(by_type.get("Procedure", []), tz, locale)),
        latest_results=tuple(latest_results(by_type.get("Observation", []), tz, names, locale)),
        visits=tuple(visits[:RECENT_VISITS]),
    )
