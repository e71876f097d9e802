"""The inbox: patient messages to the person's teams (and to them by name), waiting ones oldest first with
their response clock; a conversation with the patient banner, where staff reply, assign it to a colleague
on the patient's care team, or mark it done. Every action is a FHIR write through the gateway (a reply
Communication, a work-item Task), checked there by the staff write rules and audited."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mappers import inbox
from mappers.messages import thread_id
from mappers.names import human_name
from mappers.references import local_reference, parse_reference
from mappers.staff import patient_banner
from mappers.validation import is_fhir_id
from portal.fhir import NotFound, PortalFhir, WriteRefused

from ..core import StaffArea, StaffVisit
from ..roles import teams_for
from ..settings import PREFIX

CHUNK = 20  # the gateway takes at most 20 values per search parameter
THREADS = 100


def _chunks(values: list[str], size: int = CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


async def _by_ids(fhir: PortalFhir, rtype: str, param: str, refs: list[str], *extra: tuple[str, str]
                  ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(refs))):
        out += await fhir.search(rtype, [(param, ",".join(chunk)), *extra, ("_count", "200")])
    return out


async def _names(fhir: PortalFhir, patient_refs: list[str]) -> dict[str, str]:
    ids = [r.split("/", 1)[1] for r in patient_refs if r.startswith("Patient/")]
    return {f"Patient/{p['id']}": human_name(p) or "" for p in await _by_ids(fhir, "Patient", "_id", ids)}


async def _work(fhir: PortalFhir, thread_ids: list[str]) -> list[dict[str, Any]]:
    return await _by_ids(fhir, "Task", "focus", [f"Communication/{t}" for t in thread_ids],
                         ("code", f"{inbox.WORK_SYSTEM}|{inbox.ANSWER_MESSAGE}"))


def add_inbox_routes(router: APIRouter, area: StaffArea) -> None:
    async def inbox_page(visit: StaffVisit) -> Response:
        to = [*teams_for(visit.role), visit.practitioner]
        starts = await visit.fhir.search("Communication", [
            ("recipient", ",".join(to)), ("part-of:missing", "true"), ("_sort", "-sent"),
            ("_count", str(THREADS))], all_pages=False)
        tids = [str(m["id"]) for m in starts]
        later = await _by_ids(visit.fhir, "Communication", "part-of", [f"Communication/{t}" for t in tids])
        messages = starts + later
        names = await _names(visit.fhir, [r for m in starts if (r := _subject(m))])
        items = inbox.inbox_items(messages, await _work(visit.fhir, tids), names)
        now = area.clock.now()
        waiting = [i for i in items if i.waiting]
        return visit.render("staff/inbox.html", title="Inbox", waiting=waiting, now=now,
                            clock_words=inbox.clock_words, team_count=len(to))

    router.get(f"{PREFIX}/inbox", include_in_schema=False)(area.page(inbox_page, queue="inbox"))

    async def conversation(visit: StaffVisit, communication_id: str) -> tuple[dict, list[dict], PortalFhir]:
        visit.require("inbox")
        if not is_fhir_id(communication_id):
            raise NotFound("Communication")
        first = await visit.fhir.read("Communication", communication_id)
        patient_ref = _subject(first) or ""
        if not patient_ref.startswith("Patient/"):
            raise NotFound("Communication")
        fhir = visit.fhir_about(patient_ref.split("/", 1)[1])
        if thread_id(first) != first.get("id"):
            first = await fhir.read("Communication", thread_id(first))
        later = await fhir.search("Communication", [("part-of", f"Communication/{first['id']}"), ("_count", "200")])
        return first, [first, *later], fhir

    @router.get(PREFIX + "/inbox/{communication_id}", include_in_schema=False)
    async def thread(request: Request, communication_id: str) -> Response:
        visit = await area.visit(request)
        first, messages, fhir = await conversation(visit, communication_id)
        if first["id"] != communication_id:
            return RedirectResponse(f"{PREFIX}/inbox/{first['id']}", status_code=303)
        return await _thread_page(visit, first, messages, fhir)

    async def _thread_page(visit: StaffVisit, first: dict, messages: list[dict], fhir: PortalFhir, *,
                           status: int = 200, errors: dict | None = None, text: str = "",
                           notice: str | None = None) -> Response:
        patient_ref = _subject(first) or ""
        patient = await fhir.read("Patient", patient_ref.split("/", 1)[1])
        teams = await fhir.search("CareTeam", [("patient", patient_ref), ("status", "active")])
        colleagues = _colleagues(teams)
        names = {patient_ref: human_name(patient) or "the patient", **colleagues}
        items = inbox.inbox_items(messages, await _work(fhir, [first["id"]]), names)
        item = items[0]
        return visit.render("staff/thread.html", status, title=item.subject, item=item,
                            banner=patient_banner(patient), glass=visit.glass_reason(patient["id"]),
                            names=names, colleagues=colleagues, now=area.clock.now(),
                            clock_words=inbox.clock_words, errors=errors or {}, text=text,
                            submission=secrets.token_urlsafe(16), notice=notice or visit.request.query_params.get(
                                "notice"))

    @router.post(PREFIX + "/inbox/{communication_id}/reply", include_in_schema=False)
    async def reply(request: Request, communication_id: str) -> Response:
        visit = await area.visit(request)
        await visit.check_csrf()
        first, messages, fhir = await conversation(visit, communication_id)
        form = await request.form()
        text = str(form.get("text") or "")
        submission = str(form.get("submission") or "")[:64] or secrets.token_urlsafe(16)
        errors = inbox.reply_errors(text)
        if errors:
            return await _thread_page(visit, first, messages, fhir, status=400, errors=errors, text=text)
        body = inbox.staff_reply(first, practitioner=visit.practitioner, practitioner_name=visit.session.patient_name,
                                 text=text, submission=f"staff-{submission}", answers=_answered(messages))
        try:
            await fhir.write("POST", "Communication", body, idempotency_key=f"reply-{submission}")
        except WriteRefused as exc:
            return await _thread_page(visit, first, messages, fhir, status=exc.status,
                                      errors={"text": [exc.reason]}, text=text)
        patient = parse_reference(first.get("subject"), "Patient")
        await visit.notify_patient(patient.id if patient else "", "message", f"/portal/messages/{first['id']}",
                                   key=f"reply:{submission}")
        return RedirectResponse(f"{PREFIX}/inbox/{first['id']}?notice=sent", status_code=303)

    async def _set_work(request: Request, communication_id: str, *, status: str, owner: str | None,
                        notice: str) -> Response:
        visit = await area.visit(request)
        await visit.check_csrf()
        first, messages, fhir = await conversation(visit, communication_id)
        found = await _work(fhir, [first["id"]])
        current = found[0] if found else None
        body = inbox.work_item(first, status=status, owner=owner, requester=visit.practitioner)
        form = await request.form()
        key = f"work-{str(form.get('submission') or secrets.token_urlsafe(16))[:64]}"
        try:
            if current is None:
                await fhir.write("POST", "Task", body, idempotency_key=key)
            else:
                version = (current.get("meta") or {}).get("versionId")
                await fhir.write("PUT", f"Task/{current['id']}", {**body, "id": current["id"]}, idempotency_key=key,
                                 if_match=f'W/"{version}"' if version else None)
        except WriteRefused as exc:
            return await _thread_page(visit, first, messages, fhir, status=exc.status, notice=None,
                                      errors={"work": [exc.reason]})
        return RedirectResponse(f"{PREFIX}/inbox/{first['id']}?notice={notice}", status_code=303)

    @router.post(PREFIX + "/inbox/{communication_id}/assign", include_in_schema=False)
    async def assign(request: Request, communication_id: str) -> Response:
        form = await request.form()
        owner = str(form.get("owner") or "")
        return await _set_work(request, communication_id, status="in-progress", owner=owner or None,
                               notice="assigned")

    @router.post(PREFIX + "/inbox/{communication_id}/done", include_in_schema=False)
    async def done(request: Request, communication_id: str) -> Response:
        visit = await area.visit(request)
        return await _set_work(request, communication_id, status="completed", owner=visit.practitioner,
                               notice="done")


def _answered(messages: list[dict[str, Any]]) -> str:
    """The patient's latest message: what a reply answers (the same on a resend of the same form)."""
    ordered = sorted(messages, key=lambda m: (str(m.get("sent") or ""), str(m.get("id"))))
    return str(next((m["id"] for m in reversed(ordered) if inbox.from_patient_side(m)), ordered[0]["id"]))


def _subject(message: dict[str, Any]) -> str | None:
    ref = (message.get("subject") or {}).get("reference")
    return local_reference(ref) if isinstance(ref, str) else None


def _colleagues(care_teams: list[dict[str, Any]]) -> dict[str, str]:
    """The practitioners on the patient's care teams, by reference, with their names."""
    out: dict[str, str] = {}
    for team in care_teams:
        for p in team.get("participant") or []:
            member = (p or {}).get("member") or {}
            ref = member.get("reference")
            if isinstance(ref, str) and local_reference(ref).startswith("Practitioner/"):
                out.setdefault(local_reference(ref), str(member.get("display") or local_reference(ref)))
    return out
