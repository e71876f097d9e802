"""The bills pages with respx standing in for the gateway's /fhir: what a person reads about a statement,
what the payment form sends (and how often), and that the card itself goes nowhere but the provider."""

from __future__ import annotations

import json
import logging
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from redis.asyncio import Redis
from starlette.requests import Request

from locales import gettext_in
from payments import CardDetails, CardToken, cards
from payments.test_provider import TestCardProvider
from portal.core import FormExpired, PortalDeps, Visit
from portal.fhir import NotFound, PortalFhir
from portal.pages import billing
from portal.pages.billing import CARD_WORDS
from portal.sessions import PortalSession, Tokens
from portal.settings import PortalUiSettings
from tests.plain_language import sentences_in
from web.i18n import using_locale
from web.tls import client_tls

from .pages_harness import portal_for

FHIR = "http://gw.test/fhir"
PT = "pt-1"
CARD = "4242 4242 4242 4242"
SUB = "sub-abcdefghijklmnop"


class SpyProvider(TestCardProvider):
    cards: ClassVar[list[str]] = []

    async def tokenize(self, card: CardDetails, *, idempotency_key: str) -> CardToken:
        SpyProvider.cards.append(card.last4)
        return await super().tokenize(card, idempotency_key=idempotency_key)


def invoice(iid: str = "inv-1", status: str = "issued", net: float = 42.5, date: str = "2026-10-01T06:00:00Z",
            payer: bool = True) -> dict[str, Any]:
    base = {"type": "base", "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213",
                                                 "display": "Office visit, established patient, low complexity"}]},
            "amount": {"value": 140.0, "currency": "USD"}}
    parts = [base, {"type": "deduction", "code": {"coding": [{"system": "https://x12.org/codes/claim-adjustment-"
                                                               "reason-codes", "code": "45"}]},
                    "amount": {"value": 53.2, "currency": "USD"}},
             {"type": "deduction", "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                         "adjudication", "code": "benefit"}],
                                            "text": "Paid by Blue Prairie Health"},
              "amount": {"value": 44.3, "currency": "USD"}}] if payer else [base]
    return {"resourceType": "Invoice", "id": iid, "meta": {"versionId": "1"}, "status": status,
            "identifier": [{"value": f"S100-{iid}"}], "subject": {"reference": f"Patient/{PT}"}, "date": date,
            "participant": [{"actor": {"reference": "Practitioner/p1", "display": "Dr. Margaret Ellison"}}],
            "lineItem": [{"sequence": 1, "priceComponent": parts}],
            "totalNet": {"value": net, "currency": "USD"}}


def visit(tmp_path: Path, method: str = "GET", path: str = "/portal/billing", *, invoice_id: str | None = None,
          data: dict | None = None, query: str = "") -> Visit:
    settings = PortalUiSettings(state_dir=tmp_path)
    now = time.time()
    deps = PortalDeps(settings=settings, redis=Redis(port=1), clients=None, signins=None,  # type: ignore[arg-type]
                      accounts=None, app=object(), payments=SpyProvider())  # type: ignore[arg-type]
    portal = portal_for(deps)
    session = PortalSession(id="s", account_id="a", fhir_user=f"Patient/{PT}", patient_id=PT, patient_name="Ana",
                            tokens=Tokens("t", now + 3600), csrf_token="csrf-1", created=now, last_seen=now)
    body, headers = b"", []
    if method == "POST":
        built = httpx.Request("POST", "http://portal.test" + path, data=data)
        body = built.read()
        headers = [(k.lower().encode(), v.encode()) for k, v in built.headers.items()]
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": method, "path": path, "query_string": query.encode(),
                       "headers": headers, "client": ("203.0.113.7", 1), "server": ("portal.test", 80),
                       "scheme": "http", "path_params": {"invoice_id": invoice_id} if invoice_id else {}}, receive)
    # The process's one TLS context: a client of its own would load the CA bundle again for every page.
    fhir = PortalFhir(httpx.AsyncClient(verify=client_tls()), FHIR, "t", request_id="r", client_address=None,
                      sign_address=None)
    return Visit(portal, request, session, fhir)


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.body.decode())).replace("&#39;", "'")


@pytest.fixture
def gw() -> respx.MockRouter:
    SpyProvider.cards.clear()
    with respx.mock(base_url=FHIR, assert_all_called=False) as router:
        yield router


