"""The care team's inbox (pure functions): patient messages as work items, staff replies, and the work
item (a Task) that says who has a conversation and whether it is done.

A conversation is waiting when its newest message came from the patient (or their caregiver) and its
work item is not done. Its response clock runs from the oldest patient message after the last staff
message. A staff reply is a Communication in the same thread (`partOf` the first message), from the
practitioner to the patient, with the thread's topic. The work item is one Task per thread
(identifier = the thread id), focus = the thread's first message, for = the patient, owner = whoever has it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .instants import parse_instant
from .messages import EPOCH, IDENTIFIER_SYSTEM, TEXT_MAX, subject_words, thread_id, topic_words
from .references import local_reference, reference_display
from .validation import InboundError

WORK_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/staff-work"
ANSWER_MESSAGE = "answer-message"
WORK_IDENTIFIER_SYSTEM = "urn:portal:inbox-work"
WORK_STATUSES = ("requested", "in-progress", "completed")
PATIENT_SIDE = ("Patient/", "RelatedPerson/")
LATE_AFTER = timedelta(hours=24)  # the clinic answers within one business day


def _ref(value: Any) -> str | None:
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return local_reference(ref) if isinstance(ref, str) else None


def from_patient_side(message: Mapping[str, Any]) -> bool:
    return (_ref(message.get("sender")) or "").startswith(PATIENT_SIDE)


def _sent(message: Mapping[str, Any]) -> datetime:
    return parse_instant(message.get("sent")) or EPOCH


@dataclass
class InboxItem:
    thread: str  # id of the first message
    patient: str  # Patient/<id>
    patient_name: str
    subject: str
    topic: str
    team: str  # who it was written to (Organization/... or Practitioner/...)
    team_name: str
    waiting_since: datetime | None  # the oldest unanswered patient message; None: answered
    last_sent: datetime
    owner: str | None = None
    owner_name: str | None = None
    work_status: str | None = None
    work_id: str | None = None
    messages: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return self.waiting_since is not None and self.work_status != "completed"

    def clock(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - self.waiting_since) if self.waiting_since else timedelta(0)

    def late(self, now: datetime) -> bool:
        return self.waiting and self.clock(now) > LATE_AFTER


def clock_words(span: timedelta) -> str:
    """`5 min`, `3 h 20 min`, `2 days 4 h`: how long a patient has been waiting."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def work_by_thread(tasks: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for task in tasks:
        for ident in task.get("identifier") or []:
            if isinstance(ident, Mapping) and ident.get("system") == WORK_IDENTIFIER_SYSTEM and ident.get("value"):
                out[str(ident["value"])] = task
    return out


def inbox_items(messages: Iterable[Mapping[str, Any]], tasks: Iterable[Mapping[str, Any]],
                names: Mapping[str, str] | None = None) -> list[InboxItem]:
    """One item per conversation, oldest waiting first (then answered ones, newest first)."""
    names = names or {}
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for m in messages:
        if m.get("resourceType") == "Communication" and m.get("id"):
            grouped.setdefault(thread_id(m), []).append(m)
    work = work_by_thread(tasks)
    items: list[InboxItem] = []
    for tid, thread in grouped.items():
        thread.sort(key=lambda m: (_sent(m), str(m.get("id"))))
        first = next((m for m in thread if str(m.get("id")) == tid), thread[0])
        patient = _ref(first.get("subject")) or ""
        if not patient.startswith("Patient/"):
            continue
        waiting_since = None
        for m in thread:
            if from_patient_side(m):
                waiting_since = waiting_since or _sent(m)
            else:
                waiting_since = None
        to = next((_ref(r) for r in first.get("recipient") or [] if _ref(r)), "") or ""
        item = InboxItem(tid, patient, names.get(patient) or reference_display(first.get("subject")) or "",
                         subject_words(first), topic_words(first), to,
                         names.get(to) or _display_of(first.get("recipient")) or "", waiting_since,
                         _sent(thread[-1]), messages=thread)
        task = work.get(tid)
        if task is not None:
            item.work_id = str(task.get("id") or "")
            item.work_status = str(task.get("status") or "")
            item.owner = _ref(task.get("owner"))
            item.owner_name = names.get(item.owner or "") or reference_display(task.get("owner"))
        items.append(item)
    waiting = sorted((i for i in items if i.waiting), key=lambda i: (i.waiting_since or EPOCH, i.thread))
    rest = sorted((i for i in items if not i.waiting), key=lambda i: i.last_sent, reverse=True)
    return waiting + rest


def _display_of(recipients: Any) -> str | None:
    for r in recipients or []:
        if shown := reference_display(r):
            return shown
    return None


def staff_reply(thread_start: Mapping[str, Any], *, practitioner: str, practitioner_name: str, text: str,
                submission: str, answers: str | None = None) -> dict[str, Any]:
    """The Communication a staff member's reply is written as (the gateway checks it again)."""
    patient = _ref(thread_start.get("subject"))
    body: dict[str, Any] = {
        "resourceType": "Communication", "status": "completed",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": submission}],
        "partOf": [{"reference": f"Communication/{thread_id(thread_start)}"}],
        "inResponseTo": [{"reference": f"Communication/{answers or thread_start.get('id')}"}],
        "subject": {"reference": patient},
        "sender": {"reference": practitioner, "display": practitioner_name},
        "recipient": [{"reference": patient}],
        "payload": [{"contentString": text.strip()}],
    }
    for key in ("category", "topic"):
        if thread_start.get(key):
            body[key] = thread_start[key]
    return body


