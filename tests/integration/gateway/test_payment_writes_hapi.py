"""Paying a statement through the gateway against the real EHR (and the built-in TEST payment provider): the
payment record, its notice and the settled statement land together, a repeated or racing request pays once,
another patient's statement is refused with nothing written, and no card data reaches the EHR or the log."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from mappers.billing import payment_request
from mappers.payments import PAYMENT_SYSTEM, payment_key
from payments import CardDetails
from payments.test_provider import TestCardProvider
from tests.conftest import GatewayServer
from tests.integration.statements import issuing

from .helpers import auth, ehr_search, mint

pytestmark = pytest.mark.integration

OWNER, OTHER = "pt-0014", "pt-0015"
SCOPES = "launch/patient patient/*.rs patient/PaymentReconciliation.c"
CARD = "5555555555554444"


@pytest.fixture
def issue(ehr_base_url: str) -> Iterator[Callable[..., dict]]:
    with issuing(ehr_base_url) as make:
        yield make


async def body_for(invoice: dict, submission: str, amount: str = "37.25") -> dict:
    card = CardDetails(number=CARD, exp_month=4, exp_year=2031, cvc="987", name="Test Person")
    token = (await TestCardProvider().tokenize(card, idempotency_key=submission)).token
    return payment_request(invoice["id"], Decimal(amount), "USD", token, submission, datetime.now(UTC))


def payments_for(ehr_base_url: str, patient: str, submission: str) -> list[dict]:
    return ehr_search(ehr_base_url, "PaymentReconciliation",
                      {"identifier": f"{PAYMENT_SYSTEM}|{payment_key(f'Patient/{patient}', submission)}"})


async def test_paying_records_payment_and_settles_the_statement_once_even_when_racing(
        gateway: GatewayServer, ehr_base_url: str, issue: Callable[..., dict]) -> None:
    invoice = issue(OWNER)
    submission = uuid.uuid4().hex
    body = await body_for(invoice, submission)
    headers = {**auth(mint(gateway, SCOPES, patient=OWNER)), "Idempotency-Key": f"payment-{submission}"}
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=headers, timeout=60) as c:
        # A double click: the same request twice at once, then once more after.
        racing = await asyncio.gather(c.post("/PaymentReconciliation", json=body),
                                      c.post("/PaymentReconciliation", json=body))
        again = await c.post("/PaymentReconciliation", json=body)
    statuses = sorted(r.status_code for r in racing)
    assert statuses in ([201, 201], [201, 409]), [r.text for r in racing]
    assert again.status_code == 201 and again.json()["resourceType"] == "Invoice"
    assert again.json()["status"] == "balanced"
    recorded = payments_for(ehr_base_url, OWNER, submission)
    assert len(recorded) == 1
    recon = recorded[0]
    assert recon["paymentAmount"] == {"value": 37.25, "currency": "USD"}
    assert recon["detail"][0]["request"]["reference"] == f"Invoice/{invoice['id']}"
    assert recon["disposition"].endswith("Mastercard ending 4444")
    notices = ehr_search(ehr_base_url, "PaymentNotice", {"request": f"Invoice/{invoice['id']}"})
    assert len(notices) == 1 and notices[0]["payment"]["reference"] == f"PaymentReconciliation/{recon['id']}"
    stored = httpx.get(f"{ehr_base_url}/Invoice/{invoice['id']}", timeout=30).json()
    assert stored["status"] == "balanced" and "Mastercard ending 4444" in stored["note"][-1]["text"]
    # Nothing of the card but its brand and last four: not the number, not the code, not the token.
    written = json.dumps([recon, notices[0], stored])
    assert CARD not in written and body["paymentIdentifier"]["value"] not in written
    # The code as a value of its own (random ids and hashes may hold the digits "987" by chance).
    assert not re.search(r"(?<![0-9A-Za-z])987(?![0-9A-Za-z])", written)
    logged = gateway.log.read_text(errors="replace")
    assert CARD not in logged and body["paymentIdentifier"]["value"] not in logged


async def test_another_patients_statement_is_refused_and_nothing_is_written(
        gateway: GatewayServer, ehr_base_url: str, issue: Callable[..., dict]) -> None:
    theirs = issue(OTHER)
    submission = uuid.uuid4().hex
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers={**auth(token), "X-Request-Id": submission},
                                 timeout=60) as c:
        refused = await c.post("/PaymentReconciliation", json=await body_for(theirs, submission))
    assert refused.status_code == 404 and refused.json()["resourceType"] == "OperationOutcome"
    assert payments_for(ehr_base_url, OWNER, submission) == []
    assert ehr_search(ehr_base_url, "PaymentNotice", {"request": f"Invoice/{theirs['id']}"}) == []
    assert httpx.get(f"{ehr_base_url}/Invoice/{theirs['id']}", timeout=30).json()["status"] == "issued"
    # The refusal is in the patient's access log, in words.
    words = ""
    for _ in range(10):
        log = httpx.get(f"{gateway.url}/portal/api/access-log", headers=auth(token), timeout=30)
        words = json.dumps(log.json())
        if "tried to pay a bill" in words:
            break
        time.sleep(0.5)
    assert "tried to pay a bill" in words


async def test_a_wrong_amount_or_a_declined_card_writes_nothing(
        gateway: GatewayServer, ehr_base_url: str, issue: Callable[..., dict]) -> None:
    invoice = issue(OWNER)
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        short = uuid.uuid4().hex
        wrong = await c.post("/PaymentReconciliation", json=await body_for(invoice, short, amount="1.00"))
        declined_sub = uuid.uuid4().hex
        declined_body = await body_for(invoice, declined_sub)
        declined_body["paymentIdentifier"]["value"] = declined_body["paymentIdentifier"]["value"].replace("_ok_",
                                                                                                          "_declined_")
        declined = await c.post("/PaymentReconciliation", json=declined_body)
    assert wrong.status_code == 422 and "$37.25" in wrong.json()["issue"][0]["diagnostics"]
    assert declined.status_code == 422 and "declined" in declined.json()["issue"][0]["diagnostics"]
    assert payments_for(ehr_base_url, OWNER, short) == payments_for(ehr_base_url, OWNER, declined_sub) == []
    assert httpx.get(f"{ehr_base_url}/Invoice/{invoice['id']}", timeout=30).json()["status"] == "issued"
