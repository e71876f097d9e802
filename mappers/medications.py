"""Prescriptions (MedicationRequest) in words: name, dose, how often, prescriber, refills left, current/past."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any

from .concepts import concept_text
from .dates import date_words
from .instants import FhirTime, parse_date, parse_fhir_time
from .quantities import number_text, quantity_unit
from .references import parse_reference, reference_display, reference_to, resolve

CURRENT_STATUSES = frozenset({"active", "on-hold"})
HIDDEN_STATUSES = frozenset({"entered-in-error", "draft"})
STATUS_WORDS = {
    "active": "Current",
    "on-hold": "On hold",
    "completed": "Finished",
    "stopped": "Stopped",
    "cancelled": "Cancelled",
    "unknown": "Status not known",
}
# Dose units counted in whole things get a plural; measures (mg, mL) do not.
_COUNTABLE = {"tablet", "capsule", "puff", "drop", "spray", "patch", "application", "unit", "lozenge",
              "suppository", "injection", "packet", "scoop", "vial", "pen", "inhaler", "tube", "pill", "dose",
              "teaspoon", "tablespoon"}
_PERIOD_UNITS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month",
                 "a": "year"}
_TIMES = {1: "once", 2: "twice"}
_WHEN = {"MORN": "in the morning", "AFT": "in the afternoon", "EVE": "in the evening", "NIGHT": "at night",
         "HS": "at bedtime", "WAKE": "after waking up", "C": "with a meal", "CM": "with breakfast",
         "CD": "with lunch", "CV": "with dinner", "AC": "before meals", "ACM": "before breakfast",
         "ACD": "before lunch", "ACV": "before dinner", "PC": "after meals", "PCM": "after breakfast",
         "PCD": "after lunch", "PCV": "after dinner"}
_TIMING_CODES = {"QD": "once a day", "BID": "twice a day", "TID": "3 times a day", "QID": "4 times a day",
                 "QOD": "every other day", "AM": "every morning", "PM": "every evening", "Q4H": "every 4 hours",
                 "Q6H": "every 6 hours", "Q8H": "every 8 hours", "QWK": "once a week"}


@dataclass(frozen=True, slots=True)
class Medication:
    reference: str | None
    name: str
    dose_text: str | None  # "1 tablet twice a day"
    instructions: str | None  # the prescriber's own words (dosageInstruction.text)
    route: str | None
    prescriber: str | None
    reason: str | None
    written: FhirTime | None
    written_text: str | None
    status: str | None
    status_text: str
    status_reason: str | None
    is_current: bool
    refills_allowed: int | None
    refills_left: int | None
    refills_known: bool  # refills_left counts dispenses we were given, not just what was allowed
    refills_text: str | None
    supply_text: str | None  # "30 tablets, about 30 days"
    # When the medicine runs out: the last fill plus its days of supply when fills are known, else the end of
    # every fill the prescription allows (first fill plus refills). None without a days-of-supply.
    runs_out: date | None = None


def refill_due(med: Medication, today: date, within_days: int = 14) -> bool:
    """A current medicine whose last fill runs out within `within_days` (or already has)."""
    return med.is_current and med.runs_out is not None and (med.runs_out - today).days <= within_days


def _plural(unit: str, amount: float | int | None) -> str:
    if amount is not None and amount != 1 and unit.casefold() in _COUNTABLE:
        return unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")
    return unit


def _amount(quantity: Any) -> str | None:
    if not isinstance(quantity, Mapping):
        return None
    number = number_text(quantity.get("value"))
    if number is None:
        return None
    unit = quantity.get("unit") if isinstance(quantity.get("unit"), str) else quantity_unit(quantity)
    return f"{number} {_plural(unit, quantity.get('value'))}" if unit else number


def dose_text(dose_and_rate: Any) -> str | None:
    """`1 tablet`, `2 puffs`, `1 to 2 tablets` from Dosage.doseAndRate."""
    for item in dose_and_rate if isinstance(dose_and_rate, list) else []:
        if not isinstance(item, Mapping):
            continue
        if (amount := _amount(item.get("doseQuantity"))) is not None:
            return amount
        dose_range = item.get("doseRange")
        if isinstance(dose_range, Mapping):
            low, high = dose_range.get("low") or {}, dose_range.get("high") or {}
            low_n, high = number_text(low.get("value")), _amount(high)
            if low_n and high:
                return f"{low_n} to {high}"
    return None


def _every(period: Any, unit: str, period_max: Any = None) -> str:
    span = number_text(period) or "1"
    top = number_text(period_max)
    if top:
        return f"every {span} to {top} {unit}s"
    return f"every {unit}" if span == "1" else f"every {span} {unit}s"


def timing_text(timing: Any) -> str | None:
    """`twice a day`, `every 4 to 6 hours`, `once a week`, `at bedtime`, `for 10 days` from a Timing."""
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat") if isinstance(timing.get("repeat"), Mapping) else {}
    parts: list[str] = []
    frequency, period = repeat.get("frequency"), repeat.get("period")
    unit = _PERIOD_UNITS.get(str(repeat.get("periodUnit") or ""))
    if unit and isinstance(period, (int, float)):
        if isinstance(frequency, int) and frequency >= 1 and (period == 1 or frequency > 1):
            times = _TIMES.get(frequency, f"{frequency} times")
            parts.append(f"{times} a {unit}" if period == 1 else f"{times} {_every(period, unit)}")
        else:
            parts.append(_every(period, unit, repeat.get("periodMax")))
    whens = [_WHEN[w] for w in repeat.get("when") or [] if w in _WHEN]
    parts.extend(whens[:2])
    times_of_day = [t[:5] for t in repeat.get("timeOfDay") or [] if isinstance(t, str)]
    if times_of_day:
        parts.append("at " + " and ".join(times_of_day))
    bounds = repeat.get("boundsDuration")
    if isinstance(bounds, Mapping) and number_text(bounds.get("value")):
        bound_unit = _PERIOD_UNITS.get(str(bounds.get("code") or bounds.get("unit") or "").rstrip("s"), None) or \
            str(bounds.get("unit") or "days").rstrip("s")
        value = bounds["value"]
        parts.append(f"for {number_text(value)} {bound_unit}{'' if value == 1 else 's'}")
    if not parts:
        code = timing.get("code")
        code_value = next((c.get("code") for c in (code or {}).get("coding") or [] if isinstance(c, Mapping)),
                          None) if isinstance(code, Mapping) else None
        if code_value in _TIMING_CODES:
            return _TIMING_CODES[code_value]
        return concept_text(code)
    return " ".join(parts)


def _as_needed(dosage: Mapping[str, Any]) -> str | None:
    if "asNeededCodeableConcept" in dosage:
        reason = concept_text(dosage["asNeededCodeableConcept"])
        return f"when needed for {reason.lower()}" if reason else "when needed"
    if dosage.get("asNeededBoolean") is True:
        return "when needed"
    return None


def dosage_text(dosage: Any) -> str | None:
    """One Dosage in words from its structure (`1 tablet twice a day`), else its `patientInstruction` or
    `text`."""
    if not isinstance(dosage, Mapping):
        return None
    parts = [p for p in (dose_text(dosage.get("doseAndRate")), timing_text(dosage.get("timing")),
                         _as_needed(dosage)) if p]
    if parts and (dose_text(dosage.get("doseAndRate")) or timing_text(dosage.get("timing"))):
        return " ".join(parts)
    for key in ("patientInstruction", "text"):
        if isinstance(dosage.get(key), str) and dosage[key].strip():
            return dosage[key].strip()
    return " ".join(parts) or None


def _name(request: Mapping[str, Any], resources: Mapping[str, Any] | None) -> str:
    if "medicationCodeableConcept" in request:
        found = concept_text(request["medicationCodeableConcept"])
        if found:
            return found
    medication = request.get("medicationReference")
    if isinstance(medication, Mapping):
        if isinstance(medication.get("display"), str) and medication["display"].strip():
            return medication["display"].strip()
        found = concept_text((resolve(medication, resources) or {}).get("code"))
        if found:
            return found
    return "A medicine"


def dispensed_for(request: Any, dispenses: Iterable[Any]) -> list[dict[str, Any]]:
    """The completed MedicationDispenses that fill this prescription."""
    ref = reference_to(request)
    found = []
    for dispense in dispenses:
        if not isinstance(dispense, dict) or dispense.get("status") != "completed":
            continue
        prescriptions = dispense.get("authorizingPrescription") or []
        if any((r := parse_reference(p)) and r.text == ref for p in prescriptions):
            found.append(dispense)
    return found


def _refills(request: Mapping[str, Any], dispenses: Iterable[Any] | None) -> tuple[int | None, int | None, bool]:
    dispense_request = request.get("dispenseRequest") if isinstance(request.get("dispenseRequest"), Mapping) else {}
    allowed = dispense_request.get("numberOfRepeatsAllowed")
    if isinstance(allowed, bool) or not isinstance(allowed, int) or allowed < 0:
        return None, None, False
    if dispenses is None:
        return allowed, allowed, False
    fills = len(dispensed_for(request, dispenses))
    used = max(0, fills - 1)  # the first fill is not a refill
    return allowed, max(0, allowed - used), True


def _refills_text(allowed: int | None, left: int | None, known: bool, current: bool) -> str | None:
    if allowed is None or left is None or not current:
        return None
    if left == 0:
        return "No refills left" if known else "No refills"
    noun = "refill" if left == 1 else "refills"
    return f"{left} {noun} left" if known else f"{left} {noun}"


def _supply(dispense_request: Any) -> str | None:
    if not isinstance(dispense_request, Mapping):
        return None
    amount = _amount(dispense_request.get("quantity"))
    duration = dispense_request.get("expectedSupplyDuration")
    days = number_text((duration or {}).get("value")) if isinstance(duration, Mapping) else None
    if amount and days:
        return f"{amount}, about {days} days"
    return amount or (f"about {days} days" if days else None)


def _runs_out(request: Mapping[str, Any], dispenses: list[dict[str, Any]] | None) -> date | None:
    dispense_request = request.get("dispenseRequest") if isinstance(request.get("dispenseRequest"), Mapping) else {}
    duration = dispense_request.get("expectedSupplyDuration")
    days = duration.get("value") if isinstance(duration, Mapping) else None
    if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
        return None
    fills = [d for d in (parse_date(x.get("whenHandedOver")) for x in dispensed_for(request, dispenses or [])) if d]
    if fills:
        return max(fills) + timedelta(days=int(days))
    period = dispense_request.get("validityPeriod") if isinstance(dispense_request.get("validityPeriod"),
                                                                  Mapping) else {}
    start = parse_date(period.get("start")) or parse_date(request.get("authoredOn"))
    repeats = dispense_request.get("numberOfRepeatsAllowed")
    repeats = repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else 0
    return start + timedelta(days=int(days) * (1 + repeats)) if start else None


def medication(request: Any, *, dispenses: Iterable[Any] | None = None, resources: Mapping[str, Any] | None = None,
               tz: tzinfo | None = None) -> Medication:
    """One MedicationRequest in words. `dispenses` (MedicationDispense resources), when given, turn the
    refills allowed into refills left; `resources` resolves a medicationReference without a display."""
    resource: Mapping[str, Any] = request if isinstance(request, Mapping) else {}
    dosages = [d for d in resource.get("dosageInstruction") or [] if isinstance(d, Mapping)]
    dosages.sort(key=lambda d: d.get("sequence") if isinstance(d.get("sequence"), int) else 0)
    words = [w for w in (dosage_text(d) for d in dosages) if w]
    instructions = [d["text"].strip() for d in dosages if isinstance(d.get("text"), str) and d["text"].strip()]
    status = resource.get("status") if isinstance(resource.get("status"), str) else None
    current = status in CURRENT_STATUSES
    dispensed = list(dispenses) if dispenses is not None else None
    allowed, left, known = _refills(resource, dispensed)
    written = parse_fhir_time(resource.get("authoredOn"))
    reasons = [reference_display(r, resources) for r in resource.get("reasonReference") or []]
    reasons += [concept_text(c) for c in resource.get("reasonCode") or []]
    return Medication(
        reference=reference_to(resource),
        name=_name(resource, resources),
        dose_text="; then ".join(words) or None,
        instructions=" ".join(instructions) or None,
        route=next((r for d in dosages if (r := concept_text(d.get("route")))), None),
        prescriber=reference_display(resource.get("requester"), resources),
        reason=", ".join(r for r in reasons if r) or None,
        written=written,
        written_text=date_words(written, tz) if written else None,
        status=status,
        status_text=STATUS_WORDS.get(status or "", "Status not known"),
        status_reason=concept_text(resource.get("statusReason")),
        is_current=current,
        refills_allowed=allowed,
        refills_left=left,
        refills_known=known,
        refills_text=_refills_text(allowed, left, known, current),
        supply_text=_supply(resource.get("dispenseRequest")),
        runs_out=_runs_out(resource, dispensed),
    )


def medication_list(requests: Iterable[Any], *, dispenses: Iterable[Any] | None = None,
                    resources: Mapping[str, Any] | None = None,
                    tz: tzinfo | None = None) -> tuple[list[Medication], list[Medication]]:
    """(current, past) medicines, each newest first; plans, proposals and entries in error are left out.

    An older prescription of a medicine that is current again is not repeated among the past ones."""
    dispensed = list(dispenses) if dispenses is not None else None
    shown = [medication(r, dispenses=dispensed, resources=resources, tz=tz) for r in requests
             if isinstance(r, Mapping) and r.get("status") not in HIDDEN_STATUSES
             and r.get("intent", "order") in ("order", "original-order", "reflex-order", "filler-order",
                                              "instance-order")]
    shown.sort(key=lambda m: m.written.sort_key().timestamp() if m.written else 0.0, reverse=True)
    current = [m for m in shown if m.is_current]
    current_names = {m.name.casefold() for m in current}
    past, seen = [], set()
    for m in shown:
        key = m.name.casefold()
        if m.is_current or key in current_names or key in seen:
            continue
        seen.add(key)
        past.append(m)
    return current, past
