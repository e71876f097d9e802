"""Statements in words, checked against every demo patient's generated bills."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mappers import payments
from mappers.billing import PLAIN_CPT, balance_due, dollars, money, payment_request, statement, statements
from mappers.validation import InboundError, validate

from .conftest import all_of_type, assert_readable, of_type


def test_every_demo_statement_adds_up_and_reads_in_words(records: dict[str, list[dict[str, Any]]]) -> None:
    invoices = all_of_type(records, "Invoice")
    assert invoices
    for invoice in invoices:
        s = statement(invoice)
        t = s.totals
        assert t.you_owe == money(invoice["totalNet"]), invoice["id"]
        assert t.charges - t.adjustment - t.insurance_paid - t.discount == t.you_owe
        assert s.open == (invoice["status"] == "issued" and t.you_owe > 0)
        assert s.balance == (t.you_owe if s.open else 0)
        for line in s.lines:
            assert_readable(line.what)
            assert line.code in PLAIN_CPT  # every billing code of the fee schedule has everyday words
        if t.insurance_paid:
            assert t.payer and "http" not in t.payer


def test_every_demo_patient_has_an_account_and_a_bill(records: dict[str, list[dict[str, Any]]]) -> None:
    for resources in records.values():
        assert of_type(resources, "Account") and of_type(resources, "ChargeItem")
    # Most patients have statements; some owe something today, so paying can be tried on the demo data.
    owing = [pid for pid, resources in records.items() if balance_due(statements(of_type(resources, "Invoice")))]
    assert len(owing) >= 3


def test_dollars_and_money() -> None:
    assert dollars(Decimal("1234.5")) == "$1,234.50" and dollars(Decimal("-5")) == "-$5.00"
    assert money({"value": 0.1 + 0.2}) == Decimal("0.30") and money({"value": "x"}) == Decimal("0.00")
    assert money(None) == Decimal("0.00") and money({"value": True}) == Decimal("0.00")


NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _invoice(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Invoice", "id": "inv-1", "meta": {"versionId": "2"}, "status": "issued",
            "identifier": [{"value": "S1-001"}], "subject": {"reference": "Patient/p1"},
            "issuer": {"reference": "Organization/clinic"}, "totalNet": {"value": 25.0, "currency": "USD"}, **extra}


def test_the_payment_request_is_a_valid_resource_that_reads_back_as_asked() -> None:
    body = payment_request("inv-1", Decimal("25.00"), "USD", "tok_x", "sub-1234567890abcdef", NOW)
    ask = payments.payment_ask(validate(body, "PaymentReconciliation"))
    assert ask == payments.PaymentAsk("inv-1", Decimal("25.00"), "USD", "tok_x", "sub-1234567890abcdef")
    payments.check_payable(_invoice(), ask)


@pytest.mark.parametrize(("invoice", "amount", "words"), [
    (_invoice(status="balanced"), "25.00", "nothing left to pay"),
    (_invoice(status="draft"), "25.00", "nothing left to pay"),
    (_invoice(totalNet={"value": 0, "currency": "USD"}), "25.00", "nothing left to pay"),
    (_invoice(), "24.99", "$25.00"),
    (_invoice(totalNet={"value": 25.0, "currency": "EUR"}), "25.00", "balance due"),
])
def test_only_an_open_statement_paid_in_full_is_payable(invoice: dict, amount: str, words: str) -> None:
    ask = payments.PaymentAsk("inv-1", Decimal(amount), "USD", "tok", "sub")
    with pytest.raises(InboundError, match=words.replace("$", r"\$")):
        payments.check_payable(invoice, ask)


def test_payment_records_keep_only_brand_and_last_four_and_settle_the_statement() -> None:
    ask = payments.PaymentAsk("inv-1", Decimal("25.00"), "USD", "tok_secret_token", "sub")
    recon, notice, settled = payments.payment_records(_invoice(), ask, key="pay-k", charge_id="ch_1", brand="Visa",
                                                      last4="4242", now=NOW)
    assert "tok_secret_token" not in repr((recon, notice, settled))
    assert recon["paymentIdentifier"] == {"system": payments.PROCESSOR_SYSTEM, "value": "ch_1"}
    assert recon["detail"][0]["request"]["reference"] == "Invoice/inv-1"
    assert notice["payment"] == {"reference": "urn:uuid:payment"} and notice["amount"]["value"] == 25.0
    assert settled["status"] == "balanced" and "meta" not in settled
    assert settled["note"][-1]["text"] == "Paid $25.00 on 2026-12-01 by Visa ending 4242 in the patient portal."
    assert statement(settled).status_text == "Paid"
    validate(notice | {"payment": {"reference": "PaymentReconciliation/x"}}, "PaymentNotice")


def test_the_payment_key_is_per_patient_and_submission() -> None:
    a = payments.payment_key("Patient/p1", "s1")
    assert a == payments.payment_key("Patient/p1", "s1")
    assert a != payments.payment_key("Patient/p2", "s1") and a != payments.payment_key("Patient/p1", "s2")


def test_a_statement_in_spanish_has_spanish_words_dates_and_dollars(records: dict[str, list[dict[str, Any]]]) -> None:
    assert dollars(Decimal("1234.5"), "es_US") == "$1,234.50" and dollars(Decimal("-5"), "es_US") == "-$5.00"
    assert dollars(Decimal("1234.5"), "es") == "1.234,50\xa0US$"  # Spain's way: the amount first
    invoice = next(i for i in all_of_type(records, "Invoice") if i["status"] == "issued")
    english, spanish = statement(invoice), statement(invoice, locale="es_US")
    assert (english.totals, english.balance) == (spanish.totals, spanish.balance)  # the same sums
    assert spanish.status_text == "Por pagar" and spanish.balance_text == english.balance_text
    assert " de " in spanish.date_text and " de " in str(spanish.due_text)
    assert [line.what for line in spanish.lines] != [line.what for line in english.lines]
    assert all(line.what != PLAIN_CPT.get(line.code or "") for line in spanish.lines)
