"""The clinic's clock for a page: "today", the time zone that dates in words are said in, and how its
region writes dates, times and numbers in each language.

A filter on a page writes in the language the page is formatted in (`web.i18n.formatting_locale`:
the reader's language on a translated page, English on one not translated yet); a page's Python code
passes `locale=` itself when it words a date before rendering.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from locales import ENGLISH, supported
from mappers.dates import date_time_words, date_words, day_words
from mappers.quantities import number_text
from web.i18n import formatting_locale


@dataclass(frozen=True)
class Clock:
    tz: ZoneInfo
    now_fn: Callable[[], float] = time.time
    region: str = "US"  # whose way of writing dates and numbers a language follows: Spanish in the US

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_fn(), tz=UTC).astimezone(self.tz)

    def today(self) -> date:
        return self.now().date()

    def formats(self, locale: str | None = None) -> str:
        """The Babel locale for a language here (`es` -> `es_US`); English keeps the portal's own wording."""
        language = supported(locale) if locale else formatting_locale()
        if not language or language == ENGLISH:
            return ENGLISH
        return f"{language}_{self.region}" if self.region else language

    def when(self, value: Any, locale: str | None = None) -> str:
        """An epoch number or a FHIR date/dateTime as "today at 2:30 pm" / "Tuesday 4 March 2026 at ..."."""
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(value, tz=UTC)
        return date_time_words(value, self.today(), self.tz, self.formats(locale))

    def day(self, value: Any, locale: str | None = None) -> str:
        return day_words(value, self.today(), self.tz, self.formats(locale))

    def date(self, value: Any, locale: str | None = None) -> str:
        return date_words(value, self.tz, self.formats(locale))

    def number(self, value: Any, locale: str | None = None) -> str:
        """A count or a measurement as this language writes it here (`1,250`; `1.250` in Spain)."""
        return number_text(value, self.formats(locale)) or str(value)

    def install(self, env: Any) -> None:
        env.filters.update(when=self.when, day=self.day, date=self.date, number=self.number)
