"""Dates in the words a patient reads, relative to a given today (never the clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mappers.dates import (
    access_log_when,
    age_in_years,
    age_words,
    date_time_words,
    date_words,
    day_words,
    long_date,
    month_year,
    since_words,
)
from mappers.instants import parse_date, parse_fhir_time, parse_instant

TODAY = date(2026, 3, 10)  # a Tuesday


@pytest.mark.parametrize(("value", "words"), [
    ("2026-03-10", "today"),
    ("2026-03-09T08:00:00-06:00", "yesterday"),
    ("2026-03-11", "tomorrow"),
    ("2026-03-07", "3 days ago"),
    ("2026-03-13", "in 3 days"),
    ("2026-03-04", "6 days ago"),
    ("2026-03-03", "Tuesday 3 March 2026"),
    ("2024-02-28T11:00:00-06:00", "Wednesday 28 February 2024"),
    ("2024-03", "March 2024"),
    ("2024", "2024"),
    ("", "an unknown date"),
    (None, "an unknown date"),
    ("not a date", "an unknown date"),
    ("2024-02-30", "an unknown date"),
    (12345, "an unknown date"),
])
def test_day_words(value: object, words: str) -> None:
    assert day_words(value, TODAY) == words


def test_day_words_uses_the_patients_zone_when_given() -> None:
    late_evening_chicago = "2026-03-10T23:30:00-06:00"  # already 11 March in UTC
    assert day_words(late_evening_chicago, TODAY) == "today"
    assert day_words(late_evening_chicago, TODAY, UTC) == "tomorrow"


def test_absolute_forms() -> None:
    assert long_date(date(2026, 3, 4)) == "Wednesday 4 March 2026"
    assert month_year(date(2026, 3, 4)) == "March 2026"
    assert date_words("2026-03-10") == "Tuesday 10 March 2026"
    assert date_time_words("2026-03-10T14:30:00-06:00", TODAY) == "today at 2:30 pm"
    assert date_time_words("2026-01-05T09:05:00-06:00", TODAY) == "Monday 5 January 2026 at 9:05 am"
    assert date_time_words("2026-01-05T12:00:00-06:00", TODAY).endswith("at 12 noon")
    assert date_time_words("2026-01-05", TODAY) == "Monday 5 January 2026"


def test_since_words() -> None:
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert since_words(now - timedelta(seconds=20), now) == "just now"
    assert since_words(now - timedelta(minutes=1), now) == "1 minute ago"
    assert since_words("2026-03-10T14:05:00Z", now) == "55 minutes ago"
    assert since_words(now - timedelta(hours=3), now) == "3 hours ago"
    assert since_words("2026-03-08T09:00:00Z", now) == "2 days ago at 9:00 am"
    assert since_words("garbage", now) == "an unknown date"


@pytest.mark.parametrize(("born", "years", "words"), [
    ("1988-03-11", 37, "37 years old"),  # birthday tomorrow
    ("1988-03-10", 38, "38 years old"),
    ("2025-07-01", 0, "8 months old"),
    ("2026-02-20", 0, "2 weeks old"),
    ("2026-03-08", 0, "2 days old"),
    ("2024-03-11", 1, "23 months old"),
    ("2030-01-01", None, None),
    (None, None, None),
])
def test_ages(born: str | None, years: int | None, words: str | None) -> None:
    assert age_in_years(born, TODAY) == years
    assert age_words(born, TODAY) == words


def test_instants_parse_once_with_a_zone() -> None:
    assert parse_instant("2026-03-10T14:05:00Z") == datetime(2026, 3, 10, 14, 5, tzinfo=UTC)
    assert parse_instant("2026-03-10T14:05:00").tzinfo is UTC  # type: ignore[union-attr]
    assert parse_instant("2026-03-10T08:05:00-06:00").utcoffset() == timedelta(hours=-6)  # type: ignore[union-attr]
    assert parse_instant("nope") is None and parse_instant(None) is None and parse_instant(3) is None
    assert parse_fhir_time("2024-03").precision == "month"  # type: ignore[union-attr]
    assert parse_fhir_time("2024-13") is None
    assert parse_date("2024-03-11T23:00:00-06:00") == date(2024, 3, 11)
    assert parse_fhir_time(datetime(2026, 1, 1, tzinfo=UTC)).precision == "time"  # type: ignore[union-attr]


def test_access_log_when_reads_in_utc() -> None:
    assert access_log_when("2026-03-04T08:05:09-06:00") == "4 March 2026 at 14:05 UTC"
    assert access_log_when(None) == "an unknown date"
    assert access_log_when("yesterday-ish") == "an unknown date"
