"""The clinic's clock for a page: "today" and the time zone that dates in words are said in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mappers.dates import date_time_words, date_words, day_words


@dataclass(frozen=True)
class Clock:
    tz: ZoneInfo
    now_fn: Callable[[], float] = time.time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_fn(), tz=UTC).astimezone(self.tz)

    def today(self) -> date:
        return self.now().date()

    def when(self, value: Any) -> str:
        """An epoch number or a FHIR date/dateTime as "today at 2:30 pm" / "Tuesday 4 March 2026 at ..."."""
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(value, tz=UTC)
        return date_time_words(value, self.today(), self.tz)

    def day(self, value: Any) -> str:
        return day_words(value, self.today(), self.tz)

    def date(self, value: Any) -> str:
        return date_words(value, self.tz)

    def install(self, env: Any) -> None:
        env.filters.update(when=self.when, day=self.day, date=self.date)
