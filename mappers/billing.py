"""Statements (Invoice) in plain words for patients, and the payment request the portal sends (pure).

A statement's lines carry the clinic's price (`base`, CPT-coded), the insurer's contractual adjustment
(a `deduction` coded CARC 45), what the insurer paid (a `deduction` coded adjudication `benefit`) or a
self-pay discount; `totalNet` is what the patient owes. An `issued` statement is open, `balanced` is settled.
A statement is put in words in the `locale` the caller names (words from the catalogue, dates and amounts
written that language's way, e.g. `es_US`); the payment request is the same in every language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency

from locales import N_, gettext_in

from .dates import ENGLISH, date_words, short_date, unknown_date
from .dates import _cldr as cldr_locale
from .dates import _english as is_english
from .instants import parse_fhir_time

CPT = "http://www.ama-assn.org/go/cpt"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
PAYMENT_TOKEN_SYSTEM = "urn:portal:payment-token"  # noqa: S105 - a code system, not a secret
PAYMENT_SUBMISSION_SYSTEM = "urn:portal:payment-submission"
ZERO = Decimal("0.00")
DUE_DAYS = 30

# Billing codes in everyday words (what the clinic's fee schedule calls them, said simply).
PLAIN_CPT = {
    "99212": N_("Short office visit"), "99213": N_("Office visit"), "99214": N_("Longer office visit"),
    "99392": N_("Yearly check-up (child, 1 to 4)"), "99393": N_("Yearly check-up (child, 5 to 11)"),
    "99394": N_("Yearly check-up (age 12 to 17)"), "99395": N_("Yearly check-up (age 18 to 39)"),
    "99396": N_("Yearly check-up (age 40 to 64)"), "99397": N_("Yearly check-up (age 65 and over)"),
    "36415": N_("Taking a blood sample"), "87880": N_("Quick strep throat test"), "81002": N_("Urine test"),
    "90471": N_("Giving a vaccine"), "90472": N_("Giving another vaccine"), "90686": N_("Flu vaccine"),
    "90656": N_("Flu vaccine"),
    "90662": N_("Flu vaccine (high dose)"), "90715": N_("Tetanus, diphtheria and whooping cough vaccine (Tdap)"),
    "90750": N_("Shingles vaccine"), "90677": N_("Pneumonia vaccine"), "90700": N_("DTaP vaccine (child)"),
    "90713": N_("Polio vaccine"), "90707": N_("Measles, mumps and rubella vaccine (MMR)"),
    "90716": N_("Chickenpox vaccine"),
    "90734": N_("Meningitis vaccine"), "90651": N_("HPV vaccine"),
}


def money(value: Any) -> Decimal:
    """A FHIR Money's value as exact cents (0 when missing or not a number)."""
    raw = value.get("value") if isinstance(value, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return ZERO
    try:
        return Decimal(str(raw)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return ZERO


def dollars(amount: Decimal, locale: str = ENGLISH) -> str:
    """`$1,234.50` (a negative amount reads `-$5.00`); in another `locale` as it writes dollars (US Spanish
    `$1,234.50`, Spain's `1.234,50 US$`)."""
    if not is_english(locale):
        return format_currency(amount, "USD", locale=cldr_locale(locale))
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def _code(concept: Any, system: str) -> str | None:
    for coding in (concept or {}).get("coding") or [] if isinstance(concept, dict) else []:
        if isinstance(coding, dict) and coding.get("system") == system:
            return coding.get("code")
    return None


@dataclass
class Parts:
    """A price split the way a statement splits it."""

    charges: Decimal = ZERO
    adjustment: Decimal = ZERO  # the insurer's contractual discount
    insurance_paid: Decimal = ZERO
    discount: Decimal = ZERO  # self-pay discount
    payer: str | None = None

    def add(self, component: dict[str, Any]) -> None:
        kind, amount, concept = component.get("type"), money(component.get("amount")), component.get("code")
        if kind == "base":
            self.charges += amount
        elif kind == "discount":
            self.discount += amount
        elif kind == "deduction" and _code(concept, ADJUDICATION) == "benefit":
            self.insurance_paid += amount
            text = (concept or {}).get("text") or ""
            self.payer = text.removeprefix("Paid by ").strip() or self.payer
        elif kind == "deduction":
            self.adjustment += amount

    @property
    def you_owe(self) -> Decimal:
        return max(self.charges - self.adjustment - self.insurance_paid - self.discount, ZERO)


@dataclass
class Line:
    what: str
    code: str | None
    parts: Parts


@dataclass
class Statement:
    id: str
    number: str
    date_text: str
    due_text: str | None
    clinician: str | None
    open: bool
    status_text: str
    totals: Parts
    balance: Decimal  # what is still to pay (0 once settled)
    currency: str
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the record's own notes (as the clinic wrote them)
    locale: str = ENGLISH  # the language its words are in

    @property
    def balance_text(self) -> str:
        return dollars(self.balance, self.locale)

    def money(self, amount: Decimal) -> str:
        """An amount of this statement, written the way its language writes dollars."""
        return dollars(amount, self.locale)


def _line(item: dict[str, Any], locale: str) -> Line:
    parts = Parts()
    code = None
    what = None
    for component in item.get("priceComponent") or []:
        if not isinstance(component, dict):
            continue
        parts.add(component)
        if component.get("type") == "base":
            code = _code(component.get("code"), CPT)
            plain = PLAIN_CPT.get(code or "")
            what = (gettext_in(locale, plain) if plain else None) or (component.get("code") or {}).get("text") or \
                next((c.get("display") for c in (component.get("code") or {}).get("coding") or []
                      if isinstance(c, dict) and c.get("display")), None)
    if what is None:
        what = (item.get("chargeItemReference") or {}).get("display") or gettext_in(locale, N_("Charge"))
    return Line(what=what, code=code, parts=parts)


def statement(invoice: dict[str, Any], tz: tzinfo | None = None, locale: str = ENGLISH) -> Statement:
    """One statement in words, in `locale`."""
    totals = Parts()
    for component in invoice.get("totalPriceComponent") or []:
        if isinstance(component, dict):
            totals.add(component)
    lines = [_line(item, locale) for item in invoice.get("lineItem") or [] if isinstance(item, dict)]
    if not invoice.get("totalPriceComponent"):
        for line in lines:
            for name in ("charges", "adjustment", "insurance_paid", "discount"):
                setattr(totals, name, getattr(totals, name) + getattr(line.parts, name))
            totals.payer = totals.payer or line.parts.payer
    net = money(invoice.get("totalNet")) if invoice.get("totalNet") else totals.you_owe
    status = invoice.get("status")
    is_open = status == "issued" and net > 0
    issued = parse_fhir_time(invoice.get("date"))
    due = None
    if is_open and issued is not None:
        due = short_date(issued.local_day(tz) + timedelta(days=DUE_DAYS), locale)
    if status == "cancelled" or status == "entered-in-error":
        status_text = N_("Cancelled")
    elif is_open:
        status_text = N_("To pay")
    elif net > 0:
        status_text = N_("Paid")
    else:
        status_text = N_("Nothing to pay")
    clinician = next((p.get("actor", {}).get("display") for p in invoice.get("participant") or []
                      if isinstance(p, dict) and isinstance(p.get("actor"), dict)), None)
    notes = [n["text"] for n in invoice.get("note") or [] if isinstance(n, dict) and isinstance(n.get("text"), str)]
    return Statement(
        id=str(invoice.get("id")),
        number=next((i.get("value") for i in invoice.get("identifier") or [] if isinstance(i, dict)
                     and i.get("value")), None) or str(invoice.get("id")),
        date_text=date_words(invoice.get("date"), tz, locale) if invoice.get("date") else unknown_date(locale),
        due_text=due, clinician=clinician, open=is_open, status_text=gettext_in(locale, status_text), totals=totals,
        balance=net if is_open else ZERO, currency=(invoice.get("totalNet") or {}).get("currency") or "USD",
        lines=lines, notes=notes, locale=locale,
    )


def statements(invoices: list[dict[str, Any]], tz: tzinfo | None = None, locale: str = ENGLISH) -> list[Statement]:
    """Open statements first, then the rest; newest first within each (in words in `locale`)."""
    shown = [(inv.get("date") or "", statement(inv, tz, locale)) for inv in invoices
             if isinstance(inv, dict) and inv.get("resourceType") == "Invoice"
             and inv.get("status") not in ("draft", "entered-in-error")]
    shown.sort(key=lambda pair: pair[0], reverse=True)
    return [s for _, s in shown if s.open] + [s for _, s in shown if not s.open]


def balance_due(shown: list[Statement]) -> Decimal:
    return sum((s.balance for s in shown), ZERO)


def payment_request(invoice_id: str, amount: Decimal, currency: str, token: str, submission: str,
                    now: datetime) -> dict[str, Any]:
    """What the portal sends to pay a statement in full: a PaymentReconciliation naming the statement, the
    amount and the card token. The gateway's rule charges the token and writes the real record."""
    return {
        "resourceType": "PaymentReconciliation",
        "status": "active",
        "identifier": [{"system": PAYMENT_SUBMISSION_SYSTEM, "value": submission}],
        # Day only: the same form sent again a moment later must be the same request (the gateway refuses an
        # Idempotency-Key reused for a different body); the payment record gets its own time.
        "created": now.date().isoformat(),
        "paymentDate": now.date().isoformat(),
        "paymentAmount": {"value": float(amount), "currency": currency},
        "paymentIdentifier": {"system": PAYMENT_TOKEN_SYSTEM, "value": token},
        "detail": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/payment-type",
                                          "code": "payment"}]},
                    "request": {"reference": f"Invoice/{invoice_id}"}, "amount": {"value": float(amount),
                                                                                  "currency": currency}}],
    }
