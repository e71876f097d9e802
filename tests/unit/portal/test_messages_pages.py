"""The Messages pages with respx standing in for the gateway's /fhir: what a person reads, what each
form sends (and how often), and what a refused or disguised request leaves behind."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from starlette.requests import Request

from portal.core import FormExpired, PortalDeps, Visit
from portal.fhir import NotFound, PortalFhir
from portal.pages import messages
from portal.sessions import PortalSession, Tokens
from portal.settings import PortalUiSettings
from web.tls import client_tls

from .pages_harness import AccountChoices, portal_for

FHIR = "http://gw.test/fhir"
PT = "pt-1"
DOC = {"reference": "Practitioner/prac-01", "display": "Dr. Margaret Ellison"}
PDF = b"%PDF-1.4\n%%EOF\n"


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def note(mid: str, *, mine: bool, sent: str = "2026-11-20T10:00:00Z", received: str | None = None,
         part_of: str | None = None, **extra: Any) -> dict:
    m = {"resourceType": "Communication", "id": mid, "meta": {"versionId": "1"}, "status": "completed",
         "subject": {"reference": f"Patient/{PT}"}, "sent": sent, "topic": {"text": f"About {mid}"},
         "sender": {"reference": f"Patient/{PT}"} if mine else DOC,
         "recipient": [DOC] if mine else [{"reference": f"Patient/{PT}"}],
         "payload": [{"contentString": f"Text of {mid}"}], **extra}
    if received:
        m["received"] = received
    if part_of:
        m["partOf"] = m["inResponseTo"] = [{"reference": f"Communication/{part_of}"}]
    return m


CARE_TEAM = {"resourceType": "CareTeam", "id": "ct", "status": "active", "subject": {"reference": f"Patient/{PT}"},
             "participant": [
                 {"member": DOC, "role": [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/"
                                                                 "staff-role", "code": "clinician"}]}]},
                 {"member": {"reference": "Organization/org-team-care", "display": "Care team"}}]}


def visit(tmp_path: Path, method: str = "GET", path: str = "/portal/messages", *, path_params: dict | None = None,
          data: dict | None = None, files: dict | None = None, query: str = "",
          accounts: AccountChoices | None = None, lang: str | None = None) -> Visit:
    settings = PortalUiSettings(state_dir=tmp_path)
    now = time.time()
    deps = PortalDeps(settings=settings, redis=Redis(port=1), clients=None, signins=None,  # type: ignore[arg-type]
                      accounts=accounts or AccountChoices(), app=object())  # type: ignore[arg-type]
    portal = portal_for(deps)
    session = PortalSession(id="s", account_id="a", fhir_user=f"Patient/{PT}", patient_id=PT, patient_name="Ana",
                            tokens=Tokens("t", now + 3600), csrf_token="csrf-1", created=now, last_seen=now,
                            extra={"lang": lang} if lang else {})
    body, headers = b"", []
    if method == "POST":
        built = httpx.Request("POST", "http://portal.test" + path, data=data, files=files or {"none": ("", b"")})
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
                       "scheme": "http", "path_params": path_params or {}}, receive)
    # The process's one TLS context: a client of its own would load the CA bundle again for every page.
    fhir = PortalFhir(httpx.AsyncClient(verify=client_tls()), FHIR, "t", request_id="r", client_address=None,
                      sign_address=None)
    return Visit(portal, request, session, fhir)


def text(response: Any) -> str:
    html = response.body.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


@pytest.fixture
def gw() -> respx.MockRouter:
    with respx.mock(base_url=FHIR, assert_all_called=False) as router:
        yield router


async def test_inbox_lists_conversations_newest_first_with_unread_in_words(tmp_path: Path,
                                                                           gw: respx.MockRouter) -> None:
    gw.get("/Communication").respond(json=bundle(
        note("old", mine=True, sent="2026-10-01T10:00:00Z", received="2026-10-01T12:00:00Z"),
        note("new", mine=False, sent="2026-11-25T10:00:00Z")))
    page = await messages.inbox(visit(tmp_path))
    words = text(page)
    assert "not for emergencies" in words and "call 911" in words
    assert words.index("About new") < words.index("About old")
    assert "You have 1 unread message" in words and "Unread" in words


async def test_opening_a_conversation_marks_only_messages_to_the_patient_as_read(tmp_path: Path,
                                                                                 gw: respx.MockRouter) -> None:
    root = note("t1", mine=True, received="2026-11-20T11:00:00Z")
    answer = note("t2", mine=False, part_of="t1", sent="2026-11-21T10:00:00Z",
                  payload=[{"contentString": "<img src=x onerror=alert(1)>"}])
    gw.get("/Communication/t1").respond(json=root)
    gw.get("/Communication").respond(json=bundle(answer))
    put = gw.put("/Communication/t2").respond(200, json={**answer, "received": "now"})
    page = await messages.conversation(visit(tmp_path, path_params={"thread_id": "t1"}))
    html = page.body.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "New" in text(page)
    assert put.call_count == 1  # the patient's own message (to the doctor) is not theirs to mark
    sent = json.loads(put.calls.last.request.content)
    assert sent["received"] and put.calls.last.request.headers["If-Match"] == 'W/"1"'
    assert put.calls.last.request.headers["Idempotency-Key"] == "read-t2-1"


async def test_a_reply_is_not_a_conversation_address(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Communication/t2").respond(json=note("t2", mine=False, part_of="t1"))
    with pytest.raises(NotFound):
        await messages.conversation(visit(tmp_path, path_params={"thread_id": "t2"}))


def _form(**extra: str) -> dict:
    return {"csrf_token": "csrf-1", "submission": "sub-abcdefghijklmnop", "to": "Practitioner/prac-01",
            "topic": "care", "subject": "My knee", "text": "It still hurts", **extra}


async def test_sending_uses_the_submission_as_identifier_and_idempotency_key(tmp_path: Path,
                                                                             gw: respx.MockRouter) -> None:
    gw.get("/CareTeam").respond(json=bundle(CARE_TEAM))
    post = gw.post("/Communication").respond(201, json=note("n1", mine=True))
    page = await messages.send_new(visit(tmp_path, "POST", data=_form(),
                                         files={"file": ("knee.jpg", PDF, "image/jpeg")}))
    assert page.status_code == 303 and page.headers["location"] == "/portal/messages/n1?sent=1"
    request = post.calls.last.request
    assert request.headers["Idempotency-Key"] == "message-sub-abcdefghijklmnop"
    body = json.loads(request.content)
    assert body["identifier"][0]["value"] == "sub-abcdefghijklmnop"
    att = body["payload"][1]["contentAttachment"]
    assert att["contentType"] == "application/pdf" and att["title"] == "knee.pdf"
    assert base64.b64decode(att["data"]) == PDF


async def test_form_problems_come_back_field_by_field_and_nothing_is_sent(tmp_path: Path,
                                                                          gw: respx.MockRouter) -> None:
    gw.get("/CareTeam").respond(json=bundle(CARE_TEAM))
    post = gw.post("/Communication").respond(201, json={})
    page = await messages.send_new(visit(tmp_path, "POST", data=_form(to="Practitioner/prac-99", text=""),
                                         files={"file": ("x.png", b"GIF89a...", "image/png")}))
    words = text(page)
    assert page.status_code == 422
    for problem in ("Choose who should get your message", "Write your message", "not a PDF, JPEG or PNG"):
        assert problem in words
    assert 'aria-invalid="true"' in page.body.decode() and "sub-abcdefghijklmnop" in page.body.decode()
    assert not post.called


async def test_the_gateways_refusal_is_shown_in_words(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/CareTeam").respond(json=bundle(CARE_TEAM))
    gw.post("/Communication").respond(422, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "business-rule",
         "diagnostics": "Practitioner/prac-01 is not part of your care team"}]})
    page = await messages.send_new(visit(tmp_path, "POST", data=_form()))
    assert page.status_code == 422 and "is not part of your care team." in text(page)


async def test_a_form_without_its_tokens_is_refused(tmp_path: Path, gw: respx.MockRouter) -> None:
    post = gw.post("/Communication").respond(201, json={})
    with pytest.raises(FormExpired):
        await messages.send_new(visit(tmp_path, "POST", data=_form(csrf_token="wrong")))
    with pytest.raises(FormExpired):
        await messages.send_new(visit(tmp_path, "POST", data=_form(submission="x")))
    assert not post.called


async def test_a_reply_into_a_thread_outside_the_record_writes_nothing(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Communication/theirs").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    post = gw.post("/Communication").respond(201, json={})
    with pytest.raises(NotFound):
        await messages.reply(visit(tmp_path, "POST", "/portal/messages/theirs/reply",
                                   path_params={"thread_id": "theirs"}, data={**_form()}))
    assert not post.called


async def test_files_download_as_what_their_bytes_are(tmp_path: Path, gw: respx.MockRouter) -> None:
    stored = note("f1", mine=True, payload=[{"contentString": "see file"}, {"contentAttachment": {
        "contentType": "image/png", "url": "Binary/b1", "title": "x.png"}}, {"contentAttachment": {
            "contentType": "image/png", "data": base64.b64encode(b"<html>").decode(), "title": "evil.png"}}])
    gw.get("/Communication/f1").respond(json=stored)
    gw.get("/Binary/b1").respond(json={"resourceType": "Binary", "id": "b1", "contentType": "image/png",
                                       "data": base64.b64encode(PDF).decode()})
    got = await messages.attachment(visit(tmp_path, path_params={"message_id": "f1", "index": 0}))
    assert got.body == PDF and got.media_type == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="x.pdf"'
    with pytest.raises(NotFound):  # not a kind of file we hand out, whatever it claims to be
        await messages.attachment(visit(tmp_path, path_params={"message_id": "f1", "index": 1}))
    with pytest.raises(NotFound):
        await messages.attachment(visit(tmp_path, path_params={"message_id": "f1", "index": 5}))


async def test_the_messages_pages_in_spanish(tmp_path: Path, gw: respx.MockRouter) -> None:
    gw.get("/Communication").respond(json=bundle(
        note("old", mine=True, sent="2026-10-01T10:00:00Z", received="2026-10-01T12:00:00Z",
             category=[{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/message-topic",
                                    "code": "billing"}]}]),
        note("new", mine=False, sent="2026-11-25T10:00:00Z")))
    inbox = await messages.inbox(visit(tmp_path, lang="es"))
    words = text(inbox)
    assert '<html lang="es">' in inbox.body.decode() and ' lang="en"' not in inbox.body.decode().split("<main")[1]
    for spanish in ("Los mensajes no son para emergencias.", "llame al 911", "Escribir un mensaje nuevo",
                    "Tiene 1 mensaje sin leer.", "Sin leer", "Pregunta sobre una factura · con Dr. Margaret Ellison",
                    "último mensaje: jueves, 1 de octubre de 2026, 5:00 a.m."):
        assert spanish in words, spanish
    for english in ("not for emergencies", "unread message", "with Dr.", "last message", "Billing question",
                    "Message "):
        assert english not in words, english

    stored = note("t1", mine=False, payload=[{"contentString": "Vea el archivo"}, {"contentAttachment": {
        "contentType": "application/pdf", "url": "Binary/b1", "title": "resultados.pdf", "size": 1_572_864}}],
                  category=[{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/message-topic",
                                         "code": "care"}]}])
    gw.get("/Communication/t1").respond(json=stored)
    gw.get("/Communication").respond(json=bundle())  # no replies
    gw.put("/Communication/t1").respond(200, json=stored)
    thread = text(await messages.conversation(visit(tmp_path, path_params={"thread_id": "t1"}, lang="es")))
    for spanish in ("Volver a sus mensajes", "Pregunta sobre mi atención · con Dr. Margaret Ellison", "Nuevo",
                    "Archivo: resultados.pdf (PDF, 1.5 MB)", "Responder", "Su mensaje", "Enviar respuesta",
                    "Agregar un archivo (si quiere)"):
        assert spanish in thread, spanish
    assert not re.search(r"\b(Reply|Your message|Add a file|Back to your messages|with)\b", thread)

    gw.get("/CareTeam").respond(json=bundle(CARE_TEAM))
    refused = await messages.send_new(visit(tmp_path, "POST", data=_form(topic="", text=""), lang="es",
                                            files={"file": ("x.png", b"GIF89a...", "image/png")}))
    words = text(refused)
    assert refused.status_code == 422
    for spanish in ("¿Quién debe recibirlo?", "¿De qué se trata?", "Pregunta sobre un medicamento", "Asunto",
                    "Elija de qué se trata su mensaje.", "Escriba su mensaje.", "Este archivo no es PDF, JPEG ni PNG.",
                    "Enviar mensaje"):
        assert spanish in words, spanish
    for english in ("Choose what", "Write your message", "not a PDF", "Medication question", "Send message"):
        assert english not in words, english
