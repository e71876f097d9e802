"""Secure messages as a patient reads and writes them (pure functions).

Threads: a message that starts a conversation has no `partOf`; every later one names the first in
`partOf` and the one it answers in `inResponseTo`. The patient picks a topic (the coded `category`)
and writes a subject line (`topic.text`). A message to the patient is unread until it has `received`.

Words for the reader are in the `locale` passed in (English by default); what is written into the record
(a topic's display) stays English, the EHR's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .attachments import kind_words, size_words
from .dates import date_time_words
from .instants import parse_instant
from .quantities import number_text
from .references import local_reference, reference_display

TOPIC_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/message-topic"
IDENTIFIER_SYSTEM = "urn:portal:message"
# code -> (what the patient reads, the team that answers it)
TOPICS: dict[str, tuple[str, str]] = {
    "care": (N_("Question about my care"), "Organization/org-team-care"),
    "medication": (N_("Medication question"), "Organization/org-team-care"),
    "billing": (N_("Billing question"), "Organization/org-team-billing"),
    "referral": (N_("Referral"), "Organization/org-team-referrals"),
}
# Staff roles on the CareTeam a patient may write to by name.
NAMED_ROLES = frozenset({"clinician", "nurse"})
STAFF_ROLE_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/staff-role"
SUBJECT_MAX = 120
TEXT_MAX = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CARE_TEAM = N_("Your care team")


@dataclass(frozen=True)
class Recipient:
    reference: str
    name: str
    about: str  # what they answer, in words


@dataclass(frozen=True)
class AttachmentView:
    title: str
    kind: str
    size: str
    binary_id: str | None


@dataclass(frozen=True)
class MessageView:
    id: str
    sender: str
    from_me: bool
    when: str
    sent: datetime | None
    texts: list[str]
    attachments: list[AttachmentView]
    unread: bool


@dataclass
class Thread:
    id: str
    subject: str
    topic: str
    with_whom: str
    messages: list[MessageView] = field(default_factory=list)
    reply_to: str | None = None  # the id of the latest message, which a reply answers
    reply_recipient: str | None = None  # who a reply goes to

    @property
    def unread(self) -> int:
        return sum(1 for m in self.messages if m.unread)

    @property
    def last(self) -> MessageView | None:
        return self.messages[-1] if self.messages else None


def _ref(value: Any) -> str | None:
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return local_reference(ref) if isinstance(ref, str) else None


def thread_id(message: Mapping[str, Any]) -> str:
    """The id of the message that started this one's conversation."""
    for part in message.get("partOf") or []:
        ref = _ref(part)
        if ref and ref.startswith("Communication/"):
            return ref.split("/", 1)[1]
    return str(message.get("id"))


def is_to(message: Mapping[str, Any], me: Iterable[str]) -> bool:
    mine = set(me)
    return any(_ref(r) in mine for r in message.get("recipient") or [])


def is_unread(message: Mapping[str, Any], me: Iterable[str]) -> bool:
    return is_to(message, me) and not message.get("received")


def unread_count(messages: Iterable[Mapping[str, Any]], me: Iterable[str]) -> int:
    mine = list(me)
    return sum(1 for m in messages if is_unread(m, mine))


def topic_choices(locale: str = ENGLISH) -> dict[str, str]:
    """The topics a patient picks from: {code: words}."""
    return {code: gettext_in(locale, words) for code, (words, _team) in TOPICS.items()}


def topic_words(message: Mapping[str, Any], locale: str = ENGLISH) -> str:
    for category in message.get("category") or []:
        for coding in (category or {}).get("coding") or []:
            if coding.get("system") == TOPIC_SYSTEM and coding.get("code") in TOPICS:
                return gettext_in(locale, TOPICS[coding["code"]][0])
        if isinstance(category, Mapping) and isinstance(category.get("text"), str):
            return category["text"]
    return gettext_in(locale, "Message")


def subject_words(message: Mapping[str, Any], locale: str = ENGLISH) -> str:
    topic = message.get("topic")
    text = topic.get("text") if isinstance(topic, Mapping) else None
    return text.strip() if isinstance(text, str) and text.strip() else topic_words(message, locale)


def _attachments(message: Mapping[str, Any], locale: str = ENGLISH) -> list[AttachmentView]:
    out = []
    for part in message.get("payload") or []:
        att = part.get("contentAttachment") if isinstance(part, Mapping) else None
        if not isinstance(att, Mapping):
            continue
        url = att.get("url")
        binary = local_reference(url) if isinstance(url, str) else ""
        binary_id = binary.split("/", 1)[1] if binary.startswith("Binary/") else None
        out.append(AttachmentView(str(att.get("title") or "attachment"), kind_words(att.get("contentType"), locale),
                                  size_words(att.get("size"), locale), binary_id))
    return out


