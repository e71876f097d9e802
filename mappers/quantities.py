"""Numbers, units and quantities as a patient reads them: `5.4 mmol/L`, `36.8 °C`, `5.6%`.

Units that are already what people write (mmol/L, mg/dL, kg) stay; UCUM's machine spellings
(`Cel`, `[in_i]`, `mm[Hg]`, `10*3/uL`) become the everyday symbol.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from babel import UnknownLocaleError
from babel.numbers import format_decimal

from locales import ENGLISH, N_, gettext_in

# UCUM code (or the unit string a server wrote) -> the way it is written for patients.
UNIT_WORDS: dict[str, str] = {
    "Cel": "°C",
    "[degF]": "°F",
    "[in_i]": "in",
    "[in_us]": "in",
    "[ft_i]": "ft",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "mm[Hg]": "mmHg",
    "/min": N_("per minute"),
    "{beats}/min": N_("beats per minute"),
    "{breaths}/min": N_("breaths per minute"),
    "beats/minute": N_("beats per minute"),
    "breaths/minute": N_("breaths per minute"),
    "kg/m2": "kg/m²",
    "10*3/uL": N_("thousand per µL"),
    "10*6/uL": N_("million per µL"),
    "10*9/L": N_("billion per L"),
    "10*12/L": N_("trillion per L"),
    "uL": "µL",
    "ug": "µg",
    "ug/dL": "µg/dL",
    "ug/L": "µg/L",
    "umol/L": "µmol/L",
    "m[IU]/L": "mIU/L",
    "u[IU]/mL": "µIU/mL",
    "[IU]/L": "IU/L",
    "[IU]": "IU",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "mL/min/1.73m2": "mL/min/1.73 m²",
    "m2": "m²",
    "a": N_("years"),
    "mo": N_("months"),
    "wk": N_("weeks"),
    "d": N_("days"),
    "h": N_("hours"),
    "min": N_("minutes"),
    "s": N_("seconds"),
}
# The units above that are words (translated where shown); the rest are symbols, the same in every language.
_WORDS = frozenset({"per minute", "beats per minute", "breaths per minute", "thousand per µL", "million per µL",
                    "billion per L", "trillion per L", "years", "months", "weeks", "days", "hours", "minutes",
                    "seconds"})
# Units written straight after the number (`5.6%`); every other unit gets a space.
_NO_SPACE = frozenset({"%"})
_ANNOTATION = re.compile(r"\{[^}]*\}")
_COMPARATORS = {"<": N_("less than %(value)s"), "<=": N_("at most %(value)s"), ">=": N_("at least %(value)s"),
                ">": N_("more than %(value)s")}


def number_text(value: Any, locale: str = ENGLISH) -> str | None:
    """A number as written in the record: `75`, `5.1`, `0.59`, `4.0`, `1,250`; None when not a number.
    Another `locale` writes the same digits its own way (`1.250` and `5,1` in `es_ES`; Babel's CLDR data)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:,.10f}".rstrip("0")
        if text.endswith("."):
            text += "0"  # 4.0 was written with one decimal: keep it
    if locale.replace("-", "_").split("_")[0].lower() == "en":
        return text
    decimals = len(text.partition(".")[2])
    try:
        return format_decimal(value, format="#,##0" + ("." + "0" * decimals if decimals else ""),
                              locale=locale.replace("-", "_"), decimal_quantization=True)
    except (ValueError, UnknownLocaleError):
        return text


def unit_text(code: Any = None, unit: Any = None, locale: str = ENGLISH) -> str | None:
    """The unit of a Quantity in everyday writing, from its UCUM `code` or its `unit` string (in `locale` when it
    is words: `beats per minute`)."""
    for candidate in (code, unit):
        if isinstance(candidate, str) and candidate in UNIT_WORDS:
            found = UNIT_WORDS[candidate]
            return gettext_in(locale, found) if found in _WORDS else found
    if isinstance(unit, str) and unit.strip() and not re.search(r"[\[\]{}]", unit):
        return unit.strip()
    if isinstance(code, str) and code.strip():
        cleaned = _ANNOTATION.sub("", code).replace("[", "").replace("]", "").strip()
        return cleaned or None
    return None


def quantity_unit(quantity: Any, locale: str = ENGLISH) -> str | None:
    if not isinstance(quantity, Mapping):
        return None
    return unit_text(quantity.get("code"), quantity.get("unit"), locale)


def with_unit(number: str, unit: str | None) -> str:
    if not unit:
        return number
    return f"{number}{unit}" if unit in _NO_SPACE else f"{number} {unit}"


def quantity_text(quantity: Any, locale: str = ENGLISH) -> str | None:
    """`5.4 mmol/L`, `less than 5 mg/dL`, `36.8 °C`, `5.6%`; None when there is no number."""
    if not isinstance(quantity, Mapping):
        return None
    number = number_text(quantity.get("value"), locale)
    if number is None:
        return None
    words = with_unit(number, quantity_unit(quantity, locale))
    comparator = _COMPARATORS.get(str(quantity.get("comparator") or ""))
    return gettext_in(locale, comparator) % {"value": words} if comparator else words


def quantity_value(quantity: Any) -> float | None:
    """The number of a Quantity as a float (None when missing or not a finite number)."""
    if not isinstance(quantity, Mapping):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def same_unit(a: Any, b: Any) -> bool:
    """Whether two Quantities are in the same unit (by UCUM code when both have one, else by unit text)."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return False
    if a.get("code") and b.get("code"):
        return a.get("code") == b.get("code")
    return quantity_unit(a) == quantity_unit(b)
