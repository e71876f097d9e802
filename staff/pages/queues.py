"""The request queues: refills, referrals, changes to confirm (reported allergies, insurance cards) and
billing questions, each open to the roles that work it (staff/roles.py) and listing the requests of the
patients whose care team the staff member is on, oldest first.

Every decision is one write through the gateway, whose decision rules (fhir_gateway/decision_writes.py)
check the role, the care team and that the request is still open; a page never decides anything itself.
Each decision carries an Idempotency-Key named after the request, so a double click decides once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from mappers import queues
from mappers.decisions import REASON_MAX, VERIFICATION_WORDS, refill_prescription
from mappers.messages import TOPIC_SYSTEM
from mappers.references import parse_reference
from mappers.validation import is_fhir_id
from portal.fhir import NotFound, WriteRefused
from portal.sections import load_sections

from ..core import StaffArea, StaffVisit
from ..settings import PREFIX

PAGE = f"{PREFIX}/queues"
OPEN = "draft,active,on-hold"
DONE_WORDS = {"approved": "Refill approved: the new prescription is in the record and the patient sees it.",
              "declined": "Declined: the patient sees your reason.",
              "accepted": "Referral made: the patient sees it.",
              "confirmed": "Confirmed: it is now part of the record.",
              "refuted": "Marked as not an allergy: it leaves the patient's list.",
              "card": "Insurance card confirmed: it is now on the patient's record."}


async def my_patients(visit: StaffVisit) -> list[str]:
    """The patients whose active care team names this staff member (Patient/<id>)."""
    teams = await visit.fhir.search("CareTeam", [("participant", visit.practitioner), ("status", "active"),
                                                 ("_count", "200")])
    refs = {r.text for t in teams if (r := parse_reference(t.get("subject"), "Patient")) is not None}
    return sorted(refs)


async def per_patient(visit: StaffVisit, resource_type: str, param: str, refs: list[str],
                      params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One search per patient, side by side: the EHR answers a search naming many patients at once far more
    slowly than many searches naming one each."""
    found = await asyncio.gather(*(visit.fhir.search(resource_type, [(param, ref), *params, ("_count", "200")])
                                   for ref in refs))
    return [r for part in found for r in part]


async def _patients(visit: StaffVisit, refs: list[str]) -> dict[str, Any]:
    found = await asyncio.gather(*(visit.fhir.read("Patient", r.split("/", 1)[1]) for r in refs))
    return queues.patients_by_ref(found)


def _now(visit: StaffVisit) -> datetime:
    return visit.area.clock.now()


def _done(visit: StaffVisit) -> str | None:
    return DONE_WORDS.get(visit.request.query_params.get("done", ""))


async def _fields(visit: StaffVisit) -> dict[str, str]:
    await visit.check_csrf()
    form = await visit.request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _item_id(visit: StaffVisit) -> str:
    item = visit.request.path_params["item_id"]
    if not is_fhir_id(item):
        raise NotFound("request")
    return item


def _refusal(exc: WriteRefused) -> str:
    if exc.status == 409:
        return "Someone else answered this request meanwhile. It has left the queue."
    if exc.status == 403:
        return "Your role cannot make this decision. Ask a colleague who can."
    return exc.reason if exc.reason.endswith(".") else exc.reason + "."


def _reason(fields: dict[str, str], errors: dict[str, list[str]], what: str) -> str:
    reason = " ".join(fields.get("reason", "").split())
    if not reason:
        errors["reason"] = [f"Say why {what}. The patient reads this."]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"Keep the reason to {REASON_MAX} characters or fewer."]
    return reason


# -- refills --------------------------------------------------------------------------------------------------
async def _refill_page(visit: StaffVisit, status: int = 200, failed: str | None = None,
                       errors: dict[str, list[str]] | None = None, form: dict[str, str] | None = None) -> Response:
    refs = await my_patients(visit)
    items: list[queues.QueueItem] = []
    unavailable = False
    if refs:
        parts = await load_sections(
            requests=per_patient(visit, "MedicationRequest", "patient", refs, [("intent", "proposal"),
                                                                                ("status", OPEN)]),
            patients=_patients(visit, refs))
        asked = parts["requests"].value or []
        # The prescriptions the requests refill (their prescriber, date and refills), in one more search.
        named = sorted({rid for r in asked if (rid := refill_prescription(r))})
        prescriptions = (await load_sections(found=asyncio.gather(
            *(visit.fhir.read("MedicationRequest", rid) for rid in named))))["found"].value if named else []
        items = queues.refill_items([*asked, *(prescriptions or [])], parts["patients"].value or {}, _now(visit),
                                    visit.area.clock.tz)
        unavailable = parts["requests"].unavailable
    return visit.render("staff/queue_refills.html", status, title="Refill requests", items=items,
                        unavailable=unavailable, done=_done(visit), failed=failed, errors=errors or {},
                        form=form or {}, may_approve=visit.role == "clinician", reason_max=REASON_MAX)


async def refills(visit: StaffVisit) -> Response:
    return await _refill_page(visit)


