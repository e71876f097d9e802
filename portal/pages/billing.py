"""Billing: statements with the balance due, a statement in plain words (and as a PDF), a billing question
(a message to the billing office), and paying a statement by card.

The card goes from the form to the payment provider (`tokenize`) and is forgotten: only a token travels on,
to the gateway, whose payment rule charges it and records the payment in the EHR. Nothing of the card is
logged, kept in the session, or written back into the page except the name on it. Each payment form carries
a one-off submission id, sent as the request's Idempotency-Key: a form sent twice pays once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from locales import N_
from mappers.billing import Statement, balance_due, dollars, payment_request, statement, statements
from mappers.payments import BALANCE_DUE
from mappers.validation import is_fhir_id
from payments import PaymentDeclined, PaymentProvider, PaymentUnavailable
from payments.cards import card_from_form
from payments.test_provider import TEST_CARDS
from web.i18n import gettext

from ..core import PREFIX, Portal, Visit
from ..fhir import NotFound, WriteRefused
from ..statement_pdf import statement_pdf
from ..summary_pdf import chunks
from .messages import new_submission, read_form, submission_of

log = logging.getLogger("portal.billing")
STATEMENTS_SHOWN = 100
BILLING_PHONE = "217-555-0120"
DOWNLOAD_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# What payments.cards says about a card typed wrong. That package keeps its words in English (the catalogue
# does not read it); their translations are marked here and looked up when the form is shown again
# (tests/unit/portal/test_billing_pages.py checks that every message it can give is in this list).
CARD_WORDS = (
    N_("Enter the name on the card."), N_("The name can be up to 100 letters long."), N_("Enter the card number."),
    N_("This is not a card number. Check the digits on the front of your card."),
    N_("Enter the expiry date, for example 04/29."), N_("Write the expiry date as month/year, for example 04/29."),
    N_("This card has expired. Use another card."),
    N_("Enter the 3 or 4 digit security code from the back of the card."),
)


# The gateway's refusal when the balance changed meanwhile (its words, with the amount it found).
BALANCE_REFUSAL = re.compile(re.escape(BALANCE_DUE).replace(re.escape("%(amount)s"), "(?P<amount>.+?)") + r"\.?")


def refusal_words(reason: str) -> str:
    """The gateway payment rule's refusal (in English: it does not know who reads it) in the reader's
    language when it is one of the rule's own (mappers/payments.py), as a sentence."""
    found = BALANCE_REFUSAL.fullmatch(reason)
    said = gettext(BALANCE_DUE) % {"amount": found["amount"]} if found else gettext(reason.rstrip("."))
    return said if said.endswith((".", "?", "!")) else said + "."


def _provider(visit: Visit) -> PaymentProvider | None:
    return visit.portal.deps.payments


def _test_cards(provider: PaymentProvider | None) -> list[tuple[str, str, str]]:
    """The documented test cards (number grouped for reading, brand, what happens), for the TEST provider."""
    if provider is None or not provider.test_mode:
        return []
    out = []
    for number, (brand, outcome) in TEST_CARDS.items():
        cuts = (4, 10) if len(number) == 15 else (4, 8, 12)  # American Express is printed 4-6-5
        grouped = " ".join(number[a:b] for a, b in zip((0, *cuts), (*cuts, len(number)), strict=True))
        out.append((grouped, brand, gettext("pays") if outcome == "ok" else gettext("is declined")))
    return out


async def _invoice(visit: Visit) -> dict[str, Any]:
    """The statement named in the address; another patient's answers exactly like one that does not exist."""
    invoice_id = visit.request.path_params["invoice_id"]
    if not is_fhir_id(invoice_id):
        raise NotFound("Invoice")
    return await visit.fhir.read("Invoice", invoice_id)


async def statements_page(visit: Visit) -> Response:
    found = await visit.fhir.search("Invoice", [("patient", visit.patient_id), ("_sort", "-date"),
                                                ("_count", str(STATEMENTS_SHOWN))], all_pages=False)
    formats = visit.portal.clock.formats(visit.locale)
    shown = statements(found, visit.portal.clock.tz, formats)
    due = balance_due(shown)
    return visit.render("portal/billing.html", title=gettext("Bills and payments"), statements=shown,
                        due_text=dollars(due, formats), owes=due > 0, phone=BILLING_PHONE)


def _question_link(shown: Statement) -> str:
    subject = gettext("Question about statement %(number)s") % {"number": shown.number}
    return f"{PREFIX}/messages/new?" + urlencode({"topic": "billing", "subject": subject})


def _statement(visit: Visit, invoice: dict[str, Any]) -> Statement:
    """The statement in the reader's language (dates and amounts as their region writes them)."""
    clock = visit.portal.clock
    return statement(invoice, clock.tz, clock.formats(visit.locale))


async def statement_page(visit: Visit) -> Response:
    shown = _statement(visit, await _invoice(visit))
    query = visit.request.query_params
    title = gettext("Statement %(number)s") % {"number": shown.number}
    return visit.render("portal/billing_statement.html", title=title, s=shown, question_link=_question_link(shown),
                        phone=BILLING_PHONE, paid=query.get("paid") == "1", processing=query.get("processing") == "1")


