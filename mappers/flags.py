"""Observation interpretation as a flag a patient can read without colour: words, a symbol and a class.

The lab's own interpretation (v3 ObservationInterpretation codes, or its text) wins; when it gave none,
a numeric value is compared with the reference range (high / low / normal only: "critical" is the lab's
call, never ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import codes, concept_text
from .quantities import quantity_value, same_unit
from .ranges import pick_range

INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


@dataclass(frozen=True, slots=True)
class Flag:
    key: str  # normal | high | low | critical-high | critical-low | abnormal
    words: str  # what the page says
    symbol: str  # shown next to the words, so colour is never the only signal
    css_class: str  # for the stylesheet's colours

    @property
    def is_normal(self) -> bool:
        return self.key == "normal"

    @property
    def is_critical(self) -> bool:
        return self.key.startswith("critical")


def _flag(key: str, words: str, symbol: str) -> Flag:
    return Flag(key, words, symbol, f"flag-{key}")


# The words are marked for the catalogue; whoever shows a flag words it in the reader's language.
NORMAL = _flag("normal", N_("Normal"), "✓")
HIGH = _flag("high", N_("High"), "↑")
LOW = _flag("low", N_("Low"), "↓")
CRITICAL_HIGH = _flag("critical-high", N_("Very high"), "⇈")
CRITICAL_LOW = _flag("critical-low", N_("Very low"), "⇊")
ABNORMAL = _flag("abnormal", N_("Outside the usual range"), "!")
FLAGS = {f.key: f for f in (NORMAL, HIGH, LOW, CRITICAL_HIGH, CRITICAL_LOW, ABNORMAL)}

_BY_CODE = {
    "N": NORMAL, "NEG": NORMAL, "ND": NORMAL, "S": NORMAL,
    "H": HIGH, "HX": HIGH, "H>": HIGH, ">": HIGH,
    "L": LOW, "LX": LOW, "L<": LOW, "<": LOW,
    "HH": CRITICAL_HIGH, "HU": CRITICAL_HIGH,
    "LL": CRITICAL_LOW, "LU": CRITICAL_LOW,
    "A": ABNORMAL, "AA": ABNORMAL, "POS": ABNORMAL, "DET": ABNORMAL, "R": ABNORMAL, "IE": ABNORMAL,
}
# Interpretations written only as text (lowercased).
_BY_TEXT = {
    "normal": NORMAL, "within normal limits": NORMAL, "negative": NORMAL,
    "high": HIGH, "above high normal": HIGH, "low": LOW, "below low normal": LOW,
    "critical high": CRITICAL_HIGH, "critically high": CRITICAL_HIGH, "very high": CRITICAL_HIGH,
    "critical low": CRITICAL_LOW, "critically low": CRITICAL_LOW, "very low": CRITICAL_LOW,
    "abnormal": ABNORMAL, "critical abnormal": ABNORMAL, "positive": ABNORMAL, "detected": ABNORMAL,
}
# When several codes are given, the most serious one is shown.
_SEVERITY = {"critical-high": 4, "critical-low": 4, "abnormal": 3, "high": 2, "low": 2, "normal": 1}


def flag_in(flag: Flag | None, locale: str = ENGLISH) -> Flag | None:
    """The same flag with its words in `locale`."""
    return replace(flag, words=gettext_in(locale, flag.words)) if flag is not None else None


def interpretation_flag(interpretation: Any) -> Flag | None:
    """A Flag from Observation.interpretation (a list of CodeableConcepts, or one); None when unknown."""
    found: list[Flag] = []
    for concept in interpretation if isinstance(interpretation, list) else [interpretation]:
        by_code = [_BY_CODE[c] for s, c in codes(concept) if s in (INTERPRETATION, "") and c in _BY_CODE]
        if by_code:
            found.extend(by_code)
            continue
        text = concept_text(concept)
        if text and text.strip().casefold() in _BY_TEXT:
            found.append(_BY_TEXT[text.strip().casefold()])
    return max(found, key=lambda f: _SEVERITY[f.key]) if found else None


def range_flag(value: Any, reference_ranges: Any) -> Flag | None:
    """High / low / normal from a valueQuantity and the Observation's referenceRange (same unit only)."""
    number = quantity_value(value)
    chosen = pick_range(reference_ranges)
    if number is None or chosen is None or (isinstance(value, Mapping) and value.get("comparator")):
        return None  # "<5" against a range of 4 to 10 could be either
    low_q, high_q = chosen.get("low"), chosen.get("high")
    low, high = quantity_value(low_q), quantity_value(high_q)
    if low is None and high is None:
        return None
    for bound in (low_q, high_q):
        if isinstance(bound, Mapping) and (bound.get("code") or bound.get("unit")) and not same_unit(value, bound):
            return None  # a range in another unit says nothing about this value
    if high is not None and number > high:
        return HIGH
    if low is not None and number < low:
        return LOW
    return NORMAL


def observation_flag(resource: Any) -> Flag | None:
    """The flag of an Observation or of one of its components."""
    if not isinstance(resource, Mapping):
        return None
    return interpretation_flag(resource.get("interpretation")) or range_flag(
        resource.get("valueQuantity"), resource.get("referenceRange"))
