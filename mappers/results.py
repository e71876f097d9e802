"""Test results for the patient's results page: one readable row per Observation, lab panels from
DiagnosticReports, loose results grouped by kind and day, and numeric series per LOINC code for trends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import concept_text, concept_texts, has_code, loinc_code
from .dates import date_words, unknown_date
from .documents import document_text
from .flags import Flag, flag_in, observation_flag
from .instants import FhirTime, first_time, parse_fhir_time
from .quantities import number_text, quantity_text, quantity_unit, quantity_value, same_unit, with_unit
from .ranges import observation_range
from .references import parse_reference, reference_display, reference_to

HIDDEN_STATUSES = frozenset({"entered-in-error", "cancelled"})
STATUS_WORDS = {
    "registered": N_("Waiting for results"),
    "partial": N_("Some results are not ready yet"),
    "preliminary": N_("Preliminary result"),
    "amended": N_("Changed after it was first reported"),
    "corrected": N_("Corrected"),
    "appended": N_("More was added after it was first reported"),
    "unknown": None,
    "final": None,
}
TEST_RESULT, TEST_REPORT, OTHER_RESULTS = N_("Test result"), N_("Test report"), N_("Other results")
DIAGNOSTIC_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"
IMAGING_CATEGORIES = ("RAD", "CT", "MR", "US", "NMR", "NMS", "XRC", "CUS", "RX", "VUS", "OUS", "IMG")
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    author: str | None
    date_text: str | None


@dataclass(frozen=True, slots=True)
class ResultRow:
    reference: str | None
    name: str
    loinc: str | None
    value_text: str
    value: float | None
    number_text: str | None  # the value as written, without its unit ("5.4")
    unit: str | None
    flag: Flag | None
    range_text: str | None
    range_low: float | None
    range_high: float | None
    effective: FhirTime | None
    date_text: str
    status_text: str | None
    category: str | None
    notes: tuple[Note, ...] = ()
    components: tuple[ResultRow, ...] = ()


@dataclass(frozen=True, slots=True)
class Panel:
    """A DiagnosticReport with its results: a lab panel, or an imaging report with its text."""

    reference: str | None
    name: str
    loinc: str | None
    is_imaging: bool
    effective: FhirTime | None
    date_text: str
    issued_text: str | None
    status_text: str | None
    conclusion: str | None
    interpreter: str | None
    performer: str | None
    report_text: str | None
    rows: tuple[ResultRow, ...]

    @property
    def flagged(self) -> tuple[ResultRow, ...]:
        return tuple(r for r in self.rows if r.flag is not None and not r.flag.is_normal)


@dataclass(frozen=True, slots=True)
class ResultGroup:
    """Results not in any report, of one kind (`Vital Signs`, `Laboratory`) on one day."""

    category: str
    day: date | None
    date_text: str
    rows: tuple[ResultRow, ...]


@dataclass(frozen=True, slots=True)
class Point:
    effective: FhirTime
    value: float
    number_text: str  # "5.4"
    value_text: str  # "5.4 mmol/L"
    flag: Flag | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class Series:
    """One analyte's numeric values over time, oldest first, in one unit."""

    loinc: str
    name: str
    unit: str | None
    points: tuple[Point, ...]
    range_low: float | None = None
    range_high: float | None = None
    range_text: str | None = None
    skipped: int = 0  # values left out because they were in another unit


def _visible(resource: Any) -> bool:
    return isinstance(resource, Mapping) and resource.get("status") not in HIDDEN_STATUSES


def _status(status: Any, locale: str) -> str | None:
    words = STATUS_WORDS.get(status) if isinstance(status, str) else None
    return gettext_in(locale, words) if words else None


