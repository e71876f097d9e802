"""Add-to-calendar files (iCalendar, RFC 5545) made with the `icalendar` library.

One job: events in, the bytes of one `.ics` file out. What an event says (the visit in words, where, with
whom) is decided by whoever builds the events; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from icalendar import Calendar, Event

PRODUCT = "-//Patient portal//Calendar file//EN"
STATUSES = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    uid: str  # stable per event: a calendar that imports the file twice updates, not duplicates
    summary: str
    start: datetime | date  # a date for an all-day event (a reminder); a datetime carries its offset
    end: datetime | date | None = None
    description: str | None = None
    location: str | None = None
    status: str = "CONFIRMED"
    stamp: datetime | None = None  # when the event was last changed; the start when not known


def _utc(value: datetime | date) -> datetime | date:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def calendar_file(events: Iterable[CalendarEvent]) -> bytes:
    """One `.ics` file holding every event, times in UTC (every calendar program reads those alike)."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    for item in events:
        event = Event()
        event.add("uid", item.uid)
        stamp = item.stamp or (item.start if isinstance(item.start, datetime)
                               else datetime(item.start.year, item.start.month, item.start.day, tzinfo=UTC))
        event.add("dtstamp", stamp.astimezone(UTC))
        event.add("dtstart", _utc(item.start))
        if item.end is not None:
            event.add("dtend", _utc(item.end))
        event.add("summary", item.summary)
        if item.description:
            event.add("description", item.description)
        if item.location:
            event.add("location", item.location)
        event.add("status", item.status if item.status in STATUSES else "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()
