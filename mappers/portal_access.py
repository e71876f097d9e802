"""The staff invitations page in words: who a patient is (name, date of birth, MRN), the e-mail address on
their chart, and the figures page's numbers as people read them. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from .dates import long_date
from .names import human_name

MRN_SYSTEM = "http://hospital.example.org/mrn"


@dataclass(frozen=True)
class PatientFacts:
    id: str
    name: str
    birth_date: str  # in words, "" when unknown
    mrn: str
    email: str  # the chart's e-mail address (a suggestion for the invitation), "" when none


def patient_facts(patient: Mapping[str, Any]) -> PatientFacts:
    born = patient.get("birthDate")
    try:
        birth = long_date(date.fromisoformat(born)) if isinstance(born, str) else ""
    except ValueError:
        birth = ""
    mrn = next((str(i.get("value")) for i in patient.get("identifier") or []
                if isinstance(i, Mapping) and i.get("system") == MRN_SYSTEM and i.get("value")), "")
    emails = sorted((t for t in patient.get("telecom") or [] if isinstance(t, Mapping) and t.get("system") == "email"
                     and isinstance(t.get("value"), str)), key=lambda t: int(t.get("rank") or 99))
    return PatientFacts(str(patient.get("id") or ""), human_name(patient) or "Name not recorded", birth, mrn,
                        str(emails[0]["value"]) if emails else "")


STATUS_WORDS = {"waiting": "Invited, not enrolled yet", "enrolled": "Enrolled", "expired": "Invitation expired",
                "locked": "Locked out (identity check failed too often)"}
FACTOR_WORDS = {"totp": "Authenticator app", "email": "Code by e-mail", "sms": "Code by text message"}
DELIVERY_WORDS = {"email": "E-mail", "letter": "Letter", "sms": "Text message", "link": "Link"}


def day_of(epoch: float, tz: tzinfo) -> str:
    """`1 December 2026` for a time kept as seconds since the epoch."""
    return long_date(datetime.fromtimestamp(epoch, tz).date())


def duration_words(seconds: float | None) -> str:
    """`3 hours 20 minutes`, `2 days 4 hours`, `under a minute`, `—` when there is nothing to measure."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)

    def unit(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    if days:
        return unit(days, "day") + (f" {unit(hours, 'hour')}" if hours else "")
    if hours:
        return unit(hours, "hour") + (f" {unit(mins, 'minute')}" if mins else "")
    return unit(mins, "minute") if mins else "under a minute"


def share_words(share: float | None) -> str:
    return "—" if share is None else f"{round(share * 100)}%"
