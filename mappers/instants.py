"""Parsing FHIR `instant`, `dateTime` and `date` values, once, for every module that reads them.

FHIR allows partial dates (`2024`, `2024-03`), dates (`2024-03-11`) and date-times with or without seconds
and a zone. Odd values give None, never an exception: the callers turn None into "an unknown date".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal

Precision = Literal["year", "month", "day", "time"]

_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_instant(value: Any) -> datetime | None:
    """A zone-aware datetime from an ISO 8601 instant; a value without a zone is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FhirTime:
    """A FHIR date or dateTime as far as it is known: `moment` is set only when a time of day was given."""

    day: date  # the first day of the period for year/month precision
    precision: Precision
    moment: datetime | None = None

    def local_day(self, tz: tzinfo | None = None) -> date:
        """The calendar day, in `tz` when given (else in the value's own offset)."""
        if self.moment is not None and tz is not None:
            return self.moment.astimezone(tz).date()
        return self.day

    def sort_key(self) -> datetime:
        return self.moment or datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)


def parse_fhir_time(value: Any) -> FhirTime | None:
    """`2024`, `2024-03`, `2024-03-11` or a date-time; a `date`/`datetime` object is accepted as is."""
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return FhirTime(when.date(), "time", when)
    if isinstance(value, date):
        return FhirTime(value, "day")
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if m := _YEAR.match(text):
            return FhirTime(date(int(m[1]), 1, 1), "year")
        if m := _MONTH.match(text):
            return FhirTime(date(int(m[1]), int(m[2]), 1), "month")
        if m := _DAY.match(text):
            return FhirTime(date(int(m[1]), int(m[2]), int(m[3])), "day")
    except ValueError:
        return None
    if "T" not in text:
        return None
    when = parse_instant(text)
    return FhirTime(when.date(), "time", when) if when else None


def parse_date(value: Any) -> date | None:
    """The calendar day of a FHIR date or dateTime (the first day of a partial date)."""
    found = parse_fhir_time(value)
    return found.day if found else None


def first_time(resource: Any, *fields: str) -> FhirTime | None:
    """The first readable time among `fields` of a resource; a Period field gives its start (else end)."""
    if not isinstance(resource, dict):
        return None
    for name in fields:
        value = resource.get(name)
        if isinstance(value, dict):
            value = value.get("start") or value.get("end")
        found = parse_fhir_time(value)
        if found is not None:
            return found
    return None
