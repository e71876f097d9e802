"""Open statements issued straight in the EHR for a test (as the clinic's billing system would), and withdrawn
afterwards when still unpaid, so that runs against a long-lived EHR never count on a fixture bill being unpaid
and never pile up balances."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx


def open_statement(ehr_base_url: str, patient: str, amount: float = 37.25) -> dict:
    invoice = {"resourceType": "Invoice", "status": "issued",
               "identifier": [{"system": "http://hospital.example.org/statement",
                               "value": f"IT-{uuid.uuid4().hex[:10]}"}],
               "subject": {"reference": f"Patient/{patient}"}, "date": datetime.now(UTC).isoformat(timespec="seconds"),
               "issuer": {"reference": "Organization/org-clinic", "display": "Prairie Family Health"},
               "lineItem": [{"sequence": 1, "chargeItemCodeableConcept": {"text": "Office visit"}, "priceComponent": [
                   {"type": "base", "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]},
                    "amount": {"value": amount, "currency": "USD"}}]}],
               "totalNet": {"value": amount, "currency": "USD"}, "totalGross": {"value": amount, "currency": "USD"}}
    r = httpx.post(f"{ehr_base_url}/Invoice", json=invoice, timeout=30,
                   headers={"Prefer": "return=representation", "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    return r.json()


def withdraw_open_statement(ehr_base_url: str, invoice_id: str) -> None:
    current = httpx.get(f"{ehr_base_url}/Invoice/{invoice_id}", timeout=30).json()
    if current.get("status") == "issued":
        current.pop("meta", None)
        httpx.put(f"{ehr_base_url}/Invoice/{invoice_id}", json={**current, "status": "entered-in-error"}, timeout=30)


@contextlib.contextmanager
def issuing(ehr_base_url: str) -> Iterator[Callable[..., dict]]:
    """Issues open statements for a test; whatever is still unpaid afterwards is withdrawn (entered-in-error)."""
    made: list[str] = []

    def make(patient: str, amount: float = 37.25) -> dict:
        invoice = open_statement(ehr_base_url, patient, amount)
        made.append(invoice["id"])
        return invoice

    try:
        yield make
    finally:
        for invoice_id in made:
            withdraw_open_statement(ehr_base_url, invoice_id)