def reply_errors(text: str) -> dict[str, list[str]]:
    words = text.strip()
    if not words:
        return {"text": ["Write your reply."]}
    if len(words) > TEXT_MAX:
        return {"text": [f"Keep the reply to {TEXT_MAX:,} characters or fewer."]}
    return {}


def checked_reply(proposed: Mapping[str, Any], thread_start: Mapping[str, Any], *, practitioner: str,
                  now: datetime) -> dict[str, Any]:
    """A staff reply as the gateway writes it: in the thread, from the practitioner, to the thread's patient,
    with the thread's topic, stamped `sent` now. Raises InboundError with what is wrong."""
    patient = _ref(thread_start.get("subject"))
    if not patient or not patient.startswith("Patient/"):
        raise InboundError("Replies go in a conversation with a patient")
    parts = [_ref(p) for p in proposed.get("partOf") or []]
    if parts != [f"Communication/{thread_id(thread_start)}"]:
        raise InboundError("A reply names the conversation's first message in partOf")
    if _ref(proposed.get("subject")) != patient:
        raise InboundError("A reply is about the conversation's patient")
    if _ref(proposed.get("sender")) != practitioner:
        raise InboundError("A reply is sent by the signed-in practitioner")
    if [_ref(r) for r in proposed.get("recipient") or []] != [patient]:
        raise InboundError("A reply goes to the conversation's patient")
    texts = [p.get("contentString") for p in proposed.get("payload") or [] if isinstance(p, Mapping)]
    if len(texts) != 1 or not isinstance(texts[0], str) or reply_errors(texts[0]):
        raise InboundError(f"A reply is one text of 1 to {TEXT_MAX} characters")
    identifier = [i for i in proposed.get("identifier") or []
                  if isinstance(i, Mapping) and i.get("system") == IDENTIFIER_SYSTEM and i.get("value")]
    if not identifier:
        raise InboundError("A reply needs an identifier, so that a retry does not send it twice")
    reply = {k: v for k, v in proposed.items() if k not in ("id", "meta", "text", "received")}
    for key in ("category", "topic"):
        reply.pop(key, None)
        if thread_start.get(key):
            reply[key] = thread_start[key]
    reply["status"] = "completed"
    reply["sent"] = now.isoformat(timespec="seconds")
    return reply


def work_item(thread_start: Mapping[str, Any], *, status: str, owner: str | None, requester: str,
              owner_name: str | None = None) -> dict[str, Any]:
    """The Task that holds a conversation's work state (who has it, done or not)."""
    task: dict[str, Any] = {
        "resourceType": "Task", "status": status, "intent": "order",
        "identifier": [{"system": WORK_IDENTIFIER_SYSTEM, "value": thread_id(thread_start)}],
        "code": {"coding": [{"system": WORK_SYSTEM, "code": ANSWER_MESSAGE, "display": "Answer a patient message"}]},
        "focus": {"reference": f"Communication/{thread_id(thread_start)}"},
        "for": {"reference": _ref(thread_start.get("subject"))},
        "requester": {"reference": requester},
    }
    if owner:
        task["owner"] = {"reference": owner, **({"display": owner_name} if owner_name else {})}
    return task


def is_work_item(task: Mapping[str, Any]) -> bool:
    return any(c.get("system") == WORK_SYSTEM and c.get("code") == ANSWER_MESSAGE
               for c in (task.get("code") or {}).get("coding") or [] if isinstance(c, Mapping))


def checked_work_item(proposed: Mapping[str, Any], thread_start: Mapping[str, Any], *,
                      current: Mapping[str, Any] | None, allowed_owners: set[str], requester: str,
                      now: datetime) -> dict[str, Any]:
    """A work item as the gateway writes it: for the thread's patient and focus, an owner from the patient's
    care team (or none), one of the work statuses. An update changes only status and owner."""
    if not is_work_item(proposed):
        raise InboundError("Only inbox work items (code answer-message) can be written here")
    status = proposed.get("status")
    if status not in WORK_STATUSES:
        raise InboundError(f"A work item's status is one of: {', '.join(WORK_STATUSES)}")
    owner = _ref(proposed.get("owner"))
    if owner is not None and owner not in allowed_owners:
        raise InboundError("A conversation can be assigned only to someone on the patient's care team")
    base = dict(current) if current is not None else work_item(thread_start, status="requested", owner=None,
                                                               requester=requester)
    expected = work_item(thread_start, status="requested", owner=None, requester=requester)
    if _ref(proposed.get("focus")) != _ref(expected["focus"]) or _ref(proposed.get("for")) != _ref(expected["for"]):
        raise InboundError("A work item is about the conversation's first message and its patient")
    if proposed.get("identifier") != expected["identifier"]:
        raise InboundError("A work item is identified by its conversation")
    task = {k: v for k, v in base.items() if k not in ("meta", "text")}
    task["status"] = status
    task["lastModified"] = now.isoformat(timespec="seconds")
    if owner is not None:
        task["owner"] = proposed["owner"]
    else:
        task.pop("owner", None)
    if current is None:
        task["authoredOn"] = task["lastModified"]
    return task
