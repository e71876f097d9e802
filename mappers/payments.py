"""The gateway's rule for a patient paying a statement, as pure functions: read the request, check the
statement can be paid with it, and shape what is written to the EHR.

The patient sends a PaymentReconciliation naming one of their statements, the amount (the whole balance)
and a card token. What the EHR gets is written by the rule, never taken from the request: a
PaymentReconciliation with the processor's charge id (the token is gone), a PaymentNotice tying it to the
statement, and the statement itself marked settled (`balanced`) with a note the patient can read.

The rule answers in English (the gateway does not know who reads it); its refusals are marked for the
catalogue, so the portal's billing page can say them in the reader's language (`BALANCE_DUE` is the one
with a value in it). What is written to the record is in the clinic's language, English.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from locales import N_

from .billing import PAYMENT_SUBMISSION_SYSTEM, PAYMENT_TOKEN_SYSTEM, dollars, money
from .validation import InboundError, plain_reference, validate

PAYMENT_SYSTEM = "http://hospital.example.org/payment"
PROCESSOR_SYSTEM = "http://hospital.example.org/payment-processor"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/payment-type"
PAYMENT_STATUS = "http://terminology.hl7.org/CodeSystem/paymentstatus"
MAX_TOKEN = 200
BALANCE_DUE = N_("The amount must be the balance due on this statement, %(amount)s")


@dataclass(frozen=True)
class PaymentAsk:
    invoice_id: str
    amount: Decimal
    currency: str
    token: str
    submission: str


def _identifier(body: dict[str, Any], system: str) -> str | None:
    for item in body.get("identifier") or []:
        if isinstance(item, dict) and item.get("system") == system and isinstance(item.get("value"), str):
            return item["value"]
    return None


def payment_ask(proposed: Any) -> PaymentAsk:
    """What the patient asks: which statement, how much, with which card token, under which submission."""
    body = validate(proposed, "PaymentReconciliation")
    details = [d for d in body.get("detail") or [] if isinstance(d, dict)]
    if len(details) != 1:
        raise InboundError(N_("A payment pays exactly one statement"))
    invoice_id = plain_reference((details[0].get("request") or {}).get("reference"), "Invoice")
    if invoice_id is None:
        raise InboundError(N_("The statement you referred to is not known"))
    token_id = body.get("paymentIdentifier") or {}
    token = token_id.get("value") if token_id.get("system") == PAYMENT_TOKEN_SYSTEM else None
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise InboundError(N_("The payment has no card token; please enter your card again"))
    submission = _identifier(body, PAYMENT_SUBMISSION_SYSTEM)
    if not submission or len(submission) > 100:
        raise InboundError(N_("A payment needs a submission identifier, so that a retry does not pay twice"))
    amount = money(body.get("paymentAmount"))
    currency = (body.get("paymentAmount") or {}).get("currency") or "USD"
    if amount <= 0:
        raise InboundError(N_("The amount to pay must be more than $0.00"))
    return PaymentAsk(invoice_id, amount, currency, token, submission)


def payment_key(patient_ref: str, submission: str) -> str:
    """The payment's own identifier (and the processor's idempotency key): one per patient and form."""
    return "pay-" + hashlib.sha256(f"{patient_ref}|{submission}".encode()).hexdigest()[:40]


def check_payable(invoice: dict[str, Any], ask: PaymentAsk) -> None:
    """Only an open statement, paid in full, in its own currency."""
    if invoice.get("status") != "issued":
        raise InboundError(N_("This statement has nothing left to pay"))
    due = money(invoice.get("totalNet"))
    if due <= 0:
        raise InboundError(N_("This statement has nothing left to pay"))
    currency = (invoice.get("totalNet") or {}).get("currency") or "USD"
    if ask.amount != due or ask.currency != currency:
        raise InboundError(BALANCE_DUE % {"amount": dollars(due)})


def payment_records(invoice: dict[str, Any], ask: PaymentAsk, *, key: str, charge_id: str, brand: str,
                    last4: str, now: datetime) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The PaymentReconciliation, the PaymentNotice (pointing at it as `urn:uuid:payment`) and the settled
    statement. Of the card only its brand and last four digits are written."""
    number = next((i.get("value") for i in invoice.get("identifier") or [] if isinstance(i, dict)), invoice["id"])
    invoice_ref = {"reference": f"Invoice/{invoice['id']}", "display": f"Statement {number}"}
    issuer = invoice.get("issuer") or {}
    amount = {"value": float(ask.amount), "currency": ask.currency}
    when, day = now.isoformat(timespec="seconds"), now.date().isoformat()
    card = f"{brand} ending {last4}"
    recon = {
        "resourceType": "PaymentReconciliation",
        "identifier": [{"system": PAYMENT_SYSTEM, "value": key}],
        "status": "active",
        "created": when,
        "outcome": "complete",
        "disposition": f"Card payment in the patient portal, {card}",
        "paymentDate": day,
        "paymentAmount": amount,
        "paymentIdentifier": {"system": PROCESSOR_SYSTEM, "value": charge_id},
        "detail": [{"type": {"coding": [{"system": PAYMENT_TYPE, "code": "payment", "display": "Payment"}]},
                    "request": invoice_ref, "date": day, "amount": amount}],
        "processNote": [{"type": "display", "text": f"Paid by {card}"}],
    }
    if issuer:
        recon["requestor"] = issuer
        recon["detail"][0]["payee"] = issuer
    notice = {
        "resourceType": "PaymentNotice",
        "identifier": [{"system": PAYMENT_SYSTEM, "value": f"{key}-N"}],
        "status": "active",
        "request": invoice_ref,
        "created": when,
        "payment": {"reference": "urn:uuid:payment"},
        "paymentDate": day,
        "recipient": issuer or {"display": "The clinic"},
        "amount": amount,
        "paymentStatus": {"coding": [{"system": PAYMENT_STATUS, "code": "paid", "display": "Paid"}]},
    }
    if issuer:
        notice["payee"] = issuer
    return validate(recon, "PaymentReconciliation"), notice, settled_statement(invoice, ask, card, now)


def settled_statement(invoice: dict[str, Any], ask: PaymentAsk, card: str, now: datetime) -> dict[str, Any]:
    """The statement marked settled, with a note of the payment the patient can read."""
    settled = {k: v for k, v in invoice.items() if k != "meta"}
    settled["status"] = "balanced"
    how = f" by {card}" if card else ""
    settled["note"] = [*(invoice.get("note") or []),
                       {"time": now.isoformat(timespec="seconds"),
                        "text": f"Paid {dollars(ask.amount)} on {now.date().isoformat()}{how} in the patient portal."}]
    try:
        return validate(settled, "Invoice")
    except InboundError as exc:
        raise InboundError(N_("This statement cannot be paid here; please call the billing office")) from exc
