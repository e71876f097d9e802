"""Observation reference ranges in words: `3.5 to 5.1 mmol/L`, `less than 200 mg/dL`, `60 or higher`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .quantities import number_text, quantity_unit, quantity_value, with_unit

_TEXT_BOUND = re.compile(r"^\s*(<=|>=|<|>|≤|≥)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(.*?)\s*$")
LESS_THAN, OR_LOWER = N_("less than %(value)s"), N_("%(value)s or lower")
MORE_THAN, OR_HIGHER = N_("more than %(value)s"), N_("%(value)s or higher")
_BOUND_WORDS = {"<": LESS_THAN, "≤": OR_LOWER, "<=": OR_LOWER, ">": MORE_THAN, ">=": OR_HIGHER, "≥": OR_HIGHER}


@dataclass(frozen=True, slots=True)
class Range:
    low: float | None
    high: float | None
    words: str | None
    unit: str | None


def _usable(ranges: Any) -> list[Mapping[str, Any]]:
    return [r for r in ranges if isinstance(r, Mapping)] if isinstance(ranges, list) else []


def pick_range(ranges: Any) -> Mapping[str, Any] | None:
    """The range that applies to everyone (no `appliesTo`/`age`) first, else the first one given."""
    usable = _usable(ranges)
    general = [r for r in usable if not r.get("appliesTo") and not r.get("age")]
    return (general or usable or [None])[0]


def range_words(reference_range: Any, unit: str | None = None, locale: str = ENGLISH) -> str | None:
    """One ReferenceRange in words. Both bounds: `3.5 to 5.1 mmol/L`; one bound: the lab's own text when
    it reads as one (`<200 mg/dL` -> `less than 200 mg/dL`), else `199 mg/dL or lower`; only text: the text."""
    if not isinstance(reference_range, Mapping):
        return None
    low_q, high_q = reference_range.get("low"), reference_range.get("high")
    low, high = number_text((low_q or {}).get("value"), locale) if isinstance(low_q, Mapping) else None, \
        number_text((high_q or {}).get("value"), locale) if isinstance(high_q, Mapping) else None
    unit = quantity_unit(low_q, locale) or quantity_unit(high_q, locale) or unit
    text = reference_range.get("text") if isinstance(reference_range.get("text"), str) else None
    if low and high:
        return with_unit(gettext_in(locale, "%(low)s to %(high)s") % {"low": low, "high": high}, unit)
    if text and (m := _TEXT_BOUND.match(text)):
        number = _text_number(m[2], locale)
        return gettext_in(locale, _BOUND_WORDS[m[1]]) % {"value": with_unit(number, unit or m[3] or None)}
    if high:
        return gettext_in(locale, OR_LOWER) % {"value": with_unit(high, unit)}
    if low:
        return gettext_in(locale, OR_HIGHER) % {"value": with_unit(low, unit)}
    return text.strip() if text and text.strip() else None


def _text_number(number: str, locale: str) -> str:
    """A number the lab wrote as text (`1,000.5`), written the reader's way."""
    try:
        value = float(number.replace(",", ""))
    except ValueError:
        return number
    decimals = number.partition(".")[2]
    return number_text(round(value, len(decimals)) if decimals else int(value), locale) or number


def observation_range(resource: Any, locale: str = ENGLISH) -> Range | None:
    """The reference range of an Observation (or one of its components) with its bounds as numbers."""
    if not isinstance(resource, Mapping):
        return None
    chosen = pick_range(resource.get("referenceRange"))
    if chosen is None:
        return None
    value_unit = quantity_unit(resource.get("valueQuantity"), locale)
    low = quantity_value(chosen.get("low"))
    high = quantity_value(chosen.get("high"))
    return Range(low=low, high=high, words=range_words(chosen, value_unit, locale),
                 unit=quantity_unit(chosen.get("low"), locale) or quantity_unit(chosen.get("high"), locale)
                 or value_unit)
