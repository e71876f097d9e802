"""The Referrals pages with respx standing in for the gateway's /fhir: each referral's status in words,
what the request form sends (once), and its field-level problems."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from portal.pages import referrals

from .test_messages_pages import FHIR, PT, bundle, text, visit


@pytest.fixture
def gw() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=FHIR, assert_all_called=False) as router:
        yield router

SNOMED = "http://snomed.info/sct"
HEART = {"resourceType": "Organization", "id": "org-spec-cardiology", "active": True,
         "name": "Capital Heart Associates", "type": [{"text": "Cardiology"}],
         "address": [{"line": ["1000 S 6th St"], "city": "Springfield"}]}
SKIN = {**HEART, "id": "org-spec-dermatology", "name": "Prairie Dermatology",
        "type": [{"coding": [{"system": SNOMED, "code": "394582007"}]}]}
LAB = {"resourceType": "Organization", "id": "org-lab", "active": True, "name": "Reference Laboratory",
       "type": [{"text": "Laboratory"}]}
CARE = {"reference": "Practitioner/prac-01", "display": "Dr. Margaret Ellison"}


def request(rid: str, code: str, status: str, day: str, intent: str = "proposal", **extra: object) -> dict:
    return {"resourceType": "ServiceRequest", "id": rid, "status": status, "intent": intent,
            "category": [{"coding": [{"system": SNOMED, "code": "3457005"}]}],
            "subject": {"reference": f"Patient/{PT}"}, "authoredOn": f"{day}T09:00:00Z",
            "performerType": {"coding": [{"system": SNOMED, "code": code}]},
            "reasonCode": [{"text": f"Reason {rid}"}], **extra}


async def test_referrals_read_in_words_newest_first(tmp_path: Path, gw: respx.MockRouter) -> None:
    declined_note = [{"authorReference": {"reference": f"Patient/{PT}"}, "text": "Please"},
                     {"authorReference": CARE, "text": "Let us try physical therapy first."}]
    gw.get("/ServiceRequest").respond(json=bundle(
        request("a", "394579002", "active", "2026-11-25"),
        request("b", "394582007", "revoked", "2026-10-01", note=declined_note),
        request("c", "394801008", "completed", "2026-09-01"),
        request("d", "394801008", "active", "2026-09-03", intent="order", basedOn=[{"reference": "ServiceRequest/c"}],
                performer=[{"reference": "Organization/org-spec-orthopedics", "display": "Springfield Orthopaedic"}]),
        request("x", "394579002", "entered-in-error", "2026-11-26"),
        {"resourceType": "ServiceRequest", "id": "lab", "status": "active", "intent": "order",
         "subject": {"reference": f"Patient/{PT}"}, "code": {"text": "Blood test"}}))
    page = await referrals.overview(visit(tmp_path, path="/portal/referrals"))
    words = text(page)
    assert words.index("Heart (cardiology)") < words.index("Skin (dermatology)") < words.index("Bones and joints")
    assert "Sent" in words and "Declined" in words and "Let us try physical therapy first." in words
    assert "Referral made" in words and "referred you to Springfield Orthopaedic" in words
    assert words.count("Bones and joints") == 1  # the request and the referral made from it show once
    assert "Blood test" not in words and words.count("Heart (cardiology)") == 1  # no lab orders, no errors
    assert "proposal" not in page.body.decode() and "394579002" not in page.body.decode()


async def test_referral_form_lists_the_catalogue_and_sends_one_request(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Organization").respond(json=bundle(HEART, SKIN, LAB))
    form_page = await referrals.new_form(visit(tmp_path, path="/portal/referrals/new"))
    words = text(form_page)
    assert "Heart (cardiology)" in words and "Skin (dermatology)" in words and "Reference Laboratory" not in words
    post = gw.post("/ServiceRequest").respond(201, json=request("n", "394579002", "active", "2026-11-30"))
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop",
            "practice": "Organization/org-spec-cardiology", "reason": "Racing heart", "note": ""}
    page = await referrals.send(visit(tmp_path, "POST", "/portal/referrals", data=data))
    assert page.status_code == 303 and page.headers["location"] == "/portal/referrals?asked=1"
    sent = post.calls.last.request
    assert sent.headers["Idempotency-Key"] == "referral-sub-abcdefghijklmnop"
    body = json.loads(sent.content)
    assert (body["intent"], body["status"]) == ("proposal", "active")
    assert body["performer"] == [{"reference": "Organization/org-spec-cardiology"}]
    assert body["performerType"]["coding"][0]["code"] == "394579002"
    assert body["identifier"][0]["value"] == "sub-abcdefghijklmnop" and "note" not in body


async def test_referral_form_problems_come_back_by_field(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Organization").respond(json=bundle(HEART, LAB))
    post = gw.post("/ServiceRequest").respond(201, json={})
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "practice": "Organization/org-lab",
            "reason": "  "}
    page = await referrals.send(visit(tmp_path, "POST", "/portal/referrals", data=data))
    words = text(page)
    assert page.status_code == 422
    assert "Choose the kind of specialist" in words and "why you would like to see a specialist" in words
    assert not post.called


async def test_the_referrals_pages_in_spanish(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/ServiceRequest").respond(json=bundle(
        request("a", "394579002", "active", "2026-11-25"),
        request("c", "394801008", "completed", "2026-09-01"),
        request("d", "394801008", "active", "2026-09-03", intent="order", basedOn=[{"reference": "ServiceRequest/c"}],
                performer=[{"reference": "Organization/org-spec-orthopedics", "display": "Springfield Orthopaedic"}])))
    page = await referrals.overview(visit(tmp_path, path="/portal/referrals", lang="es"))
    words = text(page)
    for spanish in ("Un referido le permite ver a un especialista", "Pedir un referido", "Corazón (cardiología)",
                    "Enviado", "Su equipo médico tiene su pedido.", "Usted lo pidió miércoles, 25 de noviembre de 2026",
                    "Huesos y articulaciones (ortopedia)", "Referido hecho",
                    "Su equipo médico le envió a Springfield Orthopaedic."):
        assert spanish in words, spanish
    for english in ("Referrals", "Heart", "Sent", "You asked", "November", "Referral made", "care team"):
        assert english not in words.split("Citas y mensajes")[0].split("Referidos", 1)[-1], english

    gw.get("/Organization").respond(json=bundle(HEART, SKIN, LAB))
    post = gw.post("/ServiceRequest").respond(201, json={})
    data = {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "practice": "Organization/org-lab",
            "reason": "", "note": ""}
    form = text(await referrals.send(visit(tmp_path, "POST", "/portal/referrals", data=data, lang="es")))
    for spanish in ("¿Qué tipo de especialista?", "Piel (dermatología)", "Capital Heart Associates",
                    "Elija el tipo de especialista que quiere ver.",
                    "Díganos en pocas palabras por qué quiere ver a un especialista.", "Enviar pedido de referido"):
        assert spanish in form, spanish
    assert not post.called
    # What goes into the record stays in English: the specialty's name is the record's, not the reader's.
    data.update(practice="Organization/org-spec-dermatology", reason="Manchas en la piel")
    post.respond(201, json=request("n", "394582007", "active", "2026-11-30"))
    await referrals.send(visit(tmp_path, "POST", "/portal/referrals", data=data, lang="es"))
    assert json.loads(post.calls.last.request.content)["performerType"]["text"] == "Skin (dermatology)"
