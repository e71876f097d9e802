"""Dates and times in words for patients: "today", "3 days ago", "Tuesday 4 March 2026", "March 2026", ages.

Nothing here reads the clock: `today` / `now` are always passed in, so a page and its tests agree. The
functions a page shows dates with take a `locale` (`en` by default, the words as below; `es` or `es_US` for
Spanish, written the way that language and region write dates, times and "3 days ago", from Babel's CLDR
data). Other languages than English are formatted by Babel; the few words that are ours (an unknown date)
come from the catalogue (`locales`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time, format_timedelta

from locales import N_, gettext_in, ngettext_in

from .instants import FhirTime, parse_date, parse_fhir_time, parse_instant

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNKNOWN_DATE = N_("an unknown date")
JUST_NOW = N_("just now")
ENGLISH = "en"
# Within this many days a date reads as "3 days ago" / "in 3 days"; further away it is named.
RELATIVE_DAYS = 6


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _english(locale: str) -> bool:
    return locale.replace("-", "_").split("_")[0].lower() == ENGLISH


def _cldr(locale: str) -> str:
    """A locale Babel knows (`es_US`, `es`); English for one it does not."""
    try:
        return str(Locale.parse(locale.replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return ENGLISH


def unknown_date(locale: str = ENGLISH) -> str:
    return gettext_in(locale, UNKNOWN_DATE)


def short_date(day: date, locale: str = ENGLISH) -> str:
    """`4 March 2026` (`4 de marzo de 2026`)."""
    if not _english(locale):
        return format_date(day, "long", locale=_cldr(locale))
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def long_date(day: date, locale: str = ENGLISH) -> str:
    """`Tuesday 4 March 2026` (`martes, 4 de marzo de 2026`)."""
    if not _english(locale):
        return format_date(day, "full", locale=_cldr(locale))
    return f"{WEEKDAYS[day.weekday()]} {short_date(day)}"


def month_year(day: date, locale: str = ENGLISH) -> str:
    """`March 2026` (`marzo de 2026`)."""
    if not _english(locale):
        return format_skeleton("yMMMM", day, locale=_cldr(locale))
    return f"{MONTHS[day.month - 1]} {day.year}"


def time_of_day(moment: datetime, tz: tzinfo | None = None, locale: str = ENGLISH) -> str:
    """`9:05 am`, `2:30 pm`, `12 noon` (`2:30 p.m.` in US Spanish, `14:30` in Spain's); in `tz` when given,
    else in the value's own offset."""
    local = moment.astimezone(tz) if tz is not None else moment
    if not _english(locale):
        return format_time(local, "short", locale=_cldr(locale))
    if local.hour == 12 and local.minute == 0:
        return "12 noon"
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'am' if local.hour < 12 else 'pm'}"


def _named_day(delta: int, locale: str) -> str | None:
    """CLDR's own word for yesterday / today / tomorrow in `locale` (`ayer`, `hoy`, `mañana`). Babel has no
    public call for these; its locale data holds them, and None falls back to a date."""
    try:
        words = Locale.parse(_cldr(locale))._data["date_fields"]["day"]["relative"]
        return str(words[delta])
    except (KeyError, TypeError, ValueError):
        return None


def relative_day(day: date, today: date, locale: str = ENGLISH) -> str | None:
    """`today`, `yesterday`, `tomorrow`, `3 days ago`, `in 3 days`; None when more than a few days away."""
    delta = (day - today).days
    if not _english(locale):
        if delta in (-1, 0, 1):
            return _named_day(delta, locale)
        if -RELATIVE_DAYS <= delta <= RELATIVE_DAYS:
            return format_timedelta(timedelta(days=delta), granularity="day", threshold=RELATIVE_DAYS + 1,
                                    add_direction=True, locale=_cldr(locale))
        return None
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


