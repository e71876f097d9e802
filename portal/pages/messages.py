"""Secure messages: the inbox (conversations, newest first), a conversation (opened = marked as read),
writing a new message to the care team or a named clinician, replying, and files sent with messages.

Every change is a write through the gateway, whose rules decide what is allowed; the page only makes it
easy to do right. Each form carries a one-off submission id: it becomes the message's identifier and
the request's Idempotency-Key, so a form sent twice (a double click, a retry after a lost answer) writes
one message. The page's words, and the mappers', are in the reader's language; what is written into the
record (a topic's name) stays English.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from locales import ENGLISH, gettext_in
from mappers.attachments import (
    MAX_ATTACHMENT_BYTES,
    TOO_BIG,
    AttachmentError,
    checked_file,
    decoded,
    safe_title,
    sniff,
)
from mappers.messages import (
    TOPICS,
    Recipient,
    Thread,
    care_team_recipients,
    compose_errors,
    outgoing,
    thread_id,
    threads,
    topic_choices,
)
from mappers.validation import is_fhir_id
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, FormExpired, Portal, Visit
from ..fhir import NotFound, RecordUnavailable, WriteRefused

log = logging.getLogger("portal.messages")
SUBMISSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
INBOX_SIZE = 100


def me_refs(visit: Visit) -> list[str]:
    """The references that mean "you" in a message: the patient, and the caregiver writing for them."""
    return list(dict.fromkeys([f"Patient/{visit.patient_id}", visit.session.fhir_user]))


def new_submission() -> str:
    return secrets.token_urlsafe(18)


async def _recipients(visit: Visit) -> list[Recipient]:
    teams = await visit.fhir.search("CareTeam", [("patient", visit.patient_id), ("status", "active")],
                                    all_pages=False)
    return care_team_recipients(teams)


async def _conversation(visit: Visit, tid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first message of a conversation and every message in it (the gateway answers 404 for one
    outside this record, exactly as for one that does not exist)."""
    if not is_fhir_id(tid):
        raise NotFound("Communication")
    root = await visit.fhir.read("Communication", tid)
    if thread_id(root) != str(root.get("id")):
        raise NotFound("Communication")  # a reply's id is not a conversation's address
    replies = await visit.fhir.search("Communication", [("subject", visit.patient_id),
                                                        ("part-of", f"Communication/{tid}"), ("_count", "200")])
    return root, [root, *replies]


async def read_form(visit: Visit) -> tuple[dict[str, str], UploadFile | None]:
    form = await visit.request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        return fields, upload
    return fields, None


async def read_attachment(upload: UploadFile | None, errors: dict[str, list[str]],
                          locale: str = ENGLISH) -> dict[str, Any] | None:
    """The chosen file as an inline Attachment (the gateway stores it in the record), checked here too so
    the person hears at once what is wrong with it (in `locale`)."""
    if upload is None:
        return None
    data = await upload.read(MAX_ATTACHMENT_BYTES + 1)
    try:
        kind = checked_file(data)
    except AttachmentError as exc:
        errors["file"] = [gettext_in(locale, str(exc))]
        return None
    return {"contentType": kind, "data": base64.b64encode(data).decode(), "title": safe_title(upload.filename, kind)}


def submission_of(fields: dict[str, str]) -> str:
    value = fields.get("submission", "")
    if not SUBMISSION.fullmatch(value):
        raise FormExpired()
    return value


async def send_message(visit: Visit, body: dict[str, Any], submission: str, errors: dict[str, list[str]]
                ) -> dict[str, Any] | None:
    try:
        return await visit.fhir.write("POST", "Communication", body, idempotency_key=f"message-{submission}")
    except WriteRefused as exc:
        errors["text" if "file" not in exc.reason.lower() else "file"] = [plain_refusal(exc, visit.locale)]
        return None


def plain_refusal(exc: WriteRefused, locale: str = ENGLISH) -> str:
    """Why the record refused a write, in words (the record's own reason is English only)."""
    if exc.status == 413:
        return gettext_in(locale, TOO_BIG)
    if exc.status == 409:
        return gettext_in(locale, "Your message is still being sent. Please wait a moment, then look in your "
                                  "messages.")
    return exc.reason if exc.reason.endswith(".") else exc.reason + "."


async def _mark_read(visit: Visit, raw: list[dict[str, Any]], me: list[str]) -> None:
    """Messages to this person that they have now opened get their read mark (one write each; one that
    fails stays unread and is tried again next time)."""
    async def one(message: dict[str, Any]) -> None:
        body = {k: v for k, v in message.items() if k != "meta"}
        body["received"] = visit.portal.clock.now().isoformat(timespec="seconds")
        version = (message.get("meta") or {}).get("versionId")
        try:
            await visit.fhir.write("PUT", f"Communication/{message['id']}", body,
                                   idempotency_key=f"read-{message['id']}-{version}",
                                   if_match=f'W/"{version}"' if version else None)
        except (WriteRefused, RecordUnavailable, NotFound):
            log.info("a message could not be marked as read")
    mine = set(me)
    unread = [m for m in raw if not m.get("received")
              and any((r or {}).get("reference") in mine for r in m.get("recipient") or [])]
    await asyncio.gather(*(one(m) for m in unread))


