"""Plain-language explanations of tests, keyed by LOINC code, kept as data (`data/lab_explanations.toml`).

`load_explanations` reads and validates a table once (every field present and non-empty, an https source);
the shaping functions stay pure: callers pass the loaded table in. The table is written in English; its words
are messages of the catalogue (`babel.cfg` extracts them), so `explanation_in`/`plain_names` give them in the
reader's language. The source's title stays as written: it names an English page.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from locales import ENGLISH, gettext_in

KINDS = ("measurement", "panel", "imaging")
REQUIRED = ("name", "kind", "measures", "ask", "source_title", "source_url")
MEASUREMENT_ONLY = ("high", "low")
_LOINC = re.compile(r"^\d{1,7}-\d$")


class ExplanationError(ValueError):
    """The explanations table is not usable; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class Explanation:
    loinc: str
    name: str  # the plain name shown instead of the lab's own ("Kidney filter rate (eGFR)")
    kind: str
    measures: str  # what the test measures
    ask: str  # questions to ask the care team
    source_title: str
    source_url: str
    high: str | None = None  # what a high value can mean (measurements only)
    low: str | None = None  # what a low value can mean (measurements only)

    @property
    def texts(self) -> tuple[str, ...]:
        """Every sentence a patient reads, for readability checks."""
        return tuple(t for t in (self.measures, self.high, self.low, self.ask) if t)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ExplanationError(f"{where}: `{key}` is missing or empty")
    return " ".join(value.split())


def parse_explanations(table: Mapping[str, Any]) -> dict[str, Explanation]:
    """Validate a parsed table (`{"tests": {loinc: {...}}}`) into Explanations by LOINC code."""
    tests = table.get("tests")
    if not isinstance(tests, Mapping) or not tests:
        raise ExplanationError("the table has no [tests.\"<LOINC>\"] entries")
    found: dict[str, Explanation] = {}
    for code, entry in tests.items():
        where = f"tests.\"{code}\""
        if not _LOINC.match(str(code)):
            raise ExplanationError(f"{where}: not a LOINC code")
        if not isinstance(entry, Mapping):
            raise ExplanationError(f"{where}: not a table")
        values = {key: _text(entry, key, where) for key in REQUIRED}
        if values["kind"] not in KINDS:
            raise ExplanationError(f"{where}: `kind` must be one of {', '.join(KINDS)}")
        if not re.match(r"^https://[^\s/]+\.[^\s/]+/\S*$", values["source_url"]):
            raise ExplanationError(f"{where}: `source_url` must be an https address")
        extra = {}
        if values["kind"] == "measurement":
            extra = {key: _text(entry, key, where) for key in MEASUREMENT_ONLY}
        unknown = set(entry) - set(REQUIRED) - set(MEASUREMENT_ONLY)
        if unknown:
            raise ExplanationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        found[str(code)] = Explanation(loinc=str(code), **values, **extra)
    return found


def load_explanations(text: str | None = None) -> dict[str, Explanation]:
    """The shipped table (or the TOML `text` given), validated; raises ExplanationError naming the problem."""
    if text is None:
        return dict(_shipped())
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExplanationError(f"the table is not valid TOML: {exc}") from exc
    return parse_explanations(table)


@cache
def _shipped() -> dict[str, Explanation]:
    text = resources.files("mappers").joinpath("data", "lab_explanations.toml").read_text(encoding="utf-8")
    return load_explanations(text)


def explanation_for(loinc: str | None, table: Mapping[str, Explanation]) -> Explanation | None:
    return table.get(loinc) if loinc else None


def explanation_in(item: Explanation, locale: str = ENGLISH) -> Explanation:
    """An entry with its words in `locale`."""
    if locale.replace("-", "_").split("_")[0].lower() == ENGLISH:
        return item
    return replace(item, name=gettext_in(locale, item.name), measures=gettext_in(locale, item.measures),
                   ask=gettext_in(locale, item.ask), high=gettext_in(locale, item.high) if item.high else None,
                   low=gettext_in(locale, item.low) if item.low else None)


def plain_names(table: Mapping[str, Explanation], locale: str = ENGLISH) -> dict[str, str]:
    """`{loinc: plain name}` for the results functions' `names` argument, in `locale`."""
    return {code: gettext_in(locale, item.name) for code, item in table.items()}


def explanations_for(codes: Iterable[str], table: Mapping[str, Explanation],
                     locale: str = ENGLISH) -> list[Explanation]:
    """The entries for these LOINC codes, in the order given, each once, in `locale`; codes without an entry are
    skipped."""
    found: dict[str, Explanation] = {}
    for code in codes:
        if code in table and code not in found:
            found[code] = explanation_in(table[code], locale)
    return list(found.values())
