"""Prescriptions (MedicationRequest) in words: name, dose, how often, prescriber, refills left, current/past."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.lists import format_list

from locales import ENGLISH, N_, gettext_in, ngettext_in

from .concepts import concept_text
from .dates import date_words
from .instants import FhirTime, parse_date, parse_fhir_time
from .quantities import number_text, quantity_unit
from .references import parse_reference, reference_display, reference_to, resolve

CURRENT_STATUSES = frozenset({"active", "on-hold"})
HIDDEN_STATUSES = frozenset({"entered-in-error", "draft"})
STATUS_WORDS = {
    "active": N_("Current"),
    "on-hold": N_("On hold"),
    "completed": N_("Finished"),
    "stopped": N_("Stopped"),
    "cancelled": N_("Cancelled"),
    "unknown": N_("Status not known"),
}
STATUS_NOT_KNOWN = N_("Status not known")
A_MEDICINE = N_("A medicine")
# Dose units counted in whole things: (one, more than one), each translated; measures (mg, mL) stay as written.
_COUNTABLE = {
    "tablet": (N_("tablet"), N_("tablets")), "capsule": (N_("capsule"), N_("capsules")),
    "puff": (N_("puff"), N_("puffs")), "drop": (N_("drop"), N_("drops")), "spray": (N_("spray"), N_("sprays")),
    "patch": (N_("patch"), N_("patches")), "application": (N_("application"), N_("applications")),
    "unit": (N_("unit"), N_("units")), "lozenge": (N_("lozenge"), N_("lozenges")),
    "suppository": (N_("suppository"), N_("suppositories")), "injection": (N_("injection"), N_("injections")),
    "packet": (N_("packet"), N_("packets")), "scoop": (N_("scoop"), N_("scoops")), "vial": (N_("vial"), N_("vials")),
    "pen": (N_("pen"), N_("pens")), "inhaler": (N_("inhaler"), N_("inhalers")), "tube": (N_("tube"), N_("tubes")),
    "pill": (N_("pill"), N_("pills")), "dose": (N_("dose"), N_("doses")),
    "teaspoon": (N_("teaspoon"), N_("teaspoons")), "tablespoon": (N_("tablespoon"), N_("tablespoons")),
}
# A Timing's period unit: its name (one, more than one) and "a day" as in "twice a day".
_PERIOD_UNITS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month",
                 "a": "year"}
_UNIT_NAMES = {"second": (N_("second"), N_("seconds")), "minute": (N_("minute"), N_("minutes")),
               "hour": (N_("hour"), N_("hours")), "day": (N_("day"), N_("days")), "week": (N_("week"), N_("weeks")),
               "month": (N_("month"), N_("months")), "year": (N_("year"), N_("years"))}
_PER_UNIT = {"second": N_("a second"), "minute": N_("a minute"), "hour": N_("an hour"), "day": N_("a day"),
             "week": N_("a week"), "month": N_("a month"), "year": N_("a year")}
_TIMES = {1: N_("once"), 2: N_("twice")}
_WHEN = {"MORN": N_("in the morning"), "AFT": N_("in the afternoon"), "EVE": N_("in the evening"),
         "NIGHT": N_("at night"), "HS": N_("at bedtime"), "WAKE": N_("after waking up"), "C": N_("with a meal"),
         "CM": N_("with breakfast"), "CD": N_("with lunch"), "CV": N_("with dinner"), "AC": N_("before meals"),
         "ACM": N_("before breakfast"), "ACD": N_("before lunch"), "ACV": N_("before dinner"),
         "PC": N_("after meals"), "PCM": N_("after breakfast"), "PCD": N_("after lunch"),
         "PCV": N_("after dinner")}
_TIMING_CODES = {"QD": N_("once a day"), "BID": N_("twice a day"), "TID": N_("3 times a day"),
                 "QID": N_("4 times a day"), "QOD": N_("every other day"), "AM": N_("every morning"),
                 "PM": N_("every evening"), "Q4H": N_("every 4 hours"), "Q6H": N_("every 6 hours"),
                 "Q8H": N_("every 8 hours"), "QWK": N_("once a week")}


def _number_form(pair: tuple[str, str], amount: float | int | None, locale: str) -> str:
    """The one or the more-than-one form, in `locale` (English and Spanish both use the first form for 1)."""
    return gettext_in(locale, pair[0] if amount == 1 else pair[1])


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


def _unit(unit: str, amount: float | int | None, locale: str) -> str:
    """A dose unit as written, counted in `locale` when it is one of ours (`2 tablets`, `2 tabletas`)."""
    pair = _COUNTABLE.get(unit.casefold())
    if pair is None:
        return unit
    if _english(locale):  # English keeps the record's own spelling, with a plural added
        if amount is not None and amount != 1:
            return unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")
        return unit
    return _number_form(pair, amount, locale)


def _english(locale: str) -> bool:
    return locale.replace("-", "_").split("_")[0].lower() == ENGLISH


def _amount(quantity: Any, locale: str = ENGLISH) -> str | None:
    if not isinstance(quantity, Mapping):
        return None
    number = number_text(quantity.get("value"), locale)
    if number is None:
        return None
    unit = quantity.get("unit") if isinstance(quantity.get("unit"), str) else quantity_unit(quantity)
    return f"{number} {_unit(unit, quantity.get('value'), locale)}" if unit else number


def dose_text(dose_and_rate: Any, locale: str = ENGLISH) -> str | None:
    """`1 tablet`, `2 puffs`, `1 to 2 tablets` from Dosage.doseAndRate."""
    for item in dose_and_rate if isinstance(dose_and_rate, list) else []:
        if not isinstance(item, Mapping):
            continue
        if (amount := _amount(item.get("doseQuantity"), locale)) is not None:
            return amount
        dose_range = item.get("doseRange")
        if isinstance(dose_range, Mapping):
            low, high = dose_range.get("low") or {}, dose_range.get("high") or {}
            low_n, high = number_text(low.get("value"), locale), _amount(high, locale)
            if low_n and high:
                return gettext_in(locale, "%(low)s to %(high)s") % {"low": low_n, "high": high}
    return None


def _every(period: Any, unit: str, period_max: Any, locale: str) -> str:
    span = number_text(period, locale) or "1"
    top = number_text(period_max, locale)
    names = _UNIT_NAMES[unit]
    if top:
        return gettext_in(locale, "every %(low)s to %(high)s %(units)s") % {
            "low": span, "high": top, "units": gettext_in(locale, names[1])}
    if span == "1":
        return gettext_in(locale, "every %(unit)s") % {"unit": gettext_in(locale, names[0])}
    return gettext_in(locale, "every %(n)s %(units)s") % {"n": span, "units": gettext_in(locale, names[1])}


def _times(frequency: int, locale: str) -> str:
    if frequency in _TIMES:
        return gettext_in(locale, _TIMES[frequency])
    return gettext_in(locale, "%(n)s times") % {"n": number_text(frequency, locale)}


def _clock_times(times: list[str], locale: str) -> str:
    if _english(locale):
        return "at " + " and ".join(times)
    return gettext_in(locale, "at %(times)s") % {"times": format_list(times, locale=_cldr(locale))}


def _cldr(locale: str) -> str:
    try:
        return str(Locale.parse(locale.replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return ENGLISH


def timing_text(timing: Any, locale: str = ENGLISH) -> str | None:
    """`twice a day`, `every 4 to 6 hours`, `once a week`, `at bedtime`, `for 10 days` from a Timing."""
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat") if isinstance(timing.get("repeat"), Mapping) else {}
    parts: list[str] = []
    frequency, period = repeat.get("frequency"), repeat.get("period")
    unit = _PERIOD_UNITS.get(str(repeat.get("periodUnit") or ""))
    if unit and isinstance(period, (int, float)):
        if isinstance(frequency, int) and frequency >= 1 and (period == 1 or frequency > 1):
            times = _times(frequency, locale)
            parts.append(f"{times} {gettext_in(locale, _PER_UNIT[unit])}" if period == 1 else
                         f"{times} {_every(period, unit, None, locale)}")
        else:
            parts.append(_every(period, unit, repeat.get("periodMax"), locale))
    whens = [gettext_in(locale, _WHEN[w]) for w in repeat.get("when") or [] if w in _WHEN]
    parts.extend(whens[:2])
    times_of_day = [t[:5] for t in repeat.get("timeOfDay") or [] if isinstance(t, str)]
    if times_of_day:
        parts.append(_clock_times(times_of_day, locale))
    bounds = repeat.get("boundsDuration")
    if isinstance(bounds, Mapping) and number_text(bounds.get("value")):
        value = bounds["value"]
        known = _PERIOD_UNITS.get(str(bounds.get("code") or bounds.get("unit") or "").rstrip("s"), None)
        if known is None and str(bounds.get("unit") or "days").rstrip("s") in _UNIT_NAMES:
            known = str(bounds.get("unit") or "days").rstrip("s")
        if known is not None:
            units = _number_form(_UNIT_NAMES[known], value, locale)
        else:  # a unit of the record's own: as written
            units = str(bounds.get("unit")).rstrip("s") + ("" if value == 1 else "s")
        parts.append(gettext_in(locale, "for %(n)s %(units)s") % {"n": number_text(value, locale), "units": units})
    if not parts:
        code = timing.get("code")
        code_value = next((c.get("code") for c in (code or {}).get("coding") or [] if isinstance(c, Mapping)),
                          None) if isinstance(code, Mapping) else None
        if code_value in _TIMING_CODES:
            return gettext_in(locale, _TIMING_CODES[code_value])
        return concept_text(code)
    return " ".join(parts)


def _as_needed(dosage: Mapping[str, Any], locale: str) -> str | None:
    if "asNeededCodeableConcept" in dosage:
        reason = concept_text(dosage["asNeededCodeableConcept"])
        if reason:
            return gettext_in(locale, "when needed for %(reason)s") % {"reason": reason.lower()}
        return gettext_in(locale, "when needed")
    if dosage.get("asNeededBoolean") is True:
        return gettext_in(locale, "when needed")
    return None


def dosage_text(dosage: Any, locale: str = ENGLISH) -> str | None:
    """One Dosage in words from its structure (`1 tablet twice a day`), else its `patientInstruction` or
    `text`."""
    if not isinstance(dosage, Mapping):
        return None
    dose, timing = dose_text(dosage.get("doseAndRate"), locale), timing_text(dosage.get("timing"), locale)
    parts = [p for p in (dose, timing, _as_needed(dosage, locale)) if p]
    if parts and (dose or timing):
        return " ".join(parts)
    for key in ("patientInstruction", "text"):
        if isinstance(dosage.get(key), str) and dosage[key].strip():
            return dosage[key].strip()
    return " ".join(parts) or None


def _name(request: Mapping[str, Any], resources: Mapping[str, Any] | None, locale: str = ENGLISH) -> str:
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
    return gettext_in(locale, A_MEDICINE)


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


def _refills_text(allowed: int | None, left: int | None, known: bool, current: bool,
                  locale: str = ENGLISH) -> str | None:
    if allowed is None or left is None or not current:
        return None
    if left == 0:
        return gettext_in(locale, "No refills left") if known else gettext_in(locale, "No refills")
    if known:
        return ngettext_in(locale, "%(num)s refill left", "%(num)s refills left", left) % {"num": left}
    return ngettext_in(locale, "%(num)s refill", "%(num)s refills", left) % {"num": left}


def _supply(dispense_request: Any, locale: str = ENGLISH) -> str | None:
    if not isinstance(dispense_request, Mapping):
        return None
    amount = _amount(dispense_request.get("quantity"), locale)
    duration = dispense_request.get("expectedSupplyDuration")
    days = number_text((duration or {}).get("value"), locale) if isinstance(duration, Mapping) else None
    if amount and days:
        return gettext_in(locale, "%(amount)s, about %(days)s days") % {"amount": amount, "days": days}
    return amount or (gettext_in(locale, "about %(days)s days") % {"days": days} if days else None)


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


def _one_after_another(steps: list[str], locale: str) -> str | None:
    """Dosages in sequence: `1 tablet a day; then 2 tablets a day`."""
    if not steps:
        return None
    text = steps[0]
    for step in steps[1:]:
        text = gettext_in(locale, "%(before)s; then %(after)s") % {"before": text, "after": step}
    return text


def medication(request: Any, *, dispenses: Iterable[Any] | None = None, resources: Mapping[str, Any] | None = None,
               tz: tzinfo | None = None, locale: str = ENGLISH) -> Medication:
    """One MedicationRequest in words, in `locale`. `dispenses` (MedicationDispense resources), when given,
    turn the refills allowed into refills left; `resources` resolves a medicationReference without a display."""
    resource: Mapping[str, Any] = request if isinstance(request, Mapping) else {}
    dosages = [d for d in resource.get("dosageInstruction") or [] if isinstance(d, Mapping)]
    dosages.sort(key=lambda d: d.get("sequence") if isinstance(d.get("sequence"), int) else 0)
    words = [w for w in (dosage_text(d, locale) for d in dosages) if w]
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
        name=_name(resource, resources, locale),
        dose_text=_one_after_another(words, locale),
        instructions=" ".join(instructions) or None,
        route=next((r for d in dosages if (r := concept_text(d.get("route")))), None),
        prescriber=reference_display(resource.get("requester"), resources),
        reason=", ".join(r for r in reasons if r) or None,
        written=written,
        written_text=date_words(written, tz, locale) if written else None,
        status=status,
        status_text=gettext_in(locale, STATUS_WORDS.get(status or "", STATUS_NOT_KNOWN)),
        status_reason=concept_text(resource.get("statusReason")),
        is_current=current,
        refills_allowed=allowed,
        refills_left=left,
        refills_known=known,
        refills_text=_refills_text(allowed, left, known, current, locale),
        supply_text=_supply(resource.get("dispenseRequest"), locale),
        runs_out=_runs_out(resource, dispensed),
    )


def medication_list(requests: Iterable[Any], *, dispenses: Iterable[Any] | None = None,
                    resources: Mapping[str, Any] | None = None,
                    tz: tzinfo | None = None, locale: str = ENGLISH) -> tuple[list[Medication], list[Medication]]:
    """(current, past) medicines, each newest first, in `locale`; plans, proposals and entries in error are left
    out.

    An older prescription of a medicine that is current again is not repeated among the past ones."""
    dispensed = list(dispenses) if dispenses is not None else None
    shown = [medication(r, dispenses=dispensed, resources=resources, tz=tz, locale=locale) for r in requests
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