# Where the patient reads the outcome of each queue's decisions.
OUTCOME_PAGE = {"refills": "/portal/medications", "referrals": "/portal/referrals", "changes": "/portal/profile"}


async def _decide(visit: StaffVisit, item: str, page: Callable[..., Awaitable[Response]],
                  write: Callable[[], Awaitable[Any]], done: str, queue: str, form: dict[str, str],
                  about: Any = None) -> Response:
    """Write one decision; then tell the patient (`about`: the resource holding their reference) there is news."""
    try:
        await write()
    except WriteRefused as exc:
        return await page(visit, 409 if exc.status == 409 else 422, item, {"decision": [_refusal(exc)]}, form)
    patient = parse_reference((about or {}).get("subject") or (about or {}).get("patient"), "Patient")
    if patient:
        await visit.notify_patient(patient.id, "request", OUTCOME_PAGE[queue], key=f"decision:{queue}:{item}:{done}")
    return RedirectResponse(f"{PAGE}/{queue}?done={done}", status_code=303)


# -- referrals ------------------------------------------------------------------------------------------------
async def _referral_page(visit: StaffVisit, status: int = 200, failed: str | None = None,
                         errors: dict[str, list[str]] | None = None, form: dict[str, str] | None = None
                         ) -> Response:
    refs = await my_patients(visit)
    items: list[queues.QueueItem] = []
    unavailable = False
    if refs:
        parts = await load_sections(
            requests=per_patient(visit, "ServiceRequest", "patient", refs, [("intent", "proposal"),
                                                                             ("status", OPEN)]),
            patients=_patients(visit, refs))
        items = queues.referral_items(parts["requests"].value or [], parts["patients"].value or {}, _now(visit),
                                      visit.area.clock.tz)
        unavailable = parts["requests"].unavailable
    return visit.render("staff/queue_referrals.html", status, title="Referral requests", items=items,
                        unavailable=unavailable, done=_done(visit), failed=failed, errors=errors or {},
                        form=form or {}, reason_max=REASON_MAX)


async def referrals(visit: StaffVisit) -> Response:
    return await _referral_page(visit)


@dataclass(frozen=True)
class RequestQueue:
    """A queue of open requests decided yes (a new order made from the request) or no (the request closed
    with a reason the patient reads)."""
    name: str  # the queue's key in addresses
    resource: str  # the request's FHIR type
    page: Callable[..., Awaitable[Response]]
    key: str  # Idempotency-Key prefix
    yes: tuple[str, str]  # (action in the address, DONE_WORDS key)
    no: str  # action in the address (done: "declined")
    yes_body: Callable[[str, str, str], dict[str, Any]]  # (request id, patient id, note) -> the new order
    no_body: Callable[[dict[str, Any], str], dict[str, Any]]  # (request, reason) -> the request closed
    no_why: str  # finishes "Say why ..."


REQUEST_QUEUES = (
    RequestQueue("refills", "MedicationRequest", _refill_page, "refill", ("approve", "approved"), "deny",
                 queues.approve_refill_body, queues.deny_refill_body, "you are declining the refill"),
    RequestQueue("referrals", "ServiceRequest", _referral_page, "referral", ("accept", "accepted"), "decline",
                 lambda item, patient, _note: queues.accept_referral_body(item, patient),
                 queues.decline_referral_body, "you are declining the referral"),
)


async def _say_yes(visit: StaffVisit, q: RequestQueue) -> Response:
    item = _item_id(visit)
    fields = await _fields(visit)
    request = await visit.fhir.read(q.resource, item)
    patient = parse_reference(request.get("subject"), "Patient")
    body = q.yes_body(item, patient.id if patient else "", fields.get("note", ""))
    return await _decide(visit, item, q.page, lambda: visit.fhir.write(
        "POST", q.resource, body, idempotency_key=f"{q.key}-{q.yes[0]}-{item}"), q.yes[1], q.name, fields, request)


async def _say_no(visit: StaffVisit, q: RequestQueue) -> Response:
    item = _item_id(visit)
    fields = await _fields(visit)
    errors: dict[str, list[str]] = {}
    reason = _reason(fields, errors, q.no_why)
    if errors:
        return await q.page(visit, 422, item, errors, fields)
    current = await visit.fhir.read(q.resource, item)
    return await _decide(visit, item, q.page, lambda: visit.fhir.write(
        "PUT", f"{q.resource}/{item}", q.no_body(current, reason), idempotency_key=f"{q.key}-{q.no}-{item}"),
        "declined", q.name, fields, current)


