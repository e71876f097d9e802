"""The built-in TEST payment provider: no money moves, and only its documented test cards work.

| card number         | what happens                   |
|---------------------|--------------------------------|
| 4242 4242 4242 4242 | Visa, paid                     |
| 5555 5555 5555 4444 | Mastercard, paid               |
| 3782 822463 10005   | American Express, paid         |
| 4000 0000 0000 0002 | Visa, declined                 |
| 4000 0000 0000 9995 | Visa, declined (not enough money) |

Any expiry date in the future and any 3 or 4 digit security code. The token carries only the brand, the
last four digits and what the charge will do; the charge id is derived from the idempotency key, so asking
again with the same key gives the same charge (nothing is kept anywhere).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from .provider import CardDetails, CardToken, Charge, PaymentDeclined

TEST_CARDS: dict[str, tuple[str, str]] = {  # number -> (brand, outcome)
    "4242424242424242": ("Visa", "ok"),
    "5555555555554444": ("Mastercard", "ok"),
    "378282246310005": ("American Express", "ok"),
    "4000000000000002": ("Visa", "declined"),
    "4000000000009995": ("Visa", "funds"),
}
DECLINES = {
    "declined": "Your card was declined. Nothing was charged. Please use another card or call the billing office.",
    "funds": "Your card was declined for not having enough money. Nothing was charged. Please use another card.",
}
PREFIX = "tok_test"


def _digest(text: str, n: int = 24) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class TestCardProvider:
    label = "TEST payments: no real money is taken. Only the test card numbers below work."
    test_mode = True
    __test__ = False  # not a pytest test class despite its name

    async def tokenize(self, card: CardDetails, *, idempotency_key: str) -> CardToken:
        known = TEST_CARDS.get(card.number)
        if known is None:
            raise PaymentDeclined("This is the test payment system: only the test card numbers shown on the page "
                                  "work. Nothing was charged.")
        brand, outcome = known
        token = f"{PREFIX}_{outcome}_{brand.split()[0].lower()}_{card.last4}_{_digest(idempotency_key, 16)}"
        return CardToken(token=token, brand=brand, last4=card.last4)

    async def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str,
                     description: str) -> Charge:
        parts = token.split("_")
        if len(parts) != 6 or "_".join(parts[:2]) != PREFIX or parts[2] not in ("ok", *DECLINES):
            raise PaymentDeclined("The card could not be used. Nothing was charged. Please enter it again.")
        outcome, brand_word, last4 = parts[2], parts[3], parts[4]
        if outcome in DECLINES:
            raise PaymentDeclined(DECLINES[outcome])
        brand = {"visa": "Visa", "mastercard": "Mastercard", "american": "American Express"}.get(brand_word, "Card")
        return Charge(id=f"test_ch_{_digest(idempotency_key)}", amount=amount, currency=currency, brand=brand,
                      last4=last4)

    async def refund(self, charge: Charge, *, idempotency_key: str) -> None:
        return None  # no money moved, so none goes back
