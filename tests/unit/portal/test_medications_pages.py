"""The Medicines pages with respx standing in for the gateway's /fhir: prescriptions in words, where each
refill request is, what the refill and renewal forms send (once), and what a refusal leaves behind."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from portal.fhir import NotFound
from portal.pages import medications

from .test_messages_pages import FHIR, PT, bundle, text, visit


@pytest.fixture
def gw() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=FHIR, assert_all_called=False) as router:
        yield router

OUTCOME = {"resourceType": "OperationOutcome"}
CVS = {"resourceType": "Organization", "id": "org-pharm-cvs", "active": True, "name": "CVS on S MacArthur Blvd",
       "type": [{"text": "Pharmacy"}], "address": [{"line": ["2200 S MacArthur Blvd"], "city": "Springfield"}]}
WALGREENS = {**CVS, "id": "org-pharm-walgreens", "name": "Walgreens on Wabash Ave", "address": []}


def rx(mid: str, name: str, allowed: int, **extra: object) -> dict:
    return {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{PT}"}, "authoredOn": "2026-06-01T10:00:00Z",
            "medicationCodeableConcept": {"text": name},
            "requester": {"reference": "Practitioner/prac-01", "display": "Dr. Margaret Ellison"},
            "dosageInstruction": [{"text": "Take 1 tablet by mouth daily",
                                   "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}],
            "dispenseRequest": {"numberOfRepeatsAllowed": allowed, "quantity": {"value": 30, "unit": "tablet"},
                                "expectedSupplyDuration": {"value": 30, "unit": "days"}}, **extra}


def fill(did: str, mid: str, day: str) -> dict:
    return {"resourceType": "MedicationDispense", "id": did, "status": "completed",
            "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "x"},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{mid}"}],
            "performer": [{"actor": {"reference": "Organization/org-pharm-walgreens",
                                     "display": "Walgreens on Wabash Ave"}}],
            "whenHandedOver": f"{day}T15:00:00Z"}


def asked(rid: str, mid: str, status: str, day: str, **extra: object) -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "proposal",
            "identifier": [{"system": "urn:portal:refill-request", "value": mid}],
            "subject": {"reference": f"Patient/{PT}"}, "authoredOn": f"{day}T09:00:00Z",
            "medicationCodeableConcept": {"text": "x"}, "basedOn": [{"reference": f"MedicationRequest/{mid}"}],
            "dispenseRequest": {"performer": {"reference": "Organization/org-pharm-cvs",
                                              "display": "CVS on S MacArthur Blvd"}}, **extra}


AMLODIPINE = rx("m1", "Amlodipine 5 mg tablet", 3)
LISINOPRIL = rx("m2", "Lisinopril 10 mg tablet", 1, authoredOn="2026-01-01T10:00:00Z")
METFORMIN = rx("m3", "Metformin 500 mg tablet", 2, authoredOn="2025-12-01T10:00:00Z")
FILLS = [fill("d1", "m1", "2026-10-02"), fill("d2", "m2", "2026-01-03"), fill("d3", "m2", "2026-02-05"),
         fill("d4", "m3", "2025-12-02")]


def record(gw: respx.MockRouter, *extra: dict) -> None:
    gw.get("/MedicationRequest").respond(json=bundle(AMLODIPINE, LISINOPRIL, METFORMIN, *extra))
    gw.get("/MedicationDispense").respond(json=bundle(*FILLS))
    gw.get("/Organization").respond(json=bundle(CVS, WALGREENS))


async def test_prescriptions_and_refill_requests_read_in_words(tmp_path: Path, gw: respx.MockRouter) -> None:
    order = {**rx("m4", "Metformin 500 mg tablet", 2), "status": "draft", "basedOn": [
        {"reference": "MedicationRequest/r3"}], "dispenseRequest": {"performer": {
            "reference": "Organization/org-pharm-cvs", "display": "CVS on S MacArthur Blvd"}}}
    record(gw, asked("r1", "m1", "draft", "2026-11-20", note=[{"text": "Out on Friday",
                                                                "authorReference": {"reference": f"Patient/{PT}"}}]),
           asked("r2", "m1", "cancelled", "2026-09-01", statusReason={"text": "Please book a blood pressure check "
                                                                             "first"}),
           asked("r3", "m3", "completed", "2026-11-01"), order)
    page = await medications.medicines(visit(tmp_path, path="/portal/medications"))
    words = text(page)
    assert "Amlodipine 5 mg tablet" in words and "1 tablet once a day" in words
    assert "3 refills left" in words and "Walgreens on Wabash Ave" in words  # the last fill, where
    # Each request's status in words, newest first, with the care team's reason for a decline.
    assert words.index("Sent asked") < words.index("Declined")
    assert "Please book a blood pressure check first" in words
    assert "Sent to the pharmacy" in words and "went to CVS on S MacArthur Blvd" in words
    # An open request hides "Request a refill" for that medicine; an exhausted prescription offers a renewal.
    html = page.body.decode()
    assert "/portal/medications/m1/refill" not in html and "once your care team has answered" in words
    assert "/portal/medications/m2/renewal" in html and "no refills left" in words.lower()
    assert "/portal/medications/m3/refill" in html  # its last request was settled
    assert "urn:portal" not in html and "proposal" not in html  # no codes where a person expects words


async def test_refill_form_sends_one_request_to_the_chosen_pharmacy(tmp_path: Path, gw: respx.MockRouter) -> None:
    record(gw)
    form_page = await medications.refill_form(visit(tmp_path, path_params={"rx_id": "m1"}))
    html = form_page.body.decode()
    assert 'value="Organization/org-pharm-walgreens" checked' in html  # where they filled last
    post = gw.post("/MedicationRequest").respond(201, json=asked("r9", "m1", "draft", "2026-11-30"))
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "pharmacy": "Organization/org-pharm-cvs",
            "note": "Running low"}
    page = await medications.refill_send(visit(tmp_path, "POST", "/portal/medications/m1/refill",
                                               path_params={"rx_id": "m1"}, data=data))
    assert page.status_code == 303 and page.headers["location"] == "/portal/medications?asked=m1#rx-m1"
    request = post.calls.last.request
    assert request.headers["Idempotency-Key"] == "refill-sub-abcdefghijklmnop"
    body = json.loads(request.content)
    assert body["basedOn"] == [{"reference": "MedicationRequest/m1"}]
    assert body["dispenseRequest"]["performer"] == {"reference": "Organization/org-pharm-cvs"}
    assert body["note"] == [{"text": "Running low"}]


async def test_refill_form_problems_come_back_by_field_and_nothing_is_sent(tmp_path: Path,
                                                                          gw: respx.MockRouter) -> None:
    record(gw)
    post = gw.post("/MedicationRequest").respond(201, json={})
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "pharmacy": "Organization/org-lab",
            "note": "x" * 1001}
    page = await medications.refill_send(visit(tmp_path, "POST", "/portal/medications/m1/refill",
                                               path_params={"rx_id": "m1"}, data=data))
    words = text(page)
    assert page.status_code == 422
    assert "Choose the pharmacy" in words and "1,000 characters" in words
    assert 'aria-invalid="true"' in page.body.decode()
    assert not post.called


async def test_another_patients_prescription_is_not_found_and_nothing_is_written(tmp_path: Path,
                                                                                gw: respx.MockRouter) -> None:
    record(gw)
    post = gw.post("/MedicationRequest").respond(404, json=OUTCOME)  # the gateway's answer for someone else's
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "pharmacy": "Organization/org-pharm-cvs"}
    with pytest.raises(NotFound):
        await medications.refill_send(visit(tmp_path, "POST", "/portal/medications/theirs/refill",
                                            path_params={"rx_id": "theirs"}, data=data))
    assert post.call_count == 1
    with pytest.raises(NotFound):  # nor is its form shown
        await medications.refill_form(visit(tmp_path, path_params={"rx_id": "theirs"}))


async def test_the_gateways_refusal_is_shown_in_words(tmp_path: Path, gw: respx.MockRouter) -> None:
    record(gw)
    gw.post("/MedicationRequest").respond(422, json={**OUTCOME, "issue": [{"severity": "error", "code": "business-rule",
        "diagnostics": "This prescription has no refills left. Please ask your care team to renew it instead."}]})
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "pharmacy": "Organization/org-pharm-cvs"}
    page = await medications.refill_send(visit(tmp_path, "POST", "/portal/medications/m1/refill",
                                               path_params={"rx_id": "m1"}, data=data))
    assert page.status_code == 422 and "ask your care team to renew it" in text(page)


async def test_renewal_is_a_medication_question_to_the_care_team(tmp_path: Path, gw: respx.MockRouter) -> None:
    record(gw)
    post = gw.post("/Communication").respond(201, json={"resourceType": "Communication", "id": "c1",
                                                        "status": "completed"})
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "note": "I use the CVS"}
    page = await medications.renewal_send(visit(tmp_path, "POST", "/portal/medications/m2/renewal",
                                                path_params={"rx_id": "m2"}, data=data))
    assert page.status_code == 303 and page.headers["location"] == "/portal/messages/c1?sent=1"
    request = post.calls.last.request
    assert request.headers["Idempotency-Key"] == "message-sub-abcdefghijklmnop"
    body = json.loads(request.content)
    assert body["recipient"] == [{"reference": "Organization/org-team-care"}]
    assert body["category"][0]["coding"][0]["code"] == "medication"
    assert body["topic"] == {"text": "Renewal of Lisinopril 10 mg tablet"}
    said = body["payload"][0]["contentString"]
    assert "renew my prescription for Lisinopril 10 mg tablet" in said and "I use the CVS" in said


async def test_without_the_pharmacy_fills_the_page_still_stands(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/MedicationRequest").respond(json=bundle(AMLODIPINE))
    gw.get("/MedicationDispense").respond(503, json=OUTCOME)
    words = text(await medications.medicines(visit(tmp_path, path="/portal/medications")))
    assert "Amlodipine 5 mg tablet" in words and "3 refills" in words
    assert "refills left" not in words and "Not filled yet" not in words  # what it allows, not a count
    assert "We cannot tell right now" in words


async def test_the_medicines_pages_in_spanish(tmp_path: Path, gw: respx.MockRouter) -> None:
    record(gw, asked("r1", "m1", "draft", "2026-11-20"),
           asked("r2", "m1", "cancelled", "2026-09-01", statusReason={"text": "Please book a check first"}))
    page = await medications.medicines(visit(tmp_path, path="/portal/medications", lang="es"))
    html, words = page.body.decode(), text(page)
    for spanish in ("Sus medicamentos", "Estos son los medicamentos que su equipo médico le recetó ahora.",
                    "Cómo tomarlo", "Resurtidos", "Última vez que se surtió", "Recetado por",
                    "viernes, 2 de octubre de 2026 en Walgreens on Wabash Ave", "Sus pedidos de resurtido",
                    "Dr. Margaret Ellison el lunes, 1 de junio de 2026",
                    "Enviado lo pidió el viernes, 20 de noviembre de 2026, para CVS on S MacArthur Blvd.",
                    "Su equipo médico tiene su pedido.", "No aprobado", "A esta receta no le quedan resurtidos.",
                    "Pedir una renovación", "Pedir un resurtido", "Envíe un mensaje"):
        assert spanish in words, spanish
    # The medicine's own words are still English, and marked so; nothing else of ours is.
    assert '<span lang="en">1 tablet once a day</span>' in html
    ours = re.sub(r"<[^>]+>", " ", re.sub(r'<span lang="en">.*?</span>', " ", html))
    for english in ("Your medicines", "How to take it", "Refills", "Last filled", "asked", "Sent", "Declined",
                    "Request a refill", "no refills left", "Send a message"):
        assert english not in ours, english

    form = text(await medications.refill_send(visit(
        tmp_path, "POST", "/portal/medications/m3/refill", path_params={"rx_id": "m3"}, lang="es",
        data={"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "pharmacy": "x", "note": "x" * 1001})))
    for spanish in ("Pedir un resurtido de Metformin 500 mg tablet", "¿Qué farmacia debe surtirlo?",
                    "Elija la farmacia que debe surtir su resurtido.",
                    "Su nota puede tener hasta 1,000 letras y signos.", "Enviar pedido de resurtido"):
        assert spanish in form, spanish
