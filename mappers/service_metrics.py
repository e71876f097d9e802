"""Portal adoption and care-team service figures, computed from what already exists: our AuditEvents (who
was invited, who enrolled, who signed in) and the EHR's own resources (appointments, messages, refill
requests). Pure: the caller brings the resources, `now` and the clinic's time zone; nothing here keeps or
returns anything about one person, only counts, shares and durations.

- invited / enrolled: distinct patients with a successful `invitation` / patient `enrolment` security event
  (as far back as the audit store keeps events: six years by default);
- active: distinct patients who signed in (a successful `login` by a Patient) in the last 30 days;
- booked online: appointments booked in the window that the portal booked (its booking identifier) out of
  all appointments booked in the window (`created`, else the visit's start);
- messages answered within one business day: of the patient messages sent in the window whose deadline has
  passed, the share the care team answered (a reply in the same conversation) by the same time on the next
  working day (Monday to Friday in the clinic's zone; public holidays are not known here);
- median response time: from a patient message to the first reply after it, over answered messages;
- refill turnaround: from a refill request (`authoredOn`) to its decision (approved: `completed`, declined:
  `cancelled`; the time of that last change, `meta.lastUpdated`), median over the window's decisions.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from .booking import BOOKING_IDENTIFIER_SYSTEM
from .inbound import REFILL_IDENTIFIER_SYSTEM
from .instants import parse_instant
from .messages import thread_id

WINDOW = timedelta(days=30)
AUTH_EVENT_SYSTEM_SUFFIX = "/CodeSystem/portal-auth-event"
PATIENT_SIDE = ("Patient/", "RelatedPerson/")
CARE_TEAM_SIDE = ("Practitioner/", "PractitionerRole/", "Organization/", "CareTeam/")
REFILL_DECIDED = frozenset({"completed", "cancelled", "stopped"})


def _ref(value: Any) -> str:
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return ref if isinstance(ref, str) else ""


def _has_identifier(resource: Mapping[str, Any], system: str) -> bool:
    return any(isinstance(i, Mapping) and i.get("system") == system for i in resource.get("identifier") or [])


# ---- adoption, from the audit trail ---------------------------------------------------------------------------
def auth_event_code(event: Mapping[str, Any]) -> str | None:
    """The local security-event code of one of our AuditEvents (`login`, `enrolment`, ...), or None."""
    for coding in event.get("subtype") or []:
        if isinstance(coding, Mapping) and str(coding.get("system", "")).endswith(AUTH_EVENT_SYSTEM_SUFFIX):
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _actor(event: Mapping[str, Any]) -> str:
    for agent in event.get("agent") or []:
        if isinstance(agent, Mapping) and agent.get("requestor"):
            return _ref(agent.get("who"))
    return ""


def _patients(event: Mapping[str, Any]) -> list[str]:
    refs = (_ref(e.get("what")) for e in event.get("entity") or [] if isinstance(e, Mapping))
    return [r for r in refs if r.startswith("Patient/")]


@dataclass(frozen=True)
class Adoption:
    invited: int
    enrolled: int
    active: int  # signed in within the window


@dataclass
class AdoptionTally:
    """Folds AuditEvents one at a time (a stream read in order, or a store scanned in pages). Holds
    patient references only as set members while counting; nothing of it is stored."""

    invited: set[str] = field(default_factory=set)
    enrolled: set[str] = field(default_factory=set)
    last_sign_in: dict[str, datetime] = field(default_factory=dict)

    def add(self, event: Mapping[str, Any]) -> None:
        code = auth_event_code(event)
        if code not in ("invitation", "enrolment", "login") or event.get("outcome") != "0":
            return
        if code == "invitation":
            self.invited.update(_patients(event))
            return
        actor = _actor(event)
        if not actor.startswith("Patient/"):
            return  # caregivers and staff are not patients adopting the portal
        if code == "enrolment":
            self.enrolled.add(actor)
            return
        when = parse_instant(event.get("recorded"))
        if when is not None and (actor not in self.last_sign_in or when > self.last_sign_in[actor]):
            self.last_sign_in[actor] = when

    def snapshot(self, now: datetime, window: timedelta = WINDOW) -> Adoption:
        since = now - window
        return Adoption(len(self.invited), len(self.enrolled),
                        sum(1 for when in self.last_sign_in.values() if since <= when <= now))


def adoption(events: Iterable[Mapping[str, Any]], now: datetime, window: timedelta = WINDOW) -> Adoption:
    tally = AdoptionTally()
    for event in events:
        tally.add(event)
    return tally.snapshot(now, window)


# ---- appointments ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnlineBooking:
    online: int
    total: int

    @property
    def share(self) -> float | None:
        return self.online / self.total if self.total else None


def _booked_at(appointment: Mapping[str, Any]) -> datetime | None:
    return parse_instant(appointment.get("created")) or parse_instant(appointment.get("start"))


def online_booking(appointments: Iterable[Mapping[str, Any]], now: datetime, window: timedelta = WINDOW
                   ) -> OnlineBooking:
    online = total = 0
    for appointment in appointments:
        if appointment.get("resourceType") != "Appointment" or appointment.get("status") == "entered-in-error":
            continue
        when = _booked_at(appointment)
        if when is None or not now - window <= when <= now:
            continue
        total += 1
        online += _has_identifier(appointment, BOOKING_IDENTIFIER_SYSTEM)
    return OnlineBooking(online, total)


# ---- messages ---------------------------------------------------------------------------------------------
def next_business_day_deadline(sent: datetime, tz: tzinfo) -> datetime:
    """The same clock time on the next working day; a message sent at the weekend counts from Monday 00:00."""
    local = sent.astimezone(tz)
    while local.weekday() >= 5:
        local = datetime.combine(local.date() + timedelta(days=1), time.min, tz)
    deadline = local + timedelta(days=1)
    while deadline.weekday() >= 5:
        deadline += timedelta(days=1)
    return deadline


@dataclass(frozen=True)
class MessageService:
    answered_in_time: int
    due: int  # answered, or unanswered past the deadline
    waiting: int  # unanswered, still within a business day
    median_response_seconds: float | None

    @property
    def share_in_time(self) -> float | None:
        return self.answered_in_time / self.due if self.due else None


def message_service(communications: Iterable[Mapping[str, Any]], now: datetime, tz: tzinfo,
                    window: timedelta = WINDOW) -> MessageService:
    by_thread: dict[str, list[tuple[datetime, bool]]] = {}
    for message in communications:
        if message.get("resourceType") != "Communication" or message.get("status") == "entered-in-error":
            continue
        sent, sender = parse_instant(message.get("sent")), _ref(message.get("sender"))
        if sent is None or not sender.startswith(PATIENT_SIDE + CARE_TEAM_SIDE):
            continue
        by_thread.setdefault(thread_id(message), []).append((sent, sender.startswith(PATIENT_SIDE)))
    in_time = due = waiting = 0
    responses: list[float] = []
    for items in by_thread.values():
        items.sort()
        for i, (sent, from_patient) in enumerate(items):
            if not from_patient or not now - window <= sent <= now:
                continue
            reply = next((t for t, patient in items[i + 1:] if not patient and t >= sent), None)
            deadline = next_business_day_deadline(sent, tz)
            if reply is None:
                if now > deadline:
                    due += 1
                else:
                    waiting += 1
                continue
            due += 1
            in_time += reply <= deadline
            responses.append((reply - sent).total_seconds())
    return MessageService(in_time, due, waiting, statistics.median(responses) if responses else None)


# ---- refills ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefillTurnaround:
    decided: int
    waiting: int  # asked within the window and still open
    median_seconds: float | None


def is_refill_request(resource: Mapping[str, Any]) -> bool:
    return (resource.get("resourceType") == "MedicationRequest" and resource.get("intent") == "proposal"
            and _has_identifier(resource, REFILL_IDENTIFIER_SYSTEM))


def refill_turnaround(requests: Iterable[Mapping[str, Any]], now: datetime, window: timedelta = WINDOW
                      ) -> RefillTurnaround:
    durations: list[float] = []
    waiting = 0
    for request in requests:
        if not is_refill_request(request):
            continue
        asked = parse_instant(request.get("authoredOn"))
        status = request.get("status")
        if status in ("draft", "active", "on-hold"):
            waiting += asked is not None and now - window <= asked <= now
            continue
        decided = parse_instant((request.get("meta") or {}).get("lastUpdated"))
        if status not in REFILL_DECIDED or asked is None or decided is None or not now - window <= decided <= now:
            continue
        durations.append(max((decided - asked).total_seconds(), 0.0))
    return RefillTurnaround(len(durations), waiting, statistics.median(durations) if durations else None)


# ---- all of it --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceFigures:
    computed_at: datetime
    adoption: Adoption | None  # None without an audit store to count from
    booking: OnlineBooking
    messages: MessageService
    refills: RefillTurnaround
