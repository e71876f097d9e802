"""Insurance as a patient reads it, and the words of a request to change it (pure functions).

A patient does not write Coverage. Adding or changing a card is a request the front desk confirms: a
message to the billing team (see `insurance_request_text`), because only the clinic can match a card to
a payer it bills and check it with them; until then the record keeps what was confirmed.

A card is put in words in the `locale` the caller names (the catalogue's, with dates written that language's
way); the request's text is for the front desk, and stays in the clinic's language (English).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from locales import N_, gettext_in

from .concepts import concept_text
from .dates import date_words, short_date, typed_date
from .references import reference_display

STATUS_WORDS = {"active": N_("In use"), "cancelled": N_("Ended"), "draft": N_("Waiting for the clinic to check"),
                "entered-in-error": N_("Recorded by mistake")}
RELATIONSHIP_WORDS = {"self": N_("You hold this policy"), "spouse": N_("Through your husband, wife or partner"),
                      "child": N_("Through your parent"), "common": N_("Through your partner"),
                      "injured": N_("As the injured person"), "other": N_("Through someone else")}
ORDER_WORDS = {1: N_("Main insurance"), 2: N_("Second insurance"), 3: N_("Third insurance")}
CHANGES = {"add": N_("Add a new insurance card"), "change": N_("Change the details of a card"),
           "end": N_("Tell us an insurance has ended")}
HOLDERS = {"self": N_("Me"), "spouse": N_("My husband, wife or partner"), "parent": N_("My parent"),
           "other": N_("Someone else")}
MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]{1,29}")
NOTE_MAX = 1000
SUBJECT = "Insurance card update"


@dataclass(frozen=True)
class CoverageCard:
    insurer: str
    kind: str | None
    member_id: str | None
    plan: str | None
    group: str | None
    how: str | None  # how the patient is covered
    status: str
    since: str | None
    until: str | None
    order: str | None
    is_current: bool


def _class_value(coverage: Mapping[str, Any], code: str) -> str | None:
    for item in coverage.get("class") or []:
        if not isinstance(item, Mapping):
            continue
        codes = {c.get("code") for c in (item.get("type") or {}).get("coding") or [] if isinstance(c, Mapping)}
        if code in codes:
            name, value = item.get("name"), item.get("value")
            return f"{name} ({value})" if name and value else str(name or value or "") or None
    return None


def in_words(words: Mapping[str, str], locale: str = "en") -> dict[str, str]:
    """One of the tables above (CHANGES, HOLDERS...) in `locale`."""
    return {key: gettext_in(locale, text) for key, text in words.items()}


def _relationship(coverage: Mapping[str, Any]) -> str | None:
    rel = coverage.get("relationship") or {}
    for coding in rel.get("coding") or [] if isinstance(rel, Mapping) else []:
        if isinstance(coding, Mapping) and coding.get("code") in RELATIONSHIP_WORDS:
            return RELATIONSHIP_WORDS[coding["code"]]
    return None


def coverage_card(coverage: Mapping[str, Any], today: date, tz: tzinfo | None = None,
                  locale: str = "en") -> CoverageCard:
    """One insurance card in words, in `locale` (the insurer, plan and kind are the record's own words)."""

    def _(message: str | None) -> str | None:
        return gettext_in(locale, message) if message else None

    payors = [reference_display(p) for p in coverage.get("payor") or []]
    period = coverage.get("period") if isinstance(coverage.get("period"), Mapping) else {}
    end = str(period.get("end") or "")
    status = str(coverage.get("status") or "")
    ended = status == "cancelled" or bool(end and end[:10] < today.isoformat())
    order = coverage.get("order")
    return CoverageCard(
        insurer=next((p for p in payors if p), None) or gettext_in(locale, N_("An insurer not named in your record")),
        kind=(concept_text(coverage.get("type")) or "").capitalize() or None,
        member_id=str(coverage.get("subscriberId") or "") or None,
        plan=_class_value(coverage, "plan"),
        group=_class_value(coverage, "group"),
        how=_(_relationship(coverage)),
        status=gettext_in(locale, N_("Ended") if ended and status == "active"
                          else STATUS_WORDS.get(status, N_("Status not known"))),
        since=date_words(period["start"], tz, locale) if period.get("start") else None,
        until=date_words(end, tz, locale) if end else None,
        order=_(ORDER_WORDS.get(order)) if isinstance(order, int) else None,
        is_current=not ended and status == "active",
    )


def coverage_cards(coverages: Iterable[Any], today: date, tz: tzinfo | None = None,
                   locale: str = "en") -> list[CoverageCard]:
    """Current cards first (main insurance first), then waiting and ended ones; mistakes left out."""
    cards = [(c, coverage_card(c, today, tz, locale)) for c in coverages
             if isinstance(c, Mapping) and c.get("status") != "entered-in-error"]
    cards.sort(key=lambda pair: (not pair[1].is_current, pair[0].get("status") != "draft",
                                 pair[0].get("order") if isinstance(pair[0].get("order"), int) else 99))
    return [card for _, card in cards]


def _words(fields: Mapping[str, str], name: str) -> str:
    return " ".join(str(fields.get(name) or "").split())


def insurance_errors(fields: Mapping[str, str], today: date, locale: str = "en") -> dict[str, list[str]]:
    """What is wrong with the insurance form, field by field, in words in `locale`."""

    def _(message: str) -> str:
        return gettext_in(locale, message)

    def too_long(most: int) -> str:
        return _("This can be at most %(most)s characters.") % {"most": most}

    errors: dict[str, list[str]] = {}
    change = fields.get("change", "")
    if change not in CHANGES:
        errors["change"] = [_("Choose what you would like to do.")]
    if not _words(fields, "insurer"):
        errors["insurer"] = [_("Enter the name of the insurance company, as it is on the card.")]
    elif len(_words(fields, "insurer")) > 100:
        errors["insurer"] = [too_long(100)]
    member = _words(fields, "member_id")
    if change != "end" and not member:
        errors["member_id"] = [_("Enter the member ID from the card.")]
    elif member and not MEMBER_ID.fullmatch(member):
        errors["member_id"] = [_("A member ID has 2 to 30 letters and numbers, as on the card.")]
    group = _words(fields, "group")
    if group and not MEMBER_ID.fullmatch(group):
        errors["group"] = [_("A group number has 2 to 30 letters and numbers, as on the card.")]
    if fields.get("holder", "") not in HOLDERS:
        errors["holder"] = [_("Choose who holds the policy.")]
    if fields.get("holder") not in ("", "self", None) and not _words(fields, "holder_name"):
        errors["holder_name"] = [_("Enter the name of the person who holds the policy.")]
    if len(_words(fields, "holder_name")) > 100:
        errors["holder_name"] = [too_long(100)]
    when = _words(fields, "start")
    if when:
        day = typed_date(when)
        if day is None:
            errors["start"] = [_("Enter a real date, for example 01/01/2027.")]
        elif day.year < 1900 or (day - today).days > 366:
            errors["start"] = [_("Enter a date from the card, no more than a year from now.")]
    if len(str(fields.get("note") or "")) > NOTE_MAX:
        errors["note"] = [too_long(NOTE_MAX)]
    return errors


def _start_words(fields: Mapping[str, str]) -> str:
    day = typed_date(_words(fields, "start"))
    return short_date(day) if day else "not given"


def insurance_request_text(fields: Mapping[str, str]) -> str:
    """The message the front desk reads: the patient's request, one fact a line."""
    holder = fields.get("holder", "self")
    lines = [
        f"Request: {CHANGES[fields['change']]}",
        f"Insurance company: {_words(fields, 'insurer')}",
        f"Member ID: {_words(fields, 'member_id') or 'not given'}",
        f"Group number: {_words(fields, 'group') or 'not given'}",
        f"Policy holder: {HOLDERS[holder]}" + (f" ({_words(fields, 'holder_name')})" if holder != "self" else ""),
        f"Starts or ended on: {_start_words(fields)}",
    ]
    if note := str(fields.get("note") or "").strip():
        lines += ["", note]
    return "\n".join(lines)
