"""The payment seam: what the portal and the gateway ask of whoever moves the money.

The portal hands the card to `tokenize` and never keeps it; the gateway's payment rule `charge`s the token
(once per idempotency key) and records only the charge's id, the card brand and its last four digits.
A real provider is chosen by the setting `PORTAL_PAYMENT_PROVIDER`, naming a class as `module:Class`; it is
built with no arguments (it reads its own keys from the environment).
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CardDetails:
    """A card as typed into the payment form. Its repr shows no number and no security code, so that an
    error message or a log line that prints it cannot leak them."""

    number: str = field(repr=False)
    exp_month: int = field(repr=False)
    exp_year: int = field(repr=False)
    cvc: str = field(repr=False)
    name: str = field(repr=False)

    @property
    def last4(self) -> str:
        return self.number[-4:]


@dataclass(frozen=True)
class CardToken:
    """What stands for a card once the provider has it: an opaque token, and what may be shown of it."""

    token: str
    brand: str
    last4: str


@dataclass(frozen=True)
class Charge:
    """Money taken: the provider's id for it, and what a receipt may say about the card."""

    id: str
    amount: Decimal
    currency: str
    brand: str
    last4: str


class PaymentDeclined(Exception):
    """The card was refused; `reason` is in words a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentUnavailable(Exception):
    """The provider could not be reached or did not answer; nothing was charged."""


@runtime_checkable
class PaymentProvider(Protocol):
    # How the payment form names the provider (the TEST provider says plainly that no money moves).
    label: str
    test_mode: bool

    async def tokenize(self, card: CardDetails, *, idempotency_key: str) -> CardToken:
        """The card as a token. The same card with the same key may give the same token, so a form sent twice
        makes the same request twice."""
        ...

    async def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str,
                     description: str) -> Charge:
        """Take `amount` from the card behind `token`. A second call with the same key must not charge again."""
        ...

    async def refund(self, charge: Charge, *, idempotency_key: str) -> None:
        """Give a charge back in full (used when the payment could not be recorded)."""
        ...


def load_provider(spec: str) -> PaymentProvider:
    """The provider class named `module:Class` (or `module.Class`), built with no arguments."""
    try:
        factory = pkgutil.resolve_name(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"PORTAL_PAYMENT_PROVIDER names nothing that can be imported: {spec!r}") from exc
    provider = factory()
    if not isinstance(provider, PaymentProvider):
        raise ValueError(f"PORTAL_PAYMENT_PROVIDER {spec!r} is not a payment provider (tokenize, charge, refund)")
    return provider
