"""Dates and times in words for patients: "today", "3 days ago", "Tuesday 4 March 2026", "March 2026", ages.

Nothing here reads the clock: `today` / `now` are always passed in, so a page and its tests agree.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from .instants import FhirTime, parse_date, parse_fhir_time, parse_instant

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNKNOWN_DATE = "an unknown date"
# Within this many days a date reads as "3 days ago" / "in 3 days"; further away it is named.
RELATIVE_DAYS = 6


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def short_date(day: date) -> str:
    """`4 March 2026`."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def long_date(day: date) -> str:
    """`Tuesday 4 March 2026`."""
    return f"{WEEKDAYS[day.weekday()]} {short_date(day)}"


def month_year(day: date) -> str:
    """`March 2026`."""
    return f"{MONTHS[day.month - 1]} {day.year}"


def time_of_day(moment: datetime, tz: tzinfo | None = None) -> str:
    """`9:05 am`, `2:30 pm`, `12 noon`; in `tz` when given, else in the value's own offset."""
    local = moment.astimezone(tz) if tz is not None else moment
    if local.hour == 12 and local.minute == 0:
        return "12 noon"
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'am' if local.hour < 12 else 'pm'}"


def relative_day(day: date, today: date) -> str | None:
    """`today`, `yesterday`, `tomorrow`, `3 days ago`, `in 3 days`; None when more than a few days away."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == -1:
        return "yesterday"
    if delta == 1:
        return "tomorrow"
    if -RELATIVE_DAYS <= delta < 0:
        return f"{-delta} days ago"
    if 0 < delta <= RELATIVE_DAYS:
        return f"in {delta} days"
    return None


def _words(value: Any, today: date | None, tz: tzinfo | None) -> str:
    found = value if isinstance(value, FhirTime) else parse_fhir_time(value)
    if found is None:
        return UNKNOWN_DATE
    if found.precision == "year":
        return str(found.day.year)
    if found.precision == "month":
        return month_year(found.day)
    day = found.local_day(tz)
    return (relative_day(day, today) if today is not None else None) or long_date(day)


def day_words(value: Any, today: date, tz: tzinfo | None = None) -> str:
    """A FHIR date/dateTime (or a date/datetime) as a patient would say it, relative to `today`.

    Partial dates keep their precision: `2024` stays "2024", `2024-03` is "March 2024".
    """
    return _words(value, today, tz)


def date_words(value: Any, tz: tzinfo | None = None) -> str:
    """A FHIR date/dateTime named absolutely (`Tuesday 4 March 2026`, `March 2024`, `2024`)."""
    return _words(value, None, tz)


def date_time_words(value: Any, today: date, tz: tzinfo | None = None) -> str:
    """`today at 2:30 pm`, `Tuesday 4 March 2026 at 9:00 am`; a date without a time is just the day."""
    found = value if isinstance(value, FhirTime) else parse_fhir_time(value)
    if found is None:
        return UNKNOWN_DATE
    words = day_words(found, today, tz)
    if found.moment is None:
        return words
    return f"{words} at {time_of_day(found.moment, tz)}"


def since_words(moment: Any, now: datetime) -> str:
    """How long ago an instant was: `just now`, `5 minutes ago`, `3 hours ago`, then the day in words."""
    when = moment if isinstance(moment, datetime) else parse_instant(moment)
    if when is None:
        return UNKNOWN_DATE
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    seconds = (now - when).total_seconds()
    if 0 <= seconds < 60:
        return "just now"
    if 0 < seconds < 3600:
        return f"{_plural(int(seconds // 60), 'minute')} ago"
    if 0 < seconds < 12 * 3600:
        return f"{_plural(int(seconds // 3600), 'hour')} ago"
    return date_time_words(when, now.astimezone(when.tzinfo).date(), when.tzinfo)


def age_in_years(birth_date: Any, today: date) -> int | None:
    """Whole years since a birth date (None when unknown or in the future)."""
    born = parse_date(birth_date)
    if born is None or born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def age_words(birth_date: Any, today: date) -> str | None:
    """`37 years old`; for babies `8 months old` or `2 weeks old`."""
    born = parse_date(birth_date)
    years = age_in_years(born, today) if born else None
    if born is None or years is None:
        return None
    if years >= 2:
        return f"{years} years old"
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months >= 1:
        return f"{_plural(months, 'month')} old"
    weeks = (today - born).days // 7
    return f"{_plural(weeks, 'week')} old" if weeks >= 1 else f"{_plural((today - born).days, 'day')} old"


def access_log_when(recorded: Any) -> str:
    """When an access-log entry happened, in UTC: `4 March 2026 at 14:05 UTC`."""
    when = parse_instant(recorded or "")
    if when is None:
        return UNKNOWN_DATE
    when = when.astimezone(UTC)
    return f"{short_date(when.date())} at {when:%H:%M} UTC"


US_TYPED_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def typed_date(value: str) -> date | None:
    """A date a person typed into a form: what a date field sends (2019-05-30), or, from a browser without
    one, the US way (5/30/2019); None when it is not a real date."""
    text = value.strip()
    us = US_TYPED_DATE.fullmatch(text)
    try:
        if us:
            return date(int(us.group(3)), int(us.group(1)), int(us.group(2)))
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
