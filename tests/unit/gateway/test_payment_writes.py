"""Paying a statement through the gateway (PaymentReconciliation create), with respx as the EHR and a spy
around the TEST payment provider: what is charged, what is written, and what a refusal leaves behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import pytest
import respx

from fhir_gateway.settings import PortalSettings
from mappers.billing import payment_request
from payments import CardDetails, Charge
from payments.test_provider import TestCardProvider

from .conftest import EHR, Harness, bundle, clear_portal_env

PT = "pt-0001"
OTHER = "pt-0002"
SCOPES = "launch/patient patient/*.rs patient/PaymentReconciliation.c"
CARD = "4242424242424242"


class SpyProvider(TestCardProvider):
    """The TEST provider, counting what it is asked to do."""

    charges: ClassVar[list[tuple[str, str, Decimal]]] = []
    refunds: ClassVar[list[str]] = []

    async def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str,
                     description: str) -> Charge:
        SpyProvider.charges.append((token, idempotency_key, amount))
        return await super().charge(token, amount, currency, idempotency_key=idempotency_key,
                                    description=description)

    async def refund(self, charge: Charge, *, idempotency_key: str) -> None:
        SpyProvider.refunds.append(charge.id)


@pytest.fixture(scope="module")
def pay_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The app with the spy as its payment provider, built once for the module (`pay_harness` resets it)."""
    from fhir_gateway.app import create_app
    from smart_auth.keys import KeyStore

    audit: list[Any] = []

    async def sink(record: Any) -> None:
        audit.append(record)

    async def never_revoked(claims: Any) -> bool:
        return False

    state = tmp_path_factory.mktemp("pay")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clear_portal_env(monkeypatch)
        settings = PortalSettings.load(
            fhir_base_url=EHR, public_url="http://portal.test", redis_url="redis://127.0.0.1:1/0", state_dir=state,
        ).replace(gateway={"upstream_retries": 1, "audit_export": False, "upstream_transport": "httpx",
                           "payment_provider": f"{__name__}:SpyProvider"}, cache={"cache_enabled": False})
        app = create_app(settings, access_audit=sink, revocation_check=never_revoked)
        yield Harness(KeyStore.load_or_create(state / "signing-key.pem"), app, audit, set())


@pytest.fixture
def pay_harness(pay_app: Harness, ehr: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> Harness:
    clear_portal_env(monkeypatch)
    pay_app.reset()
    SpyProvider.charges.clear()
    SpyProvider.refunds.clear()
    return pay_app


def invoice(iid: str = "inv-1", patient: str = PT, status: str = "issued", net: float = 42.5) -> dict[str, Any]:
    return {"resourceType": "Invoice", "id": iid, "meta": {"versionId": "3"}, "status": status,
            "identifier": [{"system": "http://hospital.example.org/statement", "value": "S100-001"}],
            "subject": {"reference": f"Patient/{patient}"},
            "issuer": {"reference": "Organization/org-clinic", "display": "Prairie Family Health"},
            "date": "2026-10-01T06:00:00Z", "totalNet": {"value": net, "currency": "USD"},
            "totalGross": {"value": 140.0, "currency": "USD"}}


async def token_for(number: str = CARD, submission: str = "sub-aaaaaaaaaaaaaaaa") -> str:
    card = CardDetails(number=number, exp_month=4, exp_year=2031, cvc="123", name="Ana Rivera")
    return (await TestCardProvider().tokenize(card, idempotency_key=submission)).token


async def pay_body(iid: str = "inv-1", amount: str = "42.50", number: str = CARD,
                   submission: str = "sub-aaaaaaaaaaaaaaaa") -> dict[str, Any]:
    from datetime import UTC, datetime
    return payment_request(iid, Decimal(amount), "USD", await token_for(number, submission), submission,
                           datetime(2026, 11, 30, 12, 0, tzinfo=UTC))


async def post(h: Harness, body: object, **headers: str) -> httpx.Response:
    async with h.client() as c:
        return await c.post("/fhir/PaymentReconciliation", content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(SCOPES, patient=PT)}", "Content-Type": "application/fhir+json",
            **headers})


def transaction_ok(ehr: respx.MockRouter) -> respx.Route:
    return ehr.post("").respond(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201 Created", "location": "PaymentReconciliation/pr-9/_history/1"}},
        {"response": {"status": "201 Created", "location": "PaymentNotice/pn-9/_history/1"}},
        {"response": {"status": "200 OK", "location": "Invoice/inv-1/_history/4"}}]})


async def test_paying_charges_once_and_writes_payment_notice_and_settled_statement_together(
        pay_harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Invoice/inv-1").mock(side_effect=[httpx.Response(200, json=invoice()),
                                                httpx.Response(200, json={**invoice(status="balanced"),
                                                                          "meta": {"versionId": "4"}})])
    ehr.get("/PaymentReconciliation").respond(json=bundle())
    tx = transaction_ok(ehr)
    body = await pay_body()
    r = await post(pay_harness, body, **{"Idempotency-Key": "payment-sub-aaaaaaaaaaaaaaaa"})
    assert r.status_code == 201, r.text
    assert r.json()["resourceType"] == "Invoice" and r.json()["status"] == "balanced"
    assert len(SpyProvider.charges) == 1 and SpyProvider.charges[0][2] == Decimal("42.50")
    sent = json.loads(tx.calls.last.request.content)
    recon, notice, settled = (e["resource"] for e in sent["entry"])
    assert recon["paymentIdentifier"]["value"].startswith("test_ch_")
    assert recon["disposition"].endswith("Visa ending 4242")
    assert notice["request"]["reference"] == "Invoice/inv-1" and notice["payment"]["reference"] == "urn:uuid:payment"
    assert settled["status"] == "balanced" and sent["entry"][2]["request"]["ifMatch"] == 'W/"3"'
    assert sent["entry"][0]["request"]["ifNoneExist"].startswith("identifier=")
    # Nothing of the card but brand and last four reaches the EHR: not the number, not the token.
    written = tx.calls.last.request.content.decode()
    assert CARD not in written and body["paymentIdentifier"]["value"] not in written and "123" not in recon.get(
        "disposition", "")
    record = pay_harness.audit[-1]
    assert record.outcome == "0" and "Invoice/inv-1" in record.entity_refs
    assert body["paymentIdentifier"]["value"] not in repr(pay_harness.audit) and "4242424242424242" not in repr(
        pay_harness.audit)
    assert f"Patient/{PT}" in record.patient_refs