def searchset(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


async def test_statements_list_the_balance_due_and_open_bills_first(tmp_path: Path, gw: respx.MockRouter) -> None:
    search = gw.get("/Invoice").respond(json=searchset(
        invoice("new-paid", status="balanced", date="2026-11-01T06:00:00Z"),
        invoice("old-open", net=20.0, date="2026-09-01T06:00:00Z"),
        invoice("open", net=42.5)))
    words = text(await billing.statements_page(visit(tmp_path)))
    assert "You owe $62.50" in words
    assert words.index("S100-open") < words.index("S100-old-open") < words.index("S100-new-paid")
    assert "To pay" in words and "Paid" in words
    assert ("patient", PT) in search.calls.last.request.url.params.multi_items()


async def test_a_statement_says_in_words_what_insurance_paid_and_what_is_left(tmp_path: Path,
                                                                           gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice())
    page = await billing.statement_page(visit(tmp_path, invoice_id="inv-1"))
    words = text(page)
    assert "You owe $42.50" in words and "due by 31 October 2026" in words
    assert "Office visit" in words and "$140.00" in words
    assert "Paid by Blue Prairie Health" in words and "-$44.30" in words and "-$53.20" in words
    assert "Ask a question about this bill" in words
    assert "topic=billing" in page.body.decode() and "/portal/billing/inv-1/pay" in page.body.decode()


async def test_the_statement_pdf_is_a_download(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice())
    response = await billing.statement_as_pdf(visit(tmp_path, invoice_id="inv-1"))
    assert response.body.startswith(b"%PDF") and response.headers["content-type"] == "application/pdf"
    assert 'filename="statement-S100-inv-1.pdf"' in response.headers["content-disposition"]


async def test_the_pay_form_is_labelled_test_and_lists_the_test_cards(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice())
    words = text(await billing.pay_form(visit(tmp_path, invoice_id="inv-1")))
    assert "TEST payments: no real money is taken" in words and "4242 4242 4242 4242" in words
    assert "Pay $42.50" in words


def _form(**extra: str) -> dict[str, str]:
    return {"csrf_token": "csrf-1", "submission": SUB, "amount": "42.50", "card_name": "Ana Rivera",
            "card_number": CARD, "card_expiry": "04/39", "card_cvc": "123", **extra}


async def test_paying_sends_a_token_never_the_card_with_the_submission_as_idempotency_key(
        tmp_path: Path, gw: respx.MockRouter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gw.get("/Invoice/inv-1").respond(json=invoice())
    post = gw.post("/PaymentReconciliation").respond(201, json=invoice(status="balanced"))
    page = await billing.pay(visit(tmp_path, "POST", "/portal/billing/inv-1/pay", invoice_id="inv-1", data=_form()))
    assert page.status_code == 303 and page.headers["location"] == "/portal/billing/inv-1?paid=1"
    request = post.calls.last.request
    assert request.headers["Idempotency-Key"] == f"payment-{SUB}"
    sent = request.content.decode()
    assert "4242424242424242" not in sent and CARD not in sent and "04/39" not in sent and '"123"' not in sent
    body = json.loads(sent)
    assert body["paymentIdentifier"]["value"].startswith("tok_test_ok_visa_4242_")
    assert body["detail"][0]["request"]["reference"] == "Invoice/inv-1"
    assert Decimal(str(body["paymentAmount"]["value"])) == Decimal("42.50")
    assert "4242424242424242" not in caplog.text and "Ana Rivera" not in caplog.text


async def test_a_second_click_of_the_same_form_sends_the_same_request(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice())
    post = gw.post("/PaymentReconciliation").mock(side_effect=[
        httpx.Response(201, json=invoice(status="balanced")),
        httpx.Response(409, json={"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "conflict",
            "diagnostics": "A request with this Idempotency-Key is still being processed"}]})])
    first = await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1", data=_form()))
    second = await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1", data=_form()))
    assert first.headers["location"].endswith("?paid=1") and second.headers["location"].endswith("?processing=1")
    bodies = [c.request.content for c in post.calls]
    assert bodies[0] == bodies[1]  # the same write twice: the gateway answers the second from the first


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"card_number": "4242 4242 4242 4241"}, "card_number", "not a card number"),
    ({"card_number": ""}, "card_number", "Enter the card number"),
    ({"card_expiry": "01/20"}, "card_expiry", "expired"),
    ({"card_expiry": "13/30"}, "card_expiry", "month/year"),
    ({"card_cvc": "12"}, "card_cvc", "security code"),
    ({"card_name": ""}, "card_name", "name on the card"),
    ({"amount": ""}, "amount", "amount to pay is missing"),
    ({"card_number": "4111 1111 1111 1111"}, "card_number", "only the test card numbers"),
])
async def test_bad_card_fields_get_their_own_message_and_nothing_is_sent(
        tmp_path: Path, gw: respx.MockRouter, change: dict, field: str, words: str) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice())
    post = gw.post("/PaymentReconciliation").respond(201, json={})
    page = await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1", data=_form(**change)))
    html = page.body.decode()
    assert page.status_code == 422 and f'id="{field}-error"' in html and words in text(page)
    assert not post.called
    # The card number, expiry and code are never written back into the page (only the name on the card is).
    for name in ("card_number", "card_expiry", "card_cvc"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
        assert tag is not None and "value=" not in tag.group(0)
    assert "4111" not in html


async def test_another_patients_statement_goes_to_the_gateway_which_refuses_it(tmp_path: Path,
                                                                              gw: respx.MockRouter) -> None:
    """The gateway's rule judges whose statement it is (and audits the attempt against this patient); the page
    shows 'not found', exactly as for a statement that does not exist."""
    post = gw.post("/PaymentReconciliation").respond(404, json={"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "not-found", "diagnostics": "The Invoice you referred to is not known"}]})
    with pytest.raises(NotFound):
        await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="theirs", data=_form()))
    assert post.call_count == 1
    assert json.loads(post.calls.last.request.content)["detail"][0]["request"]["reference"] == "Invoice/theirs"


async def test_a_balance_that_changed_is_said_at_the_amount(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice(net=50.0))
    gw.post("/PaymentReconciliation").respond(422, json={"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "business-rule",
        "diagnostics": "The amount must be the balance due on this statement, $50.00"}]})
    page = await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1", data=_form()))
    assert page.status_code == 422 and 'id="amount-error"' in page.body.decode()
    assert "balance due on this statement, $50.00" in text(page) and 'name="amount" value="50.00"' in page.body.decode()


