"""Checks of a typed card, with a message per field (pure). The card itself is never stored or logged."""

from __future__ import annotations

import re
from datetime import date

from .provider import CardDetails

DIGITS = re.compile(r"[0-9]{12,19}")


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _expiry(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*([0-9]{1,2})\s*/\s*([0-9]{2}|[0-9]{4})\s*", text)
    if not match:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    return (month, year) if 1 <= month <= 12 else None


def card_from_form(fields: dict[str, str], today: date) -> tuple[CardDetails | None, dict[str, list[str]]]:
    """The card from the payment form's fields, or the problem with each field that is wrong."""
    errors: dict[str, list[str]] = {}
    name = fields.get("card_name", "").strip()
    number = re.sub(r"[\s-]", "", fields.get("card_number", ""))
    cvc = fields.get("card_cvc", "").strip()
    if not name:
        errors["card_name"] = ["Enter the name on the card."]
    elif len(name) > 100:
        errors["card_name"] = ["The name can be up to 100 letters long."]
    if not number:
        errors["card_number"] = ["Enter the card number."]
    elif not DIGITS.fullmatch(number) or not luhn_ok(number):
        errors["card_number"] = ["This is not a card number. Check the digits on the front of your card."]
    expiry = _expiry(fields.get("card_expiry", ""))
    if not fields.get("card_expiry", "").strip():
        errors["card_expiry"] = ["Enter the expiry date, for example 04/29."]
    elif expiry is None:
        errors["card_expiry"] = ["Write the expiry date as month/year, for example 04/29."]
    elif expiry[1] < today.year or (expiry[1] == today.year and expiry[0] < today.month):
        errors["card_expiry"] = ["This card has expired. Use another card."]
    if not re.fullmatch(r"[0-9]{3,4}", cvc):
        errors["card_cvc"] = ["Enter the 3 or 4 digit security code from the back of the card."]
    if errors or expiry is None:
        return None, errors
    return CardDetails(number=number, exp_month=expiry[0], exp_year=expiry[1], cvc=cvc, name=name), {}