async def inbox(visit: Visit) -> Response:
    clock = visit.portal.clock
    found = await visit.fhir.search("Communication", [("subject", visit.patient_id), ("_sort", "-sent"),
                                                      ("_count", str(INBOX_SIZE))], all_pages=False)
    conversations = threads(found, me_refs(visit), clock.today(), clock.tz, locale=clock.formats(visit.locale))
    return visit.render("portal/messages.html", title=_l("Messages"), conversations=conversations,
                        unread=sum(t.unread for t in conversations),
                        sent=visit.request.query_params.get("sent") == "1")

async def compose(visit: Visit) -> Response:
    asked = visit.request.query_params.get("topic", "")
    form = {"topic": asked if asked in TOPICS else "", "to": "",
            "subject": visit.request.query_params.get("subject", "")[:120]}
    if form["topic"]:
        form["to"] = TOPICS[form["topic"]][1]
    return _compose_page(visit, await _recipients(visit), form, {}, new_submission())

def _compose_page(visit: Visit, recipients: list[Recipient], form: dict[str, str],
                  errors: dict[str, list[str]], submission: str, status: int = 200) -> Response:
    return visit.render("portal/message_new.html", status, title=_l("Write a message"), recipients=recipients,
                        topics=topic_choices(visit.locale), form=form, errors=errors, submission=submission)

async def send_new(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, upload = await read_form(visit)
    submission = submission_of(fields)
    recipients = await _recipients(visit)
    errors = compose_errors(fields, recipients, locale=visit.portal.clock.formats(visit.locale))
    attachment = await read_attachment(upload, errors, visit.locale)
    if not errors:
        body = outgoing(patient_ref=f"Patient/{visit.patient_id}", recipient=fields["to"], text=fields["text"],
                        submission=submission, topic=fields["topic"], subject=fields["subject"],
                        attachment=attachment)
        written = await send_message(visit, body, submission, errors)
        if written is not None:
            return RedirectResponse(f"{PREFIX}/messages/{thread_id(written)}?sent=1", status_code=303)
    return _compose_page(visit, recipients, fields, errors, submission, 422)

async def conversation(visit: Visit) -> Response:
    tid = visit.request.path_params["thread_id"]
    _, raw = await _conversation(visit, tid)
    me = me_refs(visit)
    clock = visit.portal.clock
    shown = threads(raw, me, clock.today(), clock.tz, locale=clock.formats(visit.locale))[0]  # new ones marked
    await _mark_read(visit, raw, me)
    return _thread_page(visit, shown, {}, {}, new_submission(),
                        sent=visit.request.query_params.get("sent") == "1")

def _thread_page(visit: Visit, shown: Thread, form: dict[str, str], errors: dict[str, list[str]],
                 submission: str, status: int = 200, sent: bool = False) -> Response:
    return visit.render("portal/message_thread.html", status, title=_l("Message"), thread=shown, form=form,
                        errors=errors, submission=submission, sent=sent)

async def reply(visit: Visit) -> Response:
    await visit.check_csrf()
    tid = visit.request.path_params["thread_id"]
    fields, upload = await read_form(visit)
    submission = submission_of(fields)
    root, raw = await _conversation(visit, tid)
    clock = visit.portal.clock
    shown = threads(raw, me_refs(visit), clock.today(), clock.tz, locale=clock.formats(visit.locale))[0]
    errors = compose_errors(fields, [], reply=True, locale=clock.formats(visit.locale))
    attachment = await read_attachment(upload, errors, visit.locale)
    if not errors:
        recipient = shown.reply_recipient or TOPICS["care"][1]
        body = outgoing(patient_ref=f"Patient/{visit.patient_id}", recipient=recipient, text=fields["text"],
                        submission=submission, thread=root, answers=shown.reply_to, attachment=attachment)
        if await send_message(visit, body, submission, errors) is not None:
            return RedirectResponse(f"{PREFIX}/messages/{tid}?sent=1#latest", status_code=303)
    return _thread_page(visit, shown, fields, errors, submission, 422)

async def attachment(visit: Visit) -> Response:
    """A file sent with a message, as a download (never shown inline: a file is not a page)."""
    params = visit.request.path_params
    message = await visit.fhir.read("Communication", params["message_id"])
    files = [p["contentAttachment"] for p in message.get("payload") or []
             if isinstance(p, dict) and isinstance(p.get("contentAttachment"), dict)]
    index = int(params["index"])
    if index >= len(files):
        raise NotFound("attachment")
    att = files[index]
    data_b64 = att.get("data")
    url = att.get("url") or ""
    if not data_b64 and url.startswith("Binary/"):
        data_b64 = (await visit.fhir.read("Binary", url.split("/", 1)[1])).get("data")
    try:
        data = decoded(data_b64 or "")
    except AttachmentError as exc:
        raise NotFound("attachment") from exc
    kind = sniff(data)
    if kind is None:
        raise NotFound("attachment")  # only the kinds of file we accept are ever handed out
    name = safe_title(att.get("title"), kind)
    return Response(data, media_type=kind, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def add_message_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/messages", include_in_schema=False)(portal.page(inbox))
    router.get(f"{PREFIX}/messages/new", include_in_schema=False)(portal.page(compose))
    router.post(f"{PREFIX}/messages", include_in_schema=False)(portal.page(send_new))
    router.get(PREFIX + "/messages/{thread_id}", include_in_schema=False)(portal.page(conversation))
    router.post(PREFIX + "/messages/{thread_id}/reply", include_in_schema=False)(portal.page(reply))
    router.get(PREFIX + "/messages/{message_id}/files/{index:int}", include_in_schema=False)(portal.page(attachment))