def _words(value: Any, today: date | None, tz: tzinfo | None, locale: str) -> str:
    found = value if isinstance(value, FhirTime) else parse_fhir_time(value)
    if found is None:
        return unknown_date(locale)
    if found.precision == "year":
        return str(found.day.year)
    if found.precision == "month":
        return month_year(found.day, locale)
    day = found.local_day(tz)
    return (relative_day(day, today, locale) if today is not None else None) or long_date(day, locale)


def day_words(value: Any, today: date, tz: tzinfo | None = None, locale: str = ENGLISH) -> str:
    """A FHIR date/dateTime (or a date/datetime) as a patient would say it, relative to `today`.

    Partial dates keep their precision: `2024` stays "2024", `2024-03` is "March 2024".
    """
    return _words(value, today, tz, locale)


def date_words(value: Any, tz: tzinfo | None = None, locale: str = ENGLISH) -> str:
    """A FHIR date/dateTime named absolutely (`Tuesday 4 March 2026`, `March 2024`, `2024`)."""
    return _words(value, None, tz, locale)


def _day_and_time(day: str, time: str, locale: str) -> str:
    if _english(locale):
        return f"{day} at {time}"
    # The language's own way to join a day and a time (`{1}, {0}` in Spanish: "mañana, 9:30 a.m.").
    pattern = Locale.parse(_cldr(locale)).datetime_formats["long"]
    return re.sub(r"'([^']*)'", r"\1", str(pattern)).replace("{1}", day).replace("{0}", time)


def date_time_words(value: Any, today: date, tz: tzinfo | None = None, locale: str = ENGLISH) -> str:
    """`today at 2:30 pm`, `Tuesday 4 March 2026 at 9:00 am`; a date without a time is just the day."""
    found = value if isinstance(value, FhirTime) else parse_fhir_time(value)
    if found is None:
        return unknown_date(locale)
    words = day_words(found, today, tz, locale)
    if found.moment is None:
        return words
    return _day_and_time(words, time_of_day(found.moment, tz, locale), locale)


def since_words(moment: Any, now: datetime, locale: str = ENGLISH) -> str:
    """How long ago an instant was: `just now`, `5 minutes ago`, `3 hours ago`, then the day in words."""
    when = moment if isinstance(moment, datetime) else parse_instant(moment)
    if when is None:
        return unknown_date(locale)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    seconds = (now - when).total_seconds()
    if 0 <= seconds < 60:
        return gettext_in(locale, JUST_NOW)
    if 0 < seconds < 12 * 3600:
        unit, size = ("minute", 60) if seconds < 3600 else ("hour", 3600)
        if not _english(locale):
            return format_timedelta(timedelta(seconds=-(seconds // size) * size), granularity=unit,
                                    threshold=100, add_direction=True, locale=_cldr(locale))
        return f"{_plural(int(seconds // size), unit)} ago"
    return date_time_words(when, now.astimezone(when.tzinfo).date(), when.tzinfo, locale)


def age_in_years(birth_date: Any, today: date) -> int | None:
    """Whole years since a birth date (None when unknown or in the future)."""
    born = parse_date(birth_date)
    if born is None or born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def age_words(birth_date: Any, today: date, locale: str = ENGLISH) -> str | None:
    """`37 years old`; for babies `8 months old` or `2 weeks old` (in `locale`: `37 años`)."""
    born = parse_date(birth_date)
    years = age_in_years(born, today) if born else None
    if born is None or years is None:
        return None
    if years >= 2:
        return ngettext_in(locale, "%(num)s year old", "%(num)s years old", years) % {"num": years}
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months >= 1:
        return ngettext_in(locale, "%(num)s month old", "%(num)s months old", months) % {"num": months}
    weeks = (today - born).days // 7
    if weeks >= 1:
        return ngettext_in(locale, "%(num)s week old", "%(num)s weeks old", weeks) % {"num": weeks}
    days = (today - born).days
    return ngettext_in(locale, "%(num)s day old", "%(num)s days old", days) % {"num": days}


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