def _notes(resource: Mapping[str, Any], tz: tzinfo | None, locale: str = ENGLISH) -> tuple[Note, ...]:
    found = []
    for note in resource.get("note") or []:
        if not isinstance(note, Mapping) or not isinstance(note.get("text"), str) or not note["text"].strip():
            continue
        author = note.get("authorString") if isinstance(note.get("authorString"), str) else \
            reference_display(note.get("authorReference"))
        when = parse_fhir_time(note.get("time"))
        found.append(Note(note["text"].strip(), author, date_words(when, tz, locale) if when else None))
    return tuple(found)


def value_text(resource: Any, locale: str = ENGLISH) -> str | None:
    """The value of an Observation or component in words (any value[x] type), in `locale`; None when there is
    none."""
    if not isinstance(resource, Mapping):
        return None
    if "valueQuantity" in resource:
        return quantity_text(resource["valueQuantity"], locale)
    for key in ("valueString", "valueTime", "valueDateTime"):
        if isinstance(resource.get(key), str) and resource[key].strip():
            return date_words(resource[key], None, locale) if key == "valueDateTime" else resource[key].strip()
    if "valueCodeableConcept" in resource:
        return concept_text(resource["valueCodeableConcept"])
    if isinstance(resource.get("valueBoolean"), bool):
        return gettext_in(locale, "Yes") if resource["valueBoolean"] else gettext_in(locale, "No")
    if "valueInteger" in resource:
        return number_text(resource["valueInteger"], locale)
    if isinstance(resource.get("valueRange"), Mapping):
        low = quantity_text(resource["valueRange"].get("low"), locale)
        high = quantity_text(resource["valueRange"].get("high"), locale)
        return gettext_in(locale, "%(low)s to %(high)s") % {"low": low, "high": high} if low and high else low or high
    if isinstance(resource.get("valueRatio"), Mapping):
        top = number_text((resource["valueRatio"].get("numerator") or {}).get("value"), locale)
        bottom = number_text((resource["valueRatio"].get("denominator") or {}).get("value"), locale)
        return f"{top}:{bottom}" if top and bottom else None
    if isinstance(resource.get("valuePeriod"), Mapping):
        start = parse_fhir_time(resource["valuePeriod"].get("start"))
        return gettext_in(locale, "from %(day)s") % {"day": date_words(start, None, locale)} if start else None
    return None


def _blood_pressure(components: tuple[ResultRow, ...], locale: str = ENGLISH) -> str | None:
    by_code = {c.loinc: c for c in components}
    top, bottom = by_code.get(SYSTOLIC), by_code.get(DIASTOLIC)
    if top is None or bottom is None or top.value is None or bottom.value is None:
        return None
    unit = top.unit or bottom.unit
    return with_unit(f"{number_text(_whole(top.value), locale)}/{number_text(_whole(bottom.value), locale)}", unit)


