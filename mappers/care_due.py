"""Vaccines and screenings due or overdue, worked out from the record against rules kept as data
(`data/care_due.toml`, each rule naming its guideline: CDC schedules, USPSTF, ADA, AHA).

"Due" means the record shows no dose or test that still counts; the patient may have had it elsewhere, so
the words say "no record" rather than "you missed". Pure: `today` is passed in, the rules too; so is the
`locale` the words are in (a rule's title and why are in the catalogue, marked through `babel.cfg`).
"""

from __future__ import annotations

import calendar
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal

from locales import ENGLISH, gettext_in

from .concepts import codes, loinc_code
from .dates import date_words, month_year
from .instants import first_time, parse_date
from .quantities import quantity_value

RESOURCES = ("Immunization", "Observation", "DiagnosticReport", "Procedure")
KINDS = ("vaccine", "screening")
BMI = "39156-5"
# Listed as "due soon" this many days before the due date.
DUE_SOON_DAYS = 60
# Past the due date by more than this it reads as "overdue" (a little slack: visits are booked ahead).
OVERDUE_AFTER_DAYS = 30
Status = Literal["overdue", "due", "due-soon"]


class CareRuleError(ValueError):
    """The rules table is not usable; the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class Evidence:
    resource: str
    system: str
    codes: frozenset[str]
    valid_months: int | None = None


@dataclass(frozen=True, slots=True)
class CareRule:
    id: str
    title: str
    kind: str
    why: str
    source_title: str
    source_url: str
    evidence: tuple[Evidence, ...]
    sex: str = "any"
    min_age: float = 0
    max_age: float | None = None
    conditions: frozenset[str] = frozenset()
    min_bmi: float | None = None
    every_months: int | None = None
    doses: int | None = None
    min_months_between: int = 0
    once: bool = False
    season_start_month: int | None = None
    season_end_month: int | None = None


@dataclass(frozen=True, slots=True)
class DueItem:
    rule_id: str
    title: str
    kind: str
    status: Status
    status_text: str  # "Overdue since March 2025", "Due now: no record of it", "Due by 4 June 2026"
    due_date: date | None
    last_done: date | None
    last_done_text: str | None
    why: str
    source_title: str
    source_url: str


# -- the table ------------------------------------------------------------------------------------------

def _str(rule: Mapping[str, Any], key: str, where: str) -> str:
    value = rule.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CareRuleError(f"{where}: `{key}` is missing or empty")
    return value.strip()


def _number(rule: Mapping[str, Any], key: str, where: str, *, whole: bool = False) -> Any:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (whole and not isinstance(
            value, int)):
        raise CareRuleError(f"{where}: `{key}` must be a {'whole ' if whole else ''}number")
    return value


def parse_rules(table: Mapping[str, Any]) -> list[CareRule]:
    rules = table.get("rules")
    if not isinstance(rules, list) or not rules:
        raise CareRuleError("the table has no [[rules]]")
    found, seen = [], set()
    for n, rule in enumerate(rules):
        where = f"rule {n + 1}"
        if not isinstance(rule, Mapping):
            raise CareRuleError(f"{where}: not a table")
        rid = _str(rule, "id", where)
        where = f"rule {rid!r}"
        if rid in seen:
            raise CareRuleError(f"{where}: the id is used twice")
        seen.add(rid)
        kind = _str(rule, "kind", where)
        if kind not in KINDS:
            raise CareRuleError(f"{where}: `kind` must be one of {', '.join(KINDS)}")
        sex = rule.get("sex", "any")
        if sex not in ("any", "female", "male"):
            raise CareRuleError(f"{where}: `sex` must be any, female or male")
        url = _str(rule, "source_url", where)
        if not url.startswith("https://"):
            raise CareRuleError(f"{where}: `source_url` must be an https address")
        timing = [k for k in ("every_months", "doses", "once", "season_start_month") if rule.get(k)]
        if len(timing) != 1:
            raise CareRuleError(f"{where}: give exactly one of every_months, doses, once, season_start_month")
        evidence = []
        for item in rule.get("evidence") or []:
            if not isinstance(item, Mapping) or item.get("resource") not in RESOURCES:
                raise CareRuleError(f"{where}: evidence needs a `resource` of {', '.join(RESOURCES)}")
            item_codes = item.get("codes")
            if not isinstance(item_codes, list) or not item_codes or not all(isinstance(c, str) for c in item_codes):
                raise CareRuleError(f"{where}: evidence needs a list of `codes`")
            evidence.append(Evidence(item["resource"], _str(item, "system", where), frozenset(item_codes),
                                     _number(item, "valid_months", where, whole=True)))
        if not evidence:
            raise CareRuleError(f"{where}: no [[rules.evidence]] says what counts as done")
        conditions = rule.get("conditions") or []
        if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
            raise CareRuleError(f"{where}: `conditions` must be a list of codes")
        found.append(CareRule(
            id=rid, title=_str(rule, "title", where), kind=kind, why=_str(rule, "why", where),
            source_title=_str(rule, "source_title", where), source_url=url, evidence=tuple(evidence), sex=sex,
            min_age=_number(rule, "min_age", where) or 0, max_age=_number(rule, "max_age", where),
            conditions=frozenset(conditions), min_bmi=_number(rule, "min_bmi", where),
            every_months=_number(rule, "every_months", where, whole=True),
            doses=_number(rule, "doses", where, whole=True),
            min_months_between=_number(rule, "min_months_between", where, whole=True) or 0,
            once=rule.get("once") is True,
            season_start_month=_number(rule, "season_start_month", where, whole=True),
            season_end_month=_number(rule, "season_end_month", where, whole=True),
        ))
    return found


def load_rules(text: str | None = None) -> list[CareRule]:
    """The shipped rules (or the TOML `text` given), validated; raises CareRuleError naming the problem."""
    if text is None:
        return list(_shipped())
    try:
        return parse_rules(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise CareRuleError(f"the rules are not valid TOML: {exc}") from exc


@cache
def _shipped() -> tuple[CareRule, ...]:
    text = resources.files("mappers").joinpath("data", "care_due.toml").read_text(encoding="utf-8")
    return tuple(load_rules(text))


# -- the record --------------------------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


_DONE = {"Immunization": ("completed",), "Procedure": ("completed",),
         "Observation": ("final", "amended", "corrected", "preliminary"),
         "DiagnosticReport": ("final", "amended", "corrected", "appended", "preliminary", "partial")}
_WHEN = {"Immunization": ("occurrenceDateTime", "recorded"),
         "Procedure": ("performedDateTime", "performedPeriod"),
         "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
         "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued")}
_CODE_FIELD = {"Immunization": "vaccineCode", "Procedure": "code", "Observation": "code", "DiagnosticReport": "code"}


@dataclass(frozen=True, slots=True)
class RecordIndex:
    """The record read once: the days each (resource type, system, code) was done, and the active problems'
    codes, so that every rule looks its evidence up instead of walking the whole record again."""

    done: Mapping[tuple[str, str, str], tuple[date, ...]]
    problem_codes: frozenset[str]

    @classmethod
    def of(cls, record: Iterable[Mapping[str, Any]]) -> RecordIndex:
        done: dict[tuple[str, str, str], list[date]] = {}
        problems: set[str] = set()
        for resource in record:
            rtype = resource.get("resourceType")
            if rtype == "Condition":
                problems |= _active_problem_codes(resource)
                continue
            if rtype not in _DONE or resource.get("status") not in _DONE[rtype]:
                continue
            when = first_time(resource, *_WHEN[rtype])
            if when is None:
                continue
            concepts = [resource.get(_CODE_FIELD[rtype])]
            if rtype == "Observation":
                concepts += [c.get("code") for c in resource.get("component") or [] if isinstance(c, Mapping)]
            for system, code in codes(concepts):
                done.setdefault((rtype, system, code), []).append(when.day)
        return cls({k: tuple(v) for k, v in done.items()}, frozenset(problems))


def _done_dates(evidence: Evidence, index: RecordIndex) -> list[date]:
    return [day for code in evidence.codes for day in index.done.get((evidence.resource, evidence.system, code), ())]


def _active_problem_codes(resource: Mapping[str, Any]) -> set[str]:
    status = {c for _, c in codes(resource.get("clinicalStatus"))}
    verification = {c for _, c in codes(resource.get("verificationStatus"))}
    if status and not status & {"active", "recurrence", "relapse"}:
        return set()
    if verification & {"refuted", "entered-in-error"}:
        return set()
    return {code for _, code in codes(resource.get("code"))}


def _has_condition(wanted: frozenset[str], index: RecordIndex) -> bool:
    return any(code in wanted or any(code.startswith(w + ".") for w in wanted if "." not in w)
               for code in index.problem_codes)


def _latest_bmi(record: Iterable[Mapping[str, Any]]) -> float | None:
    readings = []
    for resource in record:
        if resource.get("resourceType") == "Observation" and loinc_code(resource.get("code")) == BMI:
            when, value = first_time(resource, *_WHEN["Observation"]), quantity_value(resource.get("valueQuantity"))
            if when is not None and value is not None and resource.get("status") in _DONE["Observation"]:
                readings.append((when.sort_key(), value))
    return max(readings)[1] if readings else None


def _item(rule: CareRule, status: Status, text: str, due: date | None, last: date | None,
          locale: str = ENGLISH) -> DueItem:
    return DueItem(rule.id, gettext_in(locale, rule.title), rule.kind, status, text, due, last,
                   date_words(last, locale=locale) if last else None, gettext_in(locale, rule.why),
                   rule.source_title, rule.source_url)


def _by_date(rule: CareRule, due: date, last: date | None, today: date, locale: str = ENGLISH) -> DueItem | None:
    days = (due - today).days
    if days > DUE_SOON_DAYS:
        return None
    if days < -OVERDUE_AFTER_DAYS:
        text = gettext_in(locale, "Overdue since %(month)s") % {"month": month_year(due, locale)}
        return _item(rule, "overdue", text, due, last, locale)
    if days <= 0:
        return _item(rule, "due", gettext_in(locale, "Due now"), due, last, locale)
    text = gettext_in(locale, "Due by %(day)s") % {"day": date_words(due, locale=locale)}
    return _item(rule, "due-soon", text, due, last, locale)


def _in_season(rule: CareRule, today: date) -> date | None:
    """The first day of the season `today` lies in, or None between seasons."""
    start, end = rule.season_start_month or 1, rule.season_end_month or 12
    year = today.year if today.month >= start else today.year - 1
    begins = date(year, start, 1)
    ends_year = year if end >= start else year + 1
    ends = date(ends_year, end, calendar.monthrange(ends_year, end)[1])
    return begins if begins <= today <= ends else None


def evaluate_rule(rule: CareRule, record: list[Mapping[str, Any]] | RecordIndex, today: date, age: float,
                  sex: str | None, bmi: float | None, locale: str = ENGLISH) -> DueItem | None:
    # `age` is in months/12, so 6 months is 0.5; "40 to 74" includes every day until the 75th birthday.
    if age < rule.min_age or (rule.max_age is not None and int(age) > rule.max_age):
        return None
    if rule.sex != "any" and sex != rule.sex:
        return None
    if rule.min_bmi is not None and (bmi is None or bmi < rule.min_bmi):
        return None
    index = record if isinstance(record, RecordIndex) else RecordIndex.of(record)
    if rule.conditions and not _has_condition(rule.conditions, index):
        return None
    done: list[tuple[date, Evidence]] = [(d, e) for e in rule.evidence for d in _done_dates(e, index)]
    last = max((d for d, _ in done), default=None)
    if rule.season_start_month:
        season = _in_season(rule, today)
        if season is None or (last is not None and last >= season):
            return None
        return _item(rule, "due", gettext_in(locale, "Due this season"), None, last, locale)
    never = gettext_in(locale, "Due now: no record of it")
    if rule.once:
        return None if done else _item(rule, "due", never, None, None, locale)
    if rule.doses:
        days = sorted({d for d, _ in done})
        if len(days) >= rule.doses:
            return None
        if not days:
            return _item(rule, "due", never, None, None, locale)
        due = add_months(days[-1], rule.min_months_between)
        item = _by_date(rule, due, last, today, locale)
        if item is None:
            return None
        text = gettext_in(locale, "Dose %(dose)s of %(doses)s: %(status)s") % {
            "dose": len(days) + 1, "doses": rule.doses,
            "status": item.status_text[0].lower() + item.status_text[1:]}
        return _item(rule, item.status, text, due, last, locale)
    if not done:
        return _item(rule, "due", never, None, None, locale)
    # Each kind of evidence lasts its own time (a colonoscopy 10 years, a stool test 1): the latest expiry wins.
    due = max(add_months(d, e.valid_months or rule.every_months or 0) for d, e in done)
    return _by_date(rule, due, last, today, locale)


_ORDER = {"overdue": 0, "due": 1, "due-soon": 2}


def care_due(patient: Mapping[str, Any], record: Iterable[Any], today: date,
             rules: Iterable[CareRule] | None = None, locale: str = ENGLISH) -> list[DueItem]:
    """Vaccines and screenings due for this patient: overdue first, then due now, then due soon.

    `record` is the patient's Immunizations, Observations, DiagnosticReports, Procedures and Conditions (any
    other resources are ignored). With no usable birth date nothing is due (ages decide every rule)."""
    resources_ = [r for r in record if isinstance(r, Mapping)]
    born = parse_date(patient.get("birthDate")) if isinstance(patient, Mapping) else None
    if born is None or born > today:
        return []
    age = ((today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)) / 12
    sex = patient.get("gender") if isinstance(patient.get("gender"), str) else None
    bmi = _latest_bmi(resources_)
    index = RecordIndex.of(resources_)
    found = [item for rule in (load_rules() if rules is None else rules)
             if (item := evaluate_rule(rule, index, today, age, sex, bmi, locale)) is not None]
    found.sort(key=lambda i: (_ORDER[i.status], i.due_date or today, i.title))
    return found


LOINC_SYSTEM = "http://loinc.org"


def evidence_codes(rules: Iterable[CareRule] | None = None) -> dict[str, list[str]]:
    """`{resource type: ["system|code", ...]}`: every code the rules count as done (and the BMI the rules
    read), so a caller can fetch just those instead of the whole record. Conditions are not listed: the rules
    read the patient's active problems, which a caller fetches whole."""
    found: dict[str, dict[str, None]] = {}
    for rule in load_rules() if rules is None else rules:
        for evidence in rule.evidence:
            for code in sorted(evidence.codes):
                found.setdefault(evidence.resource, {})[f"{evidence.system}|{code}"] = None
    found.setdefault("Observation", {})[f"{LOINC_SYSTEM}|{BMI}"] = None
    return {resource: list(codes_) for resource, codes_ in found.items()}