async def test_another_patients_statement_is_not_known_and_nothing_is_charged(
        pay_harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Invoice/inv-2").respond(json=invoice("inv-2", patient=OTHER))
    tx = ehr.post("").respond(200, json={})
    r = await post(pay_harness, await pay_body("inv-2"))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert OTHER not in r.text
    assert SpyProvider.charges == [] and not tx.called
    record = pay_harness.audit[-1]
    assert record.outcome != "0" and f"Patient/{PT}" in record.patient_refs  # audited, against the caller


@pytest.mark.parametrize(("inv", "amount", "words"), [
    (invoice(status="balanced"), "42.50", "nothing left to pay"),
    (invoice(net=0.0), "42.50", "nothing left to pay"),
    (invoice(), "10.00", "balance due on this statement, $42.50"),
    ({**invoice(), "lineItem": [{"sequence": 1}]}, "42.50", "cannot be paid here"),  # not a valid statement
])
async def test_a_statement_that_cannot_be_paid_so_charges_nothing(pay_harness: Harness, ehr: respx.MockRouter,
                                                                  inv: dict, amount: str, words: str) -> None:
    ehr.get("/Invoice/inv-1").respond(json=inv)
    ehr.get("/PaymentReconciliation").respond(json=bundle())
    tx = ehr.post("").respond(200, json={})
    r = await post(pay_harness, await pay_body(amount=amount))
    assert r.status_code == 422 and words in r.json()["issue"][0]["diagnostics"]
    assert SpyProvider.charges == [] and not tx.called


async def test_a_declined_card_writes_nothing(pay_harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Invoice/inv-1").respond(json=invoice())
    ehr.get("/PaymentReconciliation").respond(json=bundle())
    tx = ehr.post("").respond(200, json={})
    r = await post(pay_harness, await pay_body(number="4000000000000002"))
    assert r.status_code == 422 and "declined" in r.json()["issue"][0]["diagnostics"]
    assert not tx.called


async def test_a_retry_of_a_recorded_payment_charges_nothing(pay_harness: Harness, ehr: respx.MockRouter) -> None:
    """Without Redis (a closed port here) the payment's own identifier still stops a second charge."""
    ehr.get("/Invoice/inv-1").respond(json=invoice(status="balanced"))
    ehr.get("/PaymentReconciliation").respond(json=bundle({"resourceType": "PaymentReconciliation", "id": "pr-9"}))
    tx = ehr.post("").respond(200, json={})
    r = await post(pay_harness, await pay_body())
    assert r.status_code == 200 and r.json()["status"] == "balanced"
    assert SpyProvider.charges == [] and not tx.called


async def test_a_statement_changed_meanwhile_is_refunded_and_said_so(pay_harness: Harness,
                                                                     ehr: respx.MockRouter) -> None:
    ehr.get("/Invoice/inv-1").respond(json=invoice())
    ehr.get("/PaymentReconciliation").respond(json=bundle())
    ehr.post("").respond(412, json={"resourceType": "OperationOutcome", "issue": []})
    r = await post(pay_harness, await pay_body())
    assert r.status_code == 409 and "nothing was charged" in r.json()["issue"][0]["diagnostics"]
    assert len(SpyProvider.charges) == 1 and len(SpyProvider.refunds) == 1


@pytest.mark.parametrize("change", [
    {"paymentIdentifier": None},
    {"detail": []},
    {"detail": [{"type": {"text": "x"}, "request": {"reference": "Patient/pt-0002"}}]},
    {"identifier": []},
])
async def test_malformed_payment_requests_are_refused_before_anything_is_looked_up(
        pay_harness: Harness, ehr: respx.MockRouter, change: dict) -> None:
    reads = ehr.get(url__regex=r".*").respond(json=invoice())
    body = {k: v for k, v in (await pay_body()).items() if not (k in change and change[k] is None)}
    body |= {k: v for k, v in change.items() if v is not None}
    r = await post(pay_harness, body)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert SpyProvider.charges == [] and not reads.called


async def test_payment_records_are_never_readable(pay_harness: Harness, ehr: respx.MockRouter) -> None:
    upstream = ehr.get(url__regex=r".*Payment.*").respond(json={"resourceType": "PaymentReconciliation",
                                                                 "id": "pr-9"})
    async with pay_harness.client() as c:
        for scope in ("launch/patient patient/*.rs", "user/*.rs"):
            bound = PT if "patient" in scope else None
            headers = {"Authorization": f"Bearer {pay_harness.token(scope, patient=bound)}"}
            for path in ("/fhir/PaymentReconciliation/pr-9", "/fhir/PaymentReconciliation", "/fhir/PaymentNotice"):
                assert (await c.get(path, headers=headers)).status_code in (403, 404, 405)
    assert not upstream.called
