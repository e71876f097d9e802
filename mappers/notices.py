"""What each kind of patient notice says (notifications sends them; the profile page lists the kinds). Pure.

A notice never carries PHI: not the message, not the result, not the appointment's time or clinician - only
"you have something new" and a link into the portal, where the person signs in to see it. Subjects and
bodies are fixed texts per kind; the link is a path on our own public URL (never another site's, so a notice
cannot be turned into a phishing link).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from locales import N_, gettext_in

from .instants import parse_instant


@dataclass(frozen=True)
class Kind:
    name: str
    subject: str
    line: str
    label: str  # on the profile page, where people switch kinds on and off (marked: shown with gettext)
    choosable: bool = True  # security notices are always sent: they are how a person learns of a break-in


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("message", "You have a new message", "You have a new message in your patient portal.",
         N_("New messages and replies from your care team")),
    Kind("result", "A new result is ready", "A new test result is ready to view in your patient portal.",
         N_("Test results ready to view")),
    Kind("request", "News about your request", "There is news about a request you made in your patient portal.",
         N_("Decisions on your refill, referral and other requests")),
    Kind("appointment", "Your appointments changed",
         "One of your appointments was booked, changed or cancelled. See the details in your patient portal.",
         N_("Appointments booked, changed or cancelled")),
    Kind("reminder", "A reminder from your clinic", "You have a reminder in your patient portal.",
         N_("Reminders (an upcoming visit, something to do)")),
    Kind("new-device", "A new sign-in to your account",
         "Someone signed in to your patient portal on a phone or computer we have not seen before. If this "
         "was not you, change your password and call the clinic right away.",
         N_("Sign-ins from a new device"), choosable=False),
    Kind("sign-in-settings", "Your sign-in settings changed",
         "Your sign-in settings for the patient portal changed (your password, app or recovery codes). If this "
         "was not you, call the clinic right away.",
         N_("Changes to your password or second step"), choosable=False),
    Kind("invitation", "Your patient portal invitation",
         "Your clinic invites you to use the patient portal. Open the link to set up your account; it works "
         "once and expires.",
         N_("Invitations"), choosable=False),
)}

CHOOSABLE = tuple(k for k in KINDS.values() if k.choosable)


@dataclass(frozen=True)
class Message:
    key: str  # the notice's key digest: the Message-ID, so a receiving system can drop a repeat
    subject: str
    text: str


def link_problem(link: str) -> str | None:
    """Why `link` cannot go into a notice, or None: it must be a path on our own site."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not link.startswith("/") or link.startswith("//"):
        return "a notice links to a path on the portal's own site (e.g. /portal/messages)"
    if any(c in link for c in "\r\n \t"):
        return "the link has white space in it"
    return None


def compose(kind: str, link: str, key: str, *, public_url: str, portal_name: str = "patient portal") -> Message:
    """The e-mail (or text message) for one notice."""
    what = KINDS[kind]
    url = public_url.rstrip("/") + link
    text = (f"{what.line}\n\nSign in to see it: {url}\n\n"
            f"This message was sent by your {portal_name}. For your privacy it holds no health information. "
            "To choose which notices you get, see Your profile in the portal.\n")
    return Message(key, what.subject, text)


def short_text(message: Message) -> str:
    """The text-message form: one line and the link."""
    first, _, rest = message.text.partition("\n\n")
    url = rest.split("Sign in to see it: ", 1)[-1].split("\n", 1)[0]
    return f"{first} {url}"


_EMAIL = re.compile(r"[^\s@<>,;\"]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}")


def notice_email_problem(value: str, locale: str = "en") -> str | None:
    """Why `value` cannot be the address notices go to (in `locale`), or None (empty is allowed: no e-mail
    notices)."""
    if value and not _EMAIL.fullmatch(value):
        return gettext_in(locale, N_("Enter an e-mail address like name@example.com, or leave it empty."))
    return None


# What counts as a released result: a report or a lab/imaging observation the clinic has made final, issued
# lately (an old result edited or reloaded is not news).
RELEASED = frozenset({"final", "amended", "corrected"})
RESULT_CATEGORIES = frozenset({"LAB", "RAD", "laboratory", "imaging"})
RECENT = timedelta(days=7)


def released_results(resources: list[dict], now: datetime) -> list[str]:
    """The patients with a result newly ready among these changed resources, each once. A patient's own notes
    (survey category), results still pending and results issued more than a week ago are not announced."""
    out: dict[str, None] = {}
    for resource in resources:
        if resource.get("resourceType") not in ("DiagnosticReport", "Observation"):
            continue
        if resource.get("status") not in RELEASED:
            continue
        codes = {c.get("code") for cat in resource.get("category") or [] if isinstance(cat, dict)
                 for c in cat.get("coding") or [] if isinstance(c, dict)}
        if not codes & RESULT_CATEGORIES:
            continue
        issued = parse_instant(resource.get("issued") or resource.get("effectiveDateTime"))
        if issued is None or not now - RECENT <= issued <= now + timedelta(days=1):
            continue
        subject = str((resource.get("subject") or {}).get("reference") or "")
        if re.fullmatch(r"Patient/[A-Za-z0-9\-.]{1,64}", subject):
            out[subject.split("/", 1)[1]] = None
    return list(out)
