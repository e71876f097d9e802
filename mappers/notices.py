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

from locales import ENGLISH, N_, gettext_in

from .instants import parse_instant


@dataclass(frozen=True)
class Kind:
    """Subject, line and label are English message ids: `compose` writes them in the reader's language."""

    name: str
    subject: str
    line: str
    label: str  # on the profile page, where people switch kinds on and off
    choosable: bool = True  # security notices are always sent: they are how a person learns of a break-in


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("message", N_("You have a new message"), N_("You have a new message in your patient portal."),
         N_("New messages and replies from your care team")),
    Kind("result", N_("A new result is ready"), N_("A new test result is ready to view in your patient portal."),
         N_("Test results ready to view")),
    Kind("request", N_("News about your request"),
         N_("There is news about a request you made in your patient portal."),
         N_("Decisions on your refill, referral and other requests")),
    Kind("appointment", N_("Your appointments changed"),
         N_("One of your appointments was booked, changed or cancelled. See the details in your patient portal."),
         N_("Appointments booked, changed or cancelled")),
    Kind("reminder", N_("A reminder from your clinic"), N_("You have a reminder in your patient portal."),
         N_("Reminders (an upcoming visit, something to do)")),
    Kind("new-device", N_("A new sign-in to your account"),
         N_("Someone signed in to your patient portal on a phone or computer we have not seen before. If this "
            "was not you, change your password and call the clinic right away."),
         N_("Sign-ins from a new device"), choosable=False),
    Kind("sign-in-settings", N_("Your sign-in settings changed"),
         N_("Your sign-in settings for the patient portal changed (your password, app or recovery codes). If this "
            "was not you, call the clinic right away."),
         N_("Changes to your password or second step"), choosable=False),
    Kind("invitation", N_("Your patient portal invitation"),
         N_("Your clinic invites you to use the patient portal. Open the link to set up your account; it works "
            "once and expires."),
         N_("Invitations"), choosable=False),
)}

CHOOSABLE = tuple(k for k in KINDS.values() if k.choosable)


@dataclass(frozen=True)
class Message:
    key: str  # the notice's key digest: the Message-ID, so a receiving system can drop a repeat
    subject: str
    text: str  # the e-mail
    short: str  # the text message: the notice's line and the link


def link_problem(link: str) -> str | None:
    """Why `link` cannot go into a notice, or None: it must be a path on our own site."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not link.startswith("/") or link.startswith("//"):
        return "a notice links to a path on the portal's own site (e.g. /portal/messages)"
    if any(c in link for c in "\r\n \t"):
        return "the link has white space in it"
    return None


PORTAL_NAME = N_("patient portal")  # the default name; a clinic's own name is used as it is, in every language
SIGN_IN_TO_SEE = N_("Sign in to see it: %(url)s")
FOOTER = N_("This message was sent by your %(portal)s. For your privacy it holds no health information. To choose "
            "which notices you get, see Your profile in the portal.")


def compose(kind: str, link: str, key: str, *, public_url: str, portal_name: str = PORTAL_NAME,
            locale: str = ENGLISH) -> Message:
    """The e-mail (or text message) for one notice, in `locale` (the reader's language)."""
    what = KINDS[kind]
    url = public_url.rstrip("/") + link
    line = gettext_in(locale, what.line)
    name = gettext_in(locale, portal_name) if portal_name else portal_name  # "" would be the catalogue's header
    text = (f"{line}\n\n{gettext_in(locale, SIGN_IN_TO_SEE) % {'url': url}}\n\n"
            f"{gettext_in(locale, FOOTER) % {'portal': name}}\n")
    return Message(key, gettext_in(locale, what.subject), text, f"{line} {url}")


def short_text(message: Message) -> str:
    """The text-message form: one line and the link."""
    return message.short


_EMAIL = re.compile(r"[^\s@<>,;\"]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}")


def notice_email_problem(value: str, locale: str = ENGLISH) -> str | None:
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