async def statement_as_pdf(visit: Visit) -> Response:
    invoice = await _invoice(visit)
    shown = _statement(visit, invoice)
    name = visit.session.patient_name or gettext("Patient")
    data = await asyncio.to_thread(statement_pdf, shown, name, BILLING_PHONE)
    filename = f"statement-{re.sub(r'[^A-Za-z0-9-]', '', shown.number) or 'bill'}.pdf"
    return Response(b"".join(chunks(data)), media_type="application/pdf",
                    headers={**DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})


def _pay_page(visit: Visit, shown: Statement, form: dict[str, str], errors: dict[str, list[str]],
              submission: str, status: int = 200) -> Response:
    provider = _provider(visit)
    # Only the name on the card is ever written back into the page; number, expiry and code never are.
    kept = {"card_name": form.get("card_name", "")}
    title = gettext("Pay statement %(number)s") % {"number": shown.number}
    return visit.render("portal/billing_pay.html", status, title=title, s=shown,
                        form=kept, errors=errors, submission=submission, provider=provider,
                        test_cards=_test_cards(provider), phone=BILLING_PHONE)


async def pay_form(visit: Visit) -> Response:
    shown = _statement(visit, await _invoice(visit))
    if not shown.open:
        return RedirectResponse(f"{PREFIX}/billing/{shown.id}", status_code=303)
    return _pay_page(visit, shown, {}, {}, new_submission())


def _amount(text: str) -> Decimal | None:
    try:
        return Decimal(text).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


async def _form_again(visit: Visit, fields: dict[str, str], errors: dict[str, list[str]], submission: str,
                      status: int = 422) -> Response:
    """The payment form again with what was wrong (or the statement, if it has been paid meanwhile)."""
    shown = _statement(visit, await _invoice(visit))
    if not shown.open:
        return RedirectResponse(f"{PREFIX}/billing/{shown.id}", status_code=303)
    said = {name: [gettext(message) for message in messages] for name, messages in errors.items()}
    return _pay_page(visit, shown, fields, said, submission, status)


async def pay(visit: Visit) -> Response:
    """The gateway's payment rule is the one judge of the statement (whose it is, that it is open, that the
    amount is its balance): the form goes to it as soon as the card is in order, so a statement id pasted
    from someone else's record is refused there, charges nothing, and shows in this patient's access log."""
    await visit.check_csrf()
    fields, _ = await read_form(visit)
    submission = submission_of(fields)
    invoice_id = visit.request.path_params["invoice_id"]
    if not is_fhir_id(invoice_id):
        raise NotFound("Invoice")
    card, errors = card_from_form(fields, visit.portal.clock.today())
    amount = _amount(fields.get("amount", ""))
    if amount is None or amount <= 0:
        errors["amount"] = [gettext("The amount to pay is missing. Please open the bill and pay again.")]
    provider = _provider(visit)
    if provider is None:
        errors["card_number"] = [gettext("Card payments cannot be taken right now. Please call %(phone)s.")
                                 % {"phone": BILLING_PHONE}]
    if errors or card is None or provider is None or amount is None:
        return await _form_again(visit, fields, errors, submission)
    # After the provider or the gateway has said no, the next try is a new payment: a new submission id, so
    # that a provider keeping the refusal under its idempotency key cannot refuse the next card too.
    try:
        token = await provider.tokenize(card, idempotency_key=submission)
    except PaymentDeclined as exc:
        return await _form_again(visit, fields, {"card_number": [exc.reason]}, new_submission())
    except PaymentUnavailable:
        busy = gettext("The payment service is not answering. Nothing was charged. Please try again in a few minutes.")
        return await _form_again(visit, fields, {"card_number": [busy]}, submission, 503)
    body = payment_request(invoice_id, amount, "USD", token.token, submission, visit.portal.clock.now())
    try:
        await visit.fhir.write("POST", "PaymentReconciliation", body, idempotency_key=f"payment-{submission}")
    except WriteRefused as exc:
        if exc.status == 409 and "Idempotency-Key" in exc.reason:  # the same form's first sending is paying
            return RedirectResponse(f"{PREFIX}/billing/{invoice_id}?processing=1", status_code=303)
        reason = refusal_words(exc.reason)
        field = "amount" if BALANCE_REFUSAL.fullmatch(exc.reason) else "card_number"
        return await _form_again(visit, fields, {field: [reason]}, new_submission())
    return RedirectResponse(f"{PREFIX}/billing/{invoice_id}?paid=1", status_code=303)


def add_billing_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/billing", include_in_schema=False)(portal.page(statements_page))
    router.get(PREFIX + "/billing/{invoice_id}", include_in_schema=False)(portal.page(statement_page))
    router.get(PREFIX + "/billing/{invoice_id}/statement.pdf", include_in_schema=False)(portal.page(statement_as_pdf))
    router.get(PREFIX + "/billing/{invoice_id}/pay", include_in_schema=False)(portal.page(pay_form))
    router.post(PREFIX + "/billing/{invoice_id}/pay", include_in_schema=False)(portal.page(pay))
