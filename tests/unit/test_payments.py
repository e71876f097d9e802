"""The payment seam: the TEST provider's cards, the card checks, and choosing a provider by configuration."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from payments import CardDetails, PaymentDeclined, PaymentProvider, load_provider
from payments.cards import card_from_form, luhn_ok
from payments.test_provider import TEST_CARDS, TestCardProvider


def card(number: str) -> CardDetails:
    return CardDetails(number=number, exp_month=4, exp_year=2031, cvc="123", name="Ana Rivera")


def test_card_details_never_show_the_number_or_code() -> None:
    shown = repr(card("4242424242424242")) + str(card("4242424242424242"))
    assert "4242424242424242" not in shown and "123" not in shown and "Ana" not in shown


def test_every_documented_test_card_is_a_real_card_number() -> None:
    assert all(luhn_ok(n) for n in TEST_CARDS)


async def test_test_provider_charges_the_same_key_once_and_declines_its_decline_cards() -> None:
    provider = TestCardProvider()
    token = (await provider.tokenize(card("4242424242424242"), idempotency_key="k1")).token
    assert "4242424242424242" not in token and token.split("_")[4] == "4242"
    first = await provider.charge(token, Decimal("5.00"), "USD", idempotency_key="k1", description="d")
    again = await provider.charge(token, Decimal("5.00"), "USD", idempotency_key="k1", description="d")
    assert first == again and first.brand == "Visa" and first.last4 == "4242"
    declined = (await provider.tokenize(card("4000000000000002"), idempotency_key="k2")).token
    with pytest.raises(PaymentDeclined):
        await provider.charge(declined, Decimal("5.00"), "USD", idempotency_key="k2", description="d")
    with pytest.raises(PaymentDeclined, match="only the test card numbers"):
        await provider.tokenize(card("4111111111111111"), idempotency_key="k3")


def test_a_provider_is_chosen_by_its_class_name() -> None:
    assert isinstance(load_provider("payments.test_provider:TestCardProvider"), PaymentProvider)
    with pytest.raises(ValueError, match="names nothing"):
        load_provider("payments.nowhere:Nothing")
    with pytest.raises(ValueError, match="not a payment provider"):
        load_provider("collections:OrderedDict")


def test_card_form_checks_each_field() -> None:
    ok, errors = card_from_form({"card_name": "A", "card_number": "4242-4242 4242 4242", "card_expiry": "4/2031",
                                 "card_cvc": "1234"}, date(2026, 12, 1))
    assert errors == {} and ok is not None and ok.number == "4242424242424242" and ok.exp_year == 2031
    _, errors = card_from_form({"card_expiry": "11/26"}, date(2026, 12, 1))
    assert set(errors) == {"card_name", "card_number", "card_expiry", "card_cvc"}
    assert "expired" in errors["card_expiry"][0]
