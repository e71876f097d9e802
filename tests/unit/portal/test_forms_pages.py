"""The Forms pages with respx standing in for the gateway's /fhir: the list of forms asked for, a form to
fill in (its questions, field-level problems), a draft saved in place, a sent form read back, and a
visit that is not the person's own."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import respx

from fixtures.practice import VISIT_TYPES
from fixtures.questionnaires import questionnaire_resources
from mappers.inbound import APPOINTMENT_EXTENSION
from mappers.questionnaires import canonical
from portal.fhir import NotFound
from portal.pages import forms

from .test_messages_pages import FHIR, PT, bundle, text, visit

FORMS = {f["name"]: {**f, "id": f["name"].lower()} for f in questionnaire_resources(VISIT_TYPES)}
INTAKE, CHECKIN = FORMS["NewPatientIntake"], FORMS["PrevisitCheckin"]
SDC = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
FILLED = {"q-1": "My knee", "q-3": "2", "q-4": "no", "q-6": "no", "q-7-1": "0", "q-7-2": "1", "q-9": "yes"}


def task(form: dict, status: str = "requested", focus: str | None = None, due: str = "2026-12-20") -> dict:
    t: dict[str, Any] = {"resourceType": "Task", "id": f"t-{form['id']}", "status": status, "intent": "order",
                         "code": {"coding": [{"system": SDC, "code": "complete-questionnaire"}]},
                         "for": {"reference": f"Patient/{PT}"}, "authoredOn": "2026-11-01T09:00:00Z",
                         "restriction": {"period": {"end": due}},
                         "input": [{"type": {"text": "Questionnaire"}, "valueCanonical": canonical(form)}]}
    if focus:
        t["focus"] = {"reference": f"Appointment/{focus}", "display": "Annual physical"}
    return t


def response(form: dict, status: str, rid: str = "qr-1", appointment: str | None = None, **extra: Any) -> dict:
    r: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "id": rid, "meta": {"versionId": "4"},
                         "questionnaire": canonical(form), "status": status, "authored": "2026-11-20T10:00:00Z",
                         "subject": {"reference": f"Patient/{PT}"}, **extra}
    if appointment:
        r["extension"] = [{"url": APPOINTMENT_EXTENSION, "valueReference": {"reference": f"Appointment/{appointment}"}}]
    return r


def appointment(pid: str = PT) -> dict:
    return {"resourceType": "Appointment", "id": "ap-1", "status": "booked", "start": "2026-12-10T09:00:00-06:00",
            "serviceType": [{"text": "Annual physical"}],
            "participant": [{"actor": {"reference": f"Patient/{pid}"}}]}


@pytest.fixture
def gw() -> respx.MockRouter:
    with respx.mock(base_url=FHIR, assert_all_called=False) as router:
        yield router


def form_visit(tmp_path: Path, form: dict, method: str = "GET", *, data: dict | None = None,
               query: str = "", lang: str | None = None) -> Any:
    return visit(tmp_path, method, f"/portal/forms/{form['id']}", path_params={"questionnaire_id": form["id"]},
                 data=data, query=query, lang=lang)


async def test_the_list_shows_forms_to_fill_in_with_their_state_and_due_date(tmp_path: Path,
                                                                            gw: respx.MockRouter) -> None:
    gw.get("/Task").respond(json=bundle(task(INTAKE), task(CHECKIN, focus="ap-1")))
    gw.get("/QuestionnaireResponse").respond(json=bundle(response(CHECKIN, "in-progress", appointment="ap-1")))
    gw.get("/Questionnaire").respond(json=bundle(INTAKE, CHECKIN))
    page = await forms.list_forms(visit(tmp_path, path="/portal/forms"))
    words = text(page)
    assert "New patient intake To do" in words and "Pre-visit check-in Draft saved" in words
    assert "For your visit: Annual physical" in words and "Please fill in by" in words
    assert 'href="/portal/forms/previsitcheckin?appointment=ap-1"' in page.body.decode()


async def test_a_form_renders_each_question_with_its_label_and_required_mark(tmp_path: Path,
                                                                            gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{INTAKE['id']}").respond(json=INTAKE)
    gw.get("/QuestionnaireResponse").respond(json=bundle())
    page = await forms.fill_form(form_visit(tmp_path, INTAKE))
    html, words = page.body.decode(), text(page)
    assert '<label for="q-1-2">Date of birth (required)</label>' in html
    assert '<input type="date" id="q-1-2" name="q-1-2"' in html
    assert 'type="checkbox" id="q-2-1-0" name="q-2-1"' in html  # several conditions may be ticked
    assert "Answer this only if your answer to “Are you allergic to any medicines?” was “Yes”." in words
    assert "Save a draft" in words and "Send to my care team" in words


async def test_sending_with_problems_shows_them_at_each_question_and_writes_nothing(
        tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    gw.get("/QuestionnaireResponse").respond(json=bundle())
    post = gw.post("/QuestionnaireResponse").respond(201, json={})
    data = {**FILLED, "q-3": "eleven", "csrf_token": "csrf-1", "submission": "s" * 20, "action": "send"}
    del data["q-1"]
    page = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data))
    html = page.body.decode()
    assert page.status_code == 422 and not post.called
    assert re.search(r'id="q-3-error"><p>Please enter a whole number, like 3.</p>', html)
    assert 'aria-invalid="true"' in html
    # The summary names the question; the field's own message sits beside it.
    assert '<a href="#q-1">What would you like to talk about at this visit? Please answer this question.</a>' in html
    assert 'id="q-1-error"><p>Please answer this question.</p>' in html
    assert 'value="eleven"' in html  # what was typed stays, to correct


async def test_a_draft_is_created_once_then_saved_in_place(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    gw.get("/Appointment/ap-1").respond(json=appointment())
    gw.get("/Task").respond(json=bundle(task(CHECKIN, focus="ap-1")))
    searched = gw.get("/QuestionnaireResponse").respond(json=bundle())
    post = gw.post("/QuestionnaireResponse").respond(201, json=response(CHECKIN, "in-progress"))
    data = {"q-1": "My knee", "csrf_token": "csrf-1", "submission": "a" * 20, "action": "save"}
    page = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data, query="appointment=ap-1"))
    assert page.status_code == 303 and page.headers["location"] == (
        f"/portal/forms/{CHECKIN['id']}?appointment=ap-1&saved=1")
    sent = json.loads(post.calls.last.request.content)
    assert sent["status"] == "in-progress" and sent["extension"][0]["valueReference"] == {
        "reference": "Appointment/ap-1"}
    assert post.calls.last.request.headers["Idempotency-Key"] == "form-" + "a" * 20
    # The next save finds the draft and changes it in place, guarded by its version.
    searched.respond(json=bundle(response(CHECKIN, "in-progress", appointment="ap-1")))
    put = gw.put("/QuestionnaireResponse/qr-1").respond(200, json=response(CHECKIN, "completed"))
    data = {**FILLED, "csrf_token": "csrf-1", "submission": "b" * 20, "action": "send"}
    page = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data, query="appointment=ap-1"))
    assert page.status_code == 303 and page.headers["location"].endswith("sent=1")
    assert put.calls.last.request.headers["If-Match"] == 'W/"4"'
    assert json.loads(put.calls.last.request.content)["status"] == "completed"
    assert post.call_count == 1


async def test_a_sent_form_is_read_back_and_cannot_be_sent_again(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    gw.get("/QuestionnaireResponse").respond(json=bundle(response(CHECKIN, "completed", item=[
        {"linkId": "pain", "text": "Pain?", "answer": [{"valueInteger": 4}]},
        {"linkId": "er-visit", "answer": [{"valueBoolean": False}]}])))
    writes = gw.route(method__in=["POST", "PUT"]).respond(200, json={})
    page = await forms.fill_form(form_visit(tmp_path, CHECKIN))
    words = text(page)
    assert "It can no longer be changed" in words and "Send to my care team" not in words
    assert "How much pain are you in right now, from 0 (none) to 10 (the worst)? 4" in words
    assert "emergency room or stayed in a hospital since your last visit? No" in words
    data = {**FILLED, "csrf_token": "csrf-1", "submission": "c" * 20, "action": "send"}
    again = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data))
    assert again.status_code == 409 and not writes.called


async def test_another_patients_visit_or_an_unpublished_form_is_not_found(tmp_path: Path,
                                                                         gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    gw.get("/Appointment/ap-9").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    writes = gw.route(method__in=["POST", "PUT"]).respond(200, json={})
    with pytest.raises(NotFound):
        await forms.fill_form(form_visit(tmp_path, CHECKIN, query="appointment=ap-9"))
    with pytest.raises(NotFound):
        data = {**FILLED, "csrf_token": "csrf-1", "submission": "d" * 20, "action": "send"}
        await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data, query="appointment=ap-9"))
    gw.get("/Questionnaire/retired").respond(json={**CHECKIN, "id": "retired", "status": "retired"})
    with pytest.raises(NotFound):
        await forms.fill_form(visit(tmp_path, path="/portal/forms/retired",
                                    path_params={"questionnaire_id": "retired"}))
    assert not writes.called


async def test_the_same_form_sent_again_after_it_was_saved_writes_nothing_more(
        tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    draft = response(CHECKIN, "in-progress", item=[{"linkId": "reason", "answer": [{"valueString": "My knee"}]}])
    gw.get("/QuestionnaireResponse").respond(json=bundle(draft))
    writes = gw.route(method__in=["POST", "PUT"]).respond(200, json={})
    data = {"q-1": "My knee", "csrf_token": "csrf-1", "submission": "e" * 20, "action": "save"}
    page = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data))
    assert page.status_code == 303 and page.headers["location"].endswith("saved=1")
    assert not writes.called
    changed = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data={**data, "q-1": "My left knee"}))
    assert changed.status_code == 303 and writes.call_count == 1
    assert writes.calls.last.request.headers["Idempotency-Key"] == "form-" + "e" * 20 + "-qr-1-4"


async def test_a_visits_check_in_the_clinic_recorded_through_its_task_shows_as_sent(
        tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    gw.get("/Appointment/ap-1").respond(json=appointment())
    done = task(CHECKIN, "completed", focus="ap-1")
    done["output"] = [{"type": {"text": "Response"}, "valueReference": {"reference": "QuestionnaireResponse/qr-7"}}]
    gw.get("/Task").respond(json=bundle(done))
    gw.get("/QuestionnaireResponse").respond(json=bundle(
        response(CHECKIN, "completed", "qr-7", encounter={"reference": "Encounter/e-1"},
                 item=[{"linkId": "reason", "answer": [{"valueString": "Annual check"}]}])))
    page = await forms.fill_form(form_visit(tmp_path, CHECKIN, query="appointment=ap-1"))
    assert "It can no longer be changed" in text(page) and "Annual check" in text(page)
    # The same form with no visit named is a new one: that visit's answers are not it.
    blank = await forms.fill_form(form_visit(tmp_path, CHECKIN))
    assert "Send to my care team" in text(blank) and "Annual check" not in text(blank)


async def test_the_forms_pages_in_spanish(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Task").respond(json=bundle(task(INTAKE), task(CHECKIN, focus="ap-1")))
    gw.get("/QuestionnaireResponse").respond(json=bundle(response(CHECKIN, "in-progress", appointment="ap-1")))
    gw.get("/Questionnaire").respond(json=bundle(INTAKE, CHECKIN))
    listed = text(await forms.list_forms(visit(tmp_path, path="/portal/forms", lang="es")))
    for spanish in ("Formularios que su clínica le pidió llenar.", "Para llenar", "New patient intake Sin empezar",
                    "Pre-visit check-in Borrador guardado", "Para su cita: Annual physical",
                    "Llénelo antes del domingo, 20 de diciembre de 2026", "Todavía no ha enviado formularios."):
        assert spanish in listed, spanish
    assert not re.search(r"\b(To fill in|Draft saved|For your visit|Please fill in|December|Sent)\b", listed)

    gw.get(f"/Questionnaire/{CHECKIN['id']}").respond(json=CHECKIN)
    gw.get("/QuestionnaireResponse").respond(json=bundle())
    data = {**FILLED, "q-3": "eleven", "csrf_token": "csrf-1", "submission": "s" * 20, "action": "send"}
    del data["q-1"]
    page = await forms.save_form(form_visit(tmp_path, CHECKIN, "POST", data=data, lang="es"))
    html, words = page.body.decode(), text(page)
    assert page.status_code == 422
    assert re.search(r'id="q-3-error"><p>Escriba un número entero, como 3.</p>', html)
    assert 'id="q-1-error"><p>Conteste esta pregunta.</p>' in html
    for spanish in ("Volver a sus formularios", "(obligatoria)", "Las preguntas marcadas (obligatoria) se deben",
                    "Enviar a mi equipo médico", "Guardar un borrador", "Sí", "No"):
        assert spanish in words, spanish
    for english in ("(required)", "Back to your forms", "Save a draft", "Send to my care team", "Please answer"):
        assert english not in words, english

    gw.get("/QuestionnaireResponse").respond(json=bundle(response(CHECKIN, "completed", item=[
        {"linkId": "er-visit", "answer": [{"valueBoolean": False}]}])))
    sent = text(await forms.fill_form(form_visit(tmp_path, CHECKIN, lang="es")))
    assert "Usted envió este formulario el viernes, 20 de noviembre de 2026. Ya no se puede cambiar." in sent
    assert "Sus respuestas" in sent and "since your last visit? No" in sent and "It can no longer" not in sent