async def test_a_declined_card_is_said_plainly(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice())
    gw.post("/PaymentReconciliation").respond(422, json={"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "business-rule", "diagnostics": "Your card was declined. Nothing was charged."}]})
    page = await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1",
                                   data=_form(card_number="4000 0000 0000 0002")))
    assert page.status_code == 422 and "Your card was declined. Nothing was charged." in text(page)
    # Another card is another payment: the form comes back with a new submission id.
    assert 'name="submission" value="' in page.body.decode() and f'value="{SUB}"' not in page.body.decode()


async def test_a_form_without_its_submission_id_has_expired(tmp_path: Path, gw: respx.MockRouter) -> None:
    with pytest.raises(FormExpired):
        await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1", data=_form(submission="x")))


async def test_a_statement_paid_meanwhile_goes_back_to_the_statement(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Invoice/inv-1").respond(json=invoice(status="balanced"))
    gw.post("/PaymentReconciliation").respond(422, json={"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "business-rule", "diagnostics": "This statement has nothing left to pay"}]})
    page = await billing.pay(visit(tmp_path, "POST", "/p", invoice_id="inv-1", data=_form()))
    assert page.status_code == 303 and page.headers["location"] == "/portal/billing/inv-1"


def test_every_message_the_card_check_gives_can_be_shown_in_spanish() -> None:
    """payments.cards words its messages in English; the billing page marks each one for the catalogue."""
    said = set(sentences_in(Path(cards.__file__)))
    assert said and said <= set(CARD_WORDS), said - set(CARD_WORDS)
    assert all(gettext_in("es", message) != message for message in CARD_WORDS)


def test_the_payment_rules_refusals_are_said_in_the_readers_language() -> None:
    """The gateway's payment rule refuses in English; the billing page says its refusals in Spanish."""
    with using_locale("es"):
        assert billing.refusal_words("The amount must be the balance due on this statement, $1,050.00") == \
            "La cantidad debe ser lo que se debe de esta factura, $1,050.00."
        assert billing.refusal_words("This statement has nothing left to pay") == \
            "No queda nada por pagar en esta factura."
        # Words the rule does not have (the card provider's) are shown as they came.
        assert billing.refusal_words("Your card was declined. Nothing was charged.") == \
            "Your card was declined. Nothing was charged."
    assert billing.refusal_words("This statement has nothing left to pay") == "This statement has nothing left to pay."
