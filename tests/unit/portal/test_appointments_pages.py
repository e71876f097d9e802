"""The Appointments pages with respx standing in for the gateway's /fhir: what a person reads, what each
form sends (and how often), the clinic's notice rule, and what a refused or lost booking leaves behind."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import respx

from mappers.booking import VISIT_TYPE_SYSTEM
from portal.fhir import NotFound
from portal.pages import appointments

from .test_messages_pages import FHIR, PT, bundle, text, visit

DOC = {"reference": "Practitioner/prac-02", "display": "Dr. Samuel Okafor"}
SCHEDULE = {"resourceType": "Schedule", "id": "sched-02", "active": True,
            "serviceType": [{"coding": [{"system": VISIT_TYPE_SYSTEM, "code": "followup"}], "text": "Follow-up visit"},
                            {"coding": [{"system": VISIT_TYPE_SYSTEM, "code": "sick"}], "text": "Sick visit"}],
            "actor": [DOC, {"reference": "Location/loc-main", "display": "Wabash Clinic"}]}


@pytest.fixture
def gw() -> respx.MockRouter:
    with respx.mock(base_url=FHIR, assert_all_called=False) as router:
        yield router


def at(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(second=0, microsecond=0)


def slot(sid: str, start: datetime, status: str = "free") -> dict:
    return {"resourceType": "Slot", "id": sid, "meta": {"versionId": "1"}, "status": status,
            "schedule": {"reference": "Schedule/sched-02"}, "serviceType": SCHEDULE["serviceType"],
            "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}


def appt(aid: str, start: datetime, status: str = "booked", patient: str = PT) -> dict:
    return {"resourceType": "Appointment", "id": aid, "meta": {"versionId": "3"}, "status": status,
            "serviceType": [SCHEDULE["serviceType"][0]], "description": "Follow-up visit",
            "slot": [{"reference": "Slot/s-old"}], "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "participant": [{"actor": {"reference": f"Patient/{patient}"}}, {"actor": DOC}]}


def form(**extra: str) -> dict:
    return {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", **extra}


async def test_visits_are_split_into_coming_up_and_past_in_words(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Appointment").respond(json=bundle(appt("a-next", at(3)), appt("a-old", at(-30), "fulfilled"),
                                               appt("a-off", at(5), "cancelled")))
    words = text(await appointments.list_page(visit(tmp_path, path="/portal/appointments")))
    coming, past = words.split("Past and cancelled visits")
    assert "Follow-up visit with Dr. Samuel Okafor" in coming and "Done" in past and "Cancelled" in past
    assert coming.count("Follow-up visit with") == 1
    assert "booked" not in words and "fulfilled" not in words  # words, not FHIR codes


async def test_the_week_is_a_list_of_days_with_links_to_each_free_time(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Schedule").respond(json=bundle(SCHEDULE))
    start = at(8).replace(hour=15, minute=30)
    slots = gw.get("/Slot").respond(json=bundle(slot("s-1", start), slot("s-busy", start, "busy")))
    page = await appointments.book(visit(tmp_path, path="/portal/appointments/book",
                                         query=f"clinician=sched-02&type=sick&date={start.date().isoformat()}"))
    html, words = page.body.decode(), text(page)
    assert page.status_code == 200
    assert "/portal/appointments/book/s-1?type=sick" in html and "s-busy" not in html
    sent = dict(slots.calls.last.request.url.params.multi_items())
    assert sent["schedule"] == "Schedule/sched-02" and sent["service-type"] == f"{VISIT_TYPE_SYSTEM}|sick"
    assert sent["status"] == "free"
    assert "Free times," in words and "Monday" in words


async def test_filters_that_are_not_on_the_list_are_explained_field_by_field(tmp_path: Path,
                                                                             gw: respx.MockRouter) -> None:
    gw.get("/Schedule").respond(json=bundle(SCHEDULE))
    gw.get("/Slot").respond(json=bundle())
    page = await appointments.book(visit(tmp_path, path="/portal/appointments/book",
                                         query="clinician=sched-99&type=surgery&date=yesterday"))
    words = text(page)
    assert page.status_code == 422 and 'aria-invalid="true"' in page.body.decode()
    for problem in ("Choose a clinician from the list", "Choose a kind of visit from the list",
                    "Enter a date like"):
        assert problem in words


async def test_booking_sends_one_appointment_keyed_by_the_submission(tmp_path: Path, gw: respx.MockRouter) -> None:
    start = at(4)
    gw.get("/Slot/s-1").respond(json=slot("s-1", start))
    post = gw.post("/Appointment").respond(201, json=appt("a-new", start))
    page = await appointments.book_post(visit(tmp_path, "POST", "/portal/appointments",
                                              data=form(slot="s-1", type="sick", reason="Sore throat")))
    assert page.status_code == 303 and page.headers["location"] == "/portal/appointments/a-new?booked=1"
    request = post.calls.last.request
    assert request.headers["Idempotency-Key"] == "booking-sub-abcdefghijklmnop"
    body = json.loads(request.content)
    assert body["slot"] == [{"reference": "Slot/s-1"}] and body["reasonCode"] == [{"text": "Sore throat"}]
    assert body["serviceType"][0]["coding"][0]["code"] == "sick"
    assert body["participant"][0]["actor"]["reference"] == f"Patient/{PT}"


async def test_a_time_taken_meanwhile_says_so_and_offers_the_nearest_free_ones(tmp_path: Path,
                                                                              gw: respx.MockRouter) -> None:
    start = at(4).replace(hour=15, minute=0)
    gw.get("/Slot/s-1").respond(json=slot("s-1", start))
    gw.get("/Schedule").respond(json=bundle(SCHEDULE))
    gw.get("/Slot").respond(json=bundle(slot("s-far", start + timedelta(days=6)), slot("s-1", start),
                                        slot("s-near", start + timedelta(minutes=30)),
                                        slot("s-before", start - timedelta(hours=1)),
                                        slot("s-next", start + timedelta(days=1))))
    gw.post("/Appointment").respond(409, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "conflict", "diagnostics": "That time has just been taken"}]})
    page = await appointments.book_post(visit(tmp_path, "POST", "/portal/appointments",
                                              data=form(slot="s-1", type="sick")))
    html, words = page.body.decode(), text(page)
    assert page.status_code == 409 and "That time was just taken" in words and "Nothing was booked" in words
    offered = [sid for sid in ("s-before", "s-near", "s-next", "s-far", "s-1") if f"/book/{sid}" in html]
    assert offered == ["s-before", "s-near", "s-next"]


async def test_a_made_up_slot_is_refused_and_nothing_is_written(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Slot/made-up").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    gw.get("/Schedule").respond(json=bundle(SCHEDULE))
    post = gw.post("/Appointment").respond(201, json={})
    page = await appointments.book_post(visit(tmp_path, "POST", "/portal/appointments",
                                              data=form(slot="made-up", type="sick")))
    assert page.status_code == 404 and "could not find that time" in text(page)
    bad = await appointments.book_post(visit(tmp_path, "POST", "/portal/appointments",
                                             data=form(slot="../Patient/pt-2", type="sick")))
    assert bad.status_code == 404
    assert not post.called


async def test_a_kind_of_visit_the_time_does_not_offer_is_a_field_error(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Slot/s-1").respond(json=slot("s-1", at(4)))
    gw.get("/Schedule").respond(json=bundle(SCHEDULE))
    post = gw.post("/Appointment").respond(201, json={})
    page = await appointments.book_post(visit(tmp_path, "POST", "/portal/appointments",
                                              data=form(slot="s-1", type="physical", reason="x" * 300)))
    words = text(page)
    assert page.status_code == 422 and "not offered for that kind of visit" in words and "200 characters" in words
    assert not post.called


async def test_a_visit_inside_the_notice_cannot_be_changed_and_says_why(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Appointment/a-soon").respond(json=appt("a-soon", at(0.5)))
    gw.get("/Questionnaire").respond(json=bundle({"resourceType": "Questionnaire", "id": "q-previsit-checkin",
                                                  "title": "Pre-visit check-in"}))
    page = await appointments.detail(visit(tmp_path, path_params={"appointment_id": "a-soon"}))
    html, words = page.body.decode(), text(page)
    assert "cannot be moved or cancelled online in the last 24 hours" in words
    assert "Cancel this visit" not in words and "move=a-soon" not in html
    assert "/portal/forms/q-previsit-checkin?appointment=a-soon" in html
    assert "calendar.ics" in html


async def test_cancelling_puts_the_cancelled_visit_with_if_match_once(tmp_path: Path, gw: respx.MockRouter) -> None:
    current = appt("a-1", at(5))
    gw.get("/Appointment/a-1").respond(json=current)
    put = gw.put("/Appointment/a-1").respond(200, json={**current, "status": "cancelled"})
    page = await appointments.cancel(visit(tmp_path, "POST", "/portal/appointments/a-1/cancel",
                                           path_params={"appointment_id": "a-1"}, data=form(reason="pat-fb")))
    assert page.status_code == 303 and page.headers["location"] == "/portal/appointments/a-1?cancelled=1"
    request = put.calls.last.request
    assert request.headers["If-Match"] == 'W/"3"'
    assert request.headers["Idempotency-Key"] == "cancel-sub-abcdefghijklmnop"
    sent = json.loads(request.content)
    assert sent["status"] == "cancelled" and sent["cancelationReason"]["coding"][0]["code"] == "pat-fb"


async def test_another_patients_appointment_is_not_found_and_nothing_is_written(tmp_path: Path,
                                                                              gw: respx.MockRouter) -> None:
    gw.get("/Appointment/theirs").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    put = gw.put("/Appointment/theirs").respond(200, json={})
    with pytest.raises(NotFound):
        await appointments.cancel(visit(tmp_path, "POST", "/portal/appointments/theirs/cancel",
                                        path_params={"appointment_id": "theirs"}, data=form(reason="pat")))
    with pytest.raises(NotFound):
        await appointments.move_post(visit(tmp_path, "POST", "/portal/appointments/theirs/move",
                                           path_params={"appointment_id": "theirs"}, data=form(slot="s-1")))
    assert not put.called


async def test_moving_puts_the_new_slot(tmp_path: Path, gw: respx.MockRouter) -> None:
    current = appt("a-1", at(5))
    gw.get("/Appointment/a-1").respond(json=current)
    gw.get("/Slot/s-2").respond(json=slot("s-2", at(6)))
    put = gw.put("/Appointment/a-1").respond(200, json=current)
    page = await appointments.move_post(visit(tmp_path, "POST", "/portal/appointments/a-1/move",
                                              path_params={"appointment_id": "a-1"}, data=form(slot="s-2")))
    assert page.status_code == 303 and page.headers["location"] == "/portal/appointments/a-1?moved=1"
    assert json.loads(put.calls.last.request.content)["slot"] == [{"reference": "Slot/s-2"}]
    assert put.calls.last.request.headers["Idempotency-Key"] == "move-sub-abcdefghijklmnop"


async def test_the_calendar_file_names_the_visit(tmp_path: Path, gw: respx.MockRouter) -> None:
    start = at(5)
    gw.get("/Appointment/a-1").respond(json=appt("a-1", start))
    page = await appointments.calendar(visit(tmp_path, path_params={"appointment_id": "a-1"}))
    body = page.body.decode()
    assert page.media_type.startswith("text/calendar") and "attachment" in page.headers["content-disposition"]
    assert "SUMMARY:Follow-up visit with Dr. Samuel Okafor" in body
    assert f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%S}Z" in body and "UID:appointment-a-1@" in body


SPANISH_DAY = re.compile(r"\b(lunes|martes|miércoles|jueves|viernes|sábado|domingo), \d{1,2} de [a-z]+\b")
ENGLISH_WORDS = re.compile(r"\b(with|Book|Coming up|Details|Free times|week|Cancel|Move|Done|Cancelled|minutes|"
                           r"When|Where|Status|Monday|Tuesday|Wednesday|Thursday|Friday|today|tomorrow|at)\b")


async def test_the_appointments_pages_in_spanish(tmp_path: Path, gw: respx.MockRouter) -> None:
    cancelled = {**appt("a-off", at(5), "cancelled"), "cancelationReason": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", "code": "pat-fb"}],
        "text": "I feel better"}}
    gw.get("/Appointment").respond(json=bundle(appt("a-next", at(3)), appt("a-old", at(-30), "fulfilled"), cancelled))
    page = await appointments.list_page(visit(tmp_path, path="/portal/appointments", lang="es"))
    words = text(page)
    assert '<html lang="es">' in page.body.decode()
    coming, past = words.split("Citas pasadas y canceladas")
    for spanish in ("Pedir una cita", "Próximas", "Follow-up visit con Dr. Samuel Okafor", "(30 minutos)",
                    "Detalles, agregar al calendario, cambiar o cancelar"):
        assert spanish in coming, spanish
    assert "Ya se hizo" in past and "Se canceló \N{EN DASH} Me siento mejor" in past
    assert SPANISH_DAY.search(past) and re.search(r"\d:\d\d [ap]\.m\.", past)  # "viernes, 30 de octubre, 9:00 a.m."
    assert not ENGLISH_WORDS.search(words.split("Citas", 1)[1].replace("Follow-up visit", "")), \
        ENGLISH_WORDS.findall(words.split("Citas", 1)[1].replace("Follow-up visit", ""))

    gw.get("/Schedule").respond(json=bundle(SCHEDULE))
    start = at(8).replace(hour=15, minute=30)
    gw.get("/Slot").respond(json=bundle(slot("s-1", start)))
    week = text(await appointments.book(visit(tmp_path, path="/portal/appointments/book", lang="es",
                                              query=f"date={start.date().isoformat()}")))
    for spanish in ("Con quién", "Cualquier persona", "Tipo de cita", "Ver horarios libres", "Semana siguiente",
                    "Horarios libres, "):
        assert spanish in week, spanish
    # "7-13 de diciembre de 2026" (an en dash), or across months "30 de noviembre - 6 de diciembre de 2026"
    assert re.search(r"Horarios libres, \d{1,2}( de \w+( de \d{4})?)?\s?\N{EN DASH}\s?\d{1,2} de \w+ de \d{4}", week)
    assert SPANISH_DAY.search(week) and not re.search(r"\b(Monday|Free times|Anyone)\b", week)

    gw.get("/Appointment/a-soon").respond(json=appt("a-soon", at(0.5)))
    gw.get("/Questionnaire").respond(json=bundle())
    detail = text(await appointments.detail(visit(tmp_path, path_params={"appointment_id": "a-soon"}, lang="es")))
    for spanish in ("Volver a sus citas", "Cuándo", "Con", "Estado", "Confirmada", "Agregar a su calendario",
                    "Las citas no se pueden cambiar ni cancelar en línea en las últimas 24 horas antes de empezar."):
        assert spanish in detail, spanish

    gw.get("/Slot/s-1").respond(json=slot("s-1", start))
    gw.post("/Appointment").respond(409, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "conflict", "diagnostics": "That time has just been taken"}]})
    taken = text(await appointments.book_post(visit(tmp_path, "POST", "/portal/appointments", lang="es",
                                                    data=form(slot="s-1", type="sick"))))
    assert "Otra persona acaba de tomar ese horario." in taken and "No se pidió ninguna cita." in taken
    assert "taken" not in taken and "Nothing was booked" not in taken