def message_view(message: Mapping[str, Any], me: Iterable[str], today: date, tz: tzinfo | None,
                 names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> MessageView:
    mine = list(me)
    sender = _ref(message.get("sender"))
    from_me = sender in mine
    who = gettext_in(locale, "You") if from_me else (names or {}).get(sender or "") \
        or reference_display(message.get("sender")) or gettext_in(locale, CARE_TEAM)
    texts = [p["contentString"] for p in message.get("payload") or []
             if isinstance(p, Mapping) and isinstance(p.get("contentString"), str)]
    return MessageView(str(message.get("id")), who, from_me, date_time_words(message.get("sent"), today, tz, locale),
                       parse_instant(message.get("sent")), texts, _attachments(message, locale),
                       is_unread(message, mine))


def threads(messages: Iterable[Mapping[str, Any]], me: Iterable[str], today: date, tz: tzinfo | None = None,
            names: Mapping[str, str] | None = None, locale: str = ENGLISH) -> list[Thread]:
    """Conversations, the one with the newest message first; messages within one oldest first."""
    mine = list(me)
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for m in messages:
        if m.get("resourceType") == "Communication" and m.get("id"):
            grouped.setdefault(thread_id(m), []).append(m)
    out = []
    for tid, items in grouped.items():
        items.sort(key=lambda m: (parse_instant(m.get("sent")) or EPOCH, str(m.get("id"))))
        first = next((m for m in items if str(m.get("id")) == tid), items[0])
        latest = items[-1]
        other = _other_party(items, mine)
        thread = Thread(tid, subject_words(first, locale), topic_words(first, locale),
                        (names or {}).get(other or "") or _display_of(items, other) or gettext_in(locale, CARE_TEAM))
        thread.messages = [message_view(m, mine, today, tz, names, locale) for m in items]
        thread.reply_to = str(latest.get("id"))
        thread.reply_recipient = other
        out.append(thread)
    out.sort(key=lambda t: (t.last.sent.timestamp() if t.last and t.last.sent else 0.0), reverse=True)
    return out


def _other_party(items: list[Mapping[str, Any]], mine: list[str]) -> str | None:
    """Who the patient talks with in a thread: the latest sender who is not them, else the first recipient."""
    for m in reversed(items):
        sender = _ref(m.get("sender"))
        if sender and sender not in mine:
            return sender
    for m in items:
        for r in m.get("recipient") or []:
            if (ref := _ref(r)) and ref not in mine:
                return ref
    return None


def _display_of(items: list[Mapping[str, Any]], ref: str | None) -> str | None:
    for m in items:
        for value in [m.get("sender"), *(m.get("recipient") or [])]:
            if _ref(value) == ref and ref is not None:
                return reference_display(value)
    return None


def care_team_recipients(care_teams: Iterable[Mapping[str, Any]]) -> list[Recipient]:
    """Who a patient may write to: the message teams first, then named clinicians and nurses."""
    teams: dict[str, Recipient] = {}
    people: dict[str, Recipient] = {}
    for team in care_teams:
        if team.get("status") not in (None, "active"):
            continue
        for p in team.get("participant") or []:
            ref = _ref(p.get("member"))
            name = reference_display(p.get("member"))
            if not ref or not name:
                continue
            roles = p.get("role") or []
            about = next((r.get("text") for r in roles if isinstance(r, Mapping) and r.get("text")), "")
            staff = {c.get("code") for r in roles for c in (r or {}).get("coding") or []
                     if c.get("system") == STAFF_ROLE_SYSTEM}
            if ref.startswith("Organization/"):
                teams.setdefault(ref, Recipient(ref, name, about))
            elif ref.startswith("Practitioner/") and staff & NAMED_ROLES:
                people.setdefault(ref, Recipient(ref, name, str(about)))
    return [*teams.values(), *people.values()]


def compose_errors(form: Mapping[str, str], recipients: Iterable[Recipient], *, reply: bool = False,
                   locale: str = ENGLISH) -> dict[str, list[str]]:
    """Field-level problems with a message form, in plain words ({} when it can be sent)."""
    errors: dict[str, list[str]] = {}
    if not reply:
        if form.get("to", "") not in {r.reference for r in recipients}:
            errors["to"] = [gettext_in(locale, "Choose who should get your message.")]
        if form.get("topic", "") not in TOPICS:
            errors["topic"] = [gettext_in(locale, "Choose what your message is about.")]
        subject = form.get("subject", "").strip()
        if not subject:
            errors["subject"] = [gettext_in(locale, "Write a few words about what this is about.")]
        elif len(subject) > SUBJECT_MAX:
            errors["subject"] = [gettext_in(locale, "Keep the subject to %(max)s characters or fewer.")
                                 % {"max": number_text(SUBJECT_MAX, locale)}]
    text = form.get("text", "").strip()
    if not text:
        errors["text"] = [gettext_in(locale, "Write your message.")]
    elif len(text) > TEXT_MAX:
        errors["text"] = [gettext_in(locale, "Your message is too long. Keep it to %(max)s characters or fewer.")
                          % {"max": number_text(TEXT_MAX, locale)}]
    return errors


def outgoing(*, patient_ref: str, recipient: str, text: str, submission: str, topic: str | None = None,
             subject: str | None = None, thread: Mapping[str, Any] | None = None, answers: str | None = None,
             attachment: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Communication the portal asks the gateway to write. `submission` names one form submission:
    its identifier lets the EHR find a retried send instead of writing it twice."""
    body: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": submission}],
        "subject": {"reference": patient_ref},
        "recipient": [{"reference": recipient}],
        "payload": [{"contentString": text.strip()}],
    }
    if thread is not None:
        # A reply keeps the conversation's topic and subject line.
        for key in ("category", "topic"):
            if thread.get(key):
                body[key] = thread[key]
        body["partOf"] = [{"reference": f"Communication/{thread_id(thread)}"}]
        body["inResponseTo"] = [{"reference": f"Communication/{answers or thread.get('id')}"}]
    else:
        words = TOPICS[topic or "care"][0]
        body["category"] = [{"coding": [{"system": TOPIC_SYSTEM, "code": topic, "display": words}], "text": words}]
        body["topic"] = {"text": (subject or words).strip()}
    if attachment:
        body["payload"].append({"contentAttachment": dict(attachment)})
    return body
