"""Card payments behind one seam (`PaymentProvider`): the built-in TEST provider, and how a real one is chosen
by configuration. Nothing here keeps card data: a provider turns a card into a token, and charges the token."""

from .provider import (
    CardDetails,
    CardToken,
    Charge,
    PaymentDeclined,
    PaymentProvider,
    PaymentUnavailable,
    load_provider,
)

__all__ = ["CardDetails", "CardToken", "Charge", "PaymentDeclined", "PaymentProvider", "PaymentUnavailable",
           "load_provider"]