# -- changes to confirm ---------------------------------------------------------------------------------------
async def _changes_page(visit: StaffVisit, status: int = 200, failed: str | None = None,
                        errors: dict[str, list[str]] | None = None, form: dict[str, str] | None = None) -> Response:
    sections = queues.sections_for(visit.role)
    refs = await my_patients(visit)
    allergies: list[queues.QueueItem] = []
    cards: list[queues.QueueItem] = []
    forms: dict[str, dict[str, str]] = {}
    unavailable = False
    if refs:
        loads: dict[str, Awaitable[Any]] = {"patients": _patients(visit, refs)}
        if "allergies" in sections:
            loads["allergies"] = per_patient(visit, "AllergyIntolerance", "patient", refs,
                                             [("verification-status", "unconfirmed")])
        if "insurance" in sections:
            loads["messages"] = per_patient(visit, "Communication", "subject", refs,
                                            [("category", f"{TOPIC_SYSTEM}|billing")])
            loads["coverages"] = per_patient(visit, "Coverage", "beneficiary", refs, [])
        parts = await load_sections(**loads)
        people = parts["patients"].value or {}
        now, tz = _now(visit), visit.area.clock.tz
        if "allergies" in parts:
            allergies = queues.allergy_items(parts["allergies"].value or [], people, now, tz)
            unavailable |= parts["allergies"].unavailable
        if "messages" in parts:
            messages = parts["messages"].value or []
            cards = queues.insurance_items(messages, parts["coverages"].value or [], people, now, tz)
            forms = {m["id"]: queues.coverage_form(m) for m in messages if m.get("id")}
            unavailable |= parts["messages"].unavailable
    if failed and form is not None:
        forms[failed] = {**forms.get(failed, {}), **form}
    return visit.render("staff/queue_changes.html", status, title="Changes to confirm", sections=sections,
                        allergies=allergies, cards=cards, forms=forms, unavailable=unavailable, done=_done(visit),
                        failed=failed, errors=errors or {})


async def changes(visit: StaffVisit) -> Response:
    return await _changes_page(visit)


async def check_allergy(visit: StaffVisit) -> Response:
    item = _item_id(visit)
    fields = await _fields(visit)
    verdict = fields.get("verdict", "")
    if verdict not in VERIFICATION_WORDS:
        return await _changes_page(visit, 422, item, {"decision": ["Choose confirmed or not an allergy."]}, fields)
    current = await visit.fhir.read("AllergyIntolerance", item)
    return await _decide(visit, item, _changes_page, lambda: visit.fhir.write(
        "PUT", f"AllergyIntolerance/{item}", queues.check_allergy_body(current, verdict, fields.get("note", "")),
        idempotency_key=f"allergy-{item}"), verdict, "changes", fields, current)


def _card_errors(fields: dict[str, str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not " ".join(fields.get("insurer", "").split()):
        errors["insurer"] = ["Enter the insurance company as it is on the card."]
    if not " ".join(fields.get("member_id", "").split()):
        errors["member_id"] = ["Enter the member ID from the card."]
    return errors


async def confirm_card(visit: StaffVisit) -> Response:
    item = _item_id(visit)
    fields = await _fields(visit)
    if errors := _card_errors(fields):
        return await _changes_page(visit, 422, item, errors, fields)
    message = await visit.fhir.read("Communication", item)
    return await _decide(visit, item, _changes_page, lambda: visit.fhir.write(
        "POST", "Coverage", queues.coverage_body(message, fields), idempotency_key=f"coverage-{item}"),
        "card", "changes", fields, message)


# -- billing questions ----------------------------------------------------------------------------------------
async def billing(visit: StaffVisit) -> Response:
    refs = await my_patients(visit)
    items: list[queues.QueueItem] = []
    unavailable = False
    if refs:
        parts = await load_sections(
            messages=per_patient(visit, "Communication", "subject", refs, [("category", f"{TOPIC_SYSTEM}|billing")]),
            patients=_patients(visit, refs))
        items = queues.billing_items(parts["messages"].value or [], parts["patients"].value or {}, _now(visit),
                                     visit.area.clock.tz)
        unavailable = parts["messages"].unavailable
    return visit.render("staff/queue_billing.html", title="Billing questions", items=items, unavailable=unavailable)


def _decision(q: RequestQueue, how: Callable[[StaffVisit, RequestQueue], Awaitable[Response]], action: str
              ) -> Callable[[StaffVisit], Awaitable[Response]]:
    async def decide(visit: StaffVisit) -> Response:
        return await how(visit, q)
    decide.__name__ = f"{action}_{q.key}"  # e.g. approve_refill: the endpoint's name in logs and traces
    return decide


def add_queue_routes(router: APIRouter, area: StaffArea) -> None:
    for key, view in (("refills", refills), ("referrals", referrals), ("changes", changes), ("billing", billing)):
        router.get(f"{PAGE}/{key}", include_in_schema=False)(area.page(view, queue=key))
    decisions: list[tuple[str, str, Callable[[StaffVisit], Awaitable[Response]]]] = [
        ("changes", "allergy", check_allergy), ("changes", "card", confirm_card)]
    for q in REQUEST_QUEUES:
        decisions += [(q.name, q.yes[0], _decision(q, _say_yes, q.yes[0])), (q.name, q.no, _decision(q, _say_no, q.no))]
    for key, action, view in decisions:
        router.post(f"{PAGE}/{key}/{{item_id}}/{action}", include_in_schema=False)(area.page(view, queue=key))