def _whole(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def _name(code: Any, names: Mapping[str, str] | None, fallback: str) -> str:
    loinc = loinc_code(code)
    if names and loinc and names.get(loinc):
        return names[loinc]
    return concept_text(code, fallback) or fallback


def result_row(observation: Any, tz: tzinfo | None = None, names: Mapping[str, str] | None = None, *,
               locale: str = ENGLISH, _parent: Mapping[str, Any] | None = None) -> ResultRow:
    """One Observation (or component) as a row: name, value, unit, flag, range, date, notes, in `locale`.

    `names` (`{loinc: plain name}`, e.g. `explanations.plain_names(...)`) replaces the lab's own wording.
    """
    resource: Mapping[str, Any] = observation if isinstance(observation, Mapping) else {}
    timed = _parent if _parent is not None else resource
    effective = first_time(timed, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
    components = tuple(result_row(c, tz, names, locale=locale, _parent=timed) for c in resource.get("component")
                       or [] if isinstance(c, Mapping)) if _parent is None else ()
    reference_range = observation_range(resource, locale)
    absent = concept_text(resource.get("dataAbsentReason"))
    text = value_text(resource, locale) or _blood_pressure(components, locale)
    if text is None:
        text = gettext_in(locale, "No result: %(why)s") % {"why": absent.lower()} if absent else \
            gettext_in(locale, "No result")
    status = resource.get("status") if _parent is None else None
    return ResultRow(
        reference=reference_to(resource) if _parent is None else None,
        name=_name(resource.get("code"), names, gettext_in(locale, TEST_RESULT)),
        loinc=loinc_code(resource.get("code")),
        value_text=text,
        value=quantity_value(resource.get("valueQuantity")),
        number_text=number_text((resource.get("valueQuantity") or {}).get("value"), locale)
        if isinstance(resource.get("valueQuantity"), Mapping) else None,
        unit=quantity_unit(resource.get("valueQuantity"), locale),
        flag=flag_in(observation_flag(resource), locale),
        range_text=reference_range.words if reference_range else None,
        range_low=reference_range.low if reference_range else None,
        range_high=reference_range.high if reference_range else None,
        effective=effective,
        date_text=date_words(effective, tz, locale) if effective else unknown_date(locale),
        status_text=_status(status, locale),
        category=concept_text(resource.get("category")) if _parent is None else None,
        notes=_notes(resource, tz, locale),
        components=components,
    )


def _is_imaging(report: Mapping[str, Any]) -> bool:
    return has_code(report.get("category"), DIAGNOSTIC_CATEGORY, *IMAGING_CATEGORIES) or any(
        (t or "").casefold() in ("imaging", "radiology") for t in concept_texts(report.get("category")))


def report_panel(report: Any, observations: Mapping[str, Any] | None = None, tz: tzinfo | None = None,
                 names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> Panel:
    """A DiagnosticReport with its result Observations (looked up by `Type/id` in `observations`), in the
    report's order; results that are missing or entered in error are left out."""
    resource: Mapping[str, Any] = report if isinstance(report, Mapping) else {}
    rows = []
    for item in resource.get("result") or []:
        ref = parse_reference(item)
        found = (observations or {}).get(ref.text) if ref else None
        if _visible(found):
            rows.append(result_row(found, tz, names, locale=locale))
    effective = first_time(resource, "effectiveDateTime", "effectivePeriod", "issued")
    issued = parse_fhir_time(resource.get("issued"))
    conclusion = resource.get("conclusion") if isinstance(resource.get("conclusion"), str) else None
    status = resource.get("status")
    interpreters = [d for d in (reference_display(r) for r in resource.get("resultsInterpreter") or []) if d]
    performers = [d for d in (reference_display(r) for r in resource.get("performer") or []) if d]
    return Panel(
        reference=reference_to(resource),
        name=_name(resource.get("code"), names, gettext_in(locale, TEST_REPORT)),
        loinc=loinc_code(resource.get("code")),
        is_imaging=_is_imaging(resource),
        effective=effective,
        date_text=date_words(effective, tz, locale) if effective else unknown_date(locale),
        issued_text=date_words(issued, tz, locale) if issued else None,
        status_text=_status(status, locale),
        conclusion=(conclusion or "").strip() or concept_text(resource.get("conclusionCode")),
        interpreter=", ".join(interpreters) or None,
        performer=", ".join(performers) or None,
        report_text=document_text({**resource, "resourceType": "DiagnosticReport"}) if resource.get(
            "presentedForm") else None,
        rows=tuple(rows),
    )


def _newest_first(key: FhirTime | None) -> tuple[int, float]:
    return (0, -key.sort_key().timestamp()) if key else (1, 0.0)


@dataclass(frozen=True, slots=True)
class ResultsPage:
    panels: tuple[Panel, ...]
    groups: tuple[ResultGroup, ...] = field(default=())


def results_page(reports: Iterable[Any], observations: Iterable[Any], tz: tzinfo | None = None,
                 names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> ResultsPage:
    """Reports as panels (newest first) and the Observations no report lists, grouped by category and day
    (newest first)."""
    reports, observations = list(reports), list(observations)
    by_ref = {ref: o for o in observations if _visible(o) and (ref := reference_to(o))}
    panels = [report_panel(r, by_ref, tz, names, locale) for r in reports if _visible(r)]
    panels.sort(key=lambda p: _newest_first(p.effective))
    listed = {ref.text for r in reports if isinstance(r, Mapping) for item in r.get("result") or []
              if (ref := parse_reference(item))}
    buckets: dict[tuple[str, date | None], list[ResultRow]] = defaultdict(list)
    for ref, observation in by_ref.items():
        if ref in listed:
            continue
        row = result_row(observation, tz, names, locale=locale)
        day = row.effective.local_day(tz) if row.effective else None
        buckets[(row.category or gettext_in(locale, OTHER_RESULTS), day)].append(row)
    groups = [ResultGroup(category, day, date_words(day, None, locale) if day else unknown_date(locale),
                          tuple(sorted(rows, key=lambda r: r.name)))
              for (category, day), rows in buckets.items()]
    groups.sort(key=lambda g: (g.day is None, -(g.day.toordinal() if g.day else 0), g.category))
    return ResultsPage(tuple(panels), tuple(groups))


def numeric_series(observations: Iterable[Any], min_points: int = 1,
                   names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> list[Series]:
    """Numeric values per LOINC code (components such as systolic/diastolic pressure as their own series),
    oldest first, in the unit of the newest value; values in another unit are counted as skipped."""
    collected: dict[str, list[tuple[ResultRow, Mapping[str, Any], str | None]]] = defaultdict(list)
    for observation in observations:
        if not _visible(observation):
            continue
        row = result_row(observation, None, names, locale=locale)
        sources = [c for c in observation.get("component") or [] if isinstance(c, Mapping)]
        for item, source in [(row, observation), *zip(row.components, sources, strict=False)]:
            if item.loinc and item.value is not None and item.effective is not None:
                collected[item.loinc].append((item, source, row.reference))
    found = []
    for code, items in collected.items():
        items.sort(key=lambda pair: pair[0].effective.sort_key())  # type: ignore[union-attr]
        newest_row, newest_source, _ = items[-1]
        unit_of = newest_source.get("valueQuantity") or {}
        kept = [(r, ref) for r, s, ref in items if same_unit(s.get("valueQuantity"), unit_of)]
        if len(kept) < min_points:
            continue
        with_range = next((r for r, _ in reversed(kept) if r.range_low is not None or r.range_high is not None), None)
        found.append(Series(
            loinc=code, name=newest_row.name, unit=newest_row.unit,
            points=tuple(Point(r.effective, r.value, r.number_text or "", r.value_text, r.flag, ref)  # type: ignore[arg-type]
                         for r, ref in kept),
            range_low=with_range.range_low if with_range else None,
            range_high=with_range.range_high if with_range else None,
            range_text=with_range.range_text if with_range else None,
            skipped=len(items) - len(kept),
        ))
    found.sort(key=lambda s: s.name.casefold())
    return found


def trends(observations: Iterable[Any], names: Mapping[str, str] | None = None,
           locale: str = ENGLISH) -> list[Series]:
    """The series worth a chart: every numeric analyte with two or more values."""
    return numeric_series(observations, min_points=2, names=names, locale=locale)


def result_codes(page: ResultsPage) -> list[str]:
    """The LOINC codes of every test on the page (panels, their results and components, loose results),
    in the order a person meets them, each once: what the page can explain."""
    found: dict[str, None] = {}

    def add(rows: Iterable[ResultRow]) -> None:
        for row in rows:
            if row.loinc:
                found.setdefault(row.loinc, None)
            add(row.components)

    for panel in page.panels:
        if panel.loinc:
            found.setdefault(panel.loinc, None)
        add(panel.rows)
    for group in page.groups:
        add(group.rows)
    return list(found)
