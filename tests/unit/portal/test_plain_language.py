"""Plain language, measured: every patient page of the portal, rendered from the demo data through its real
route (and every form sent back empty and filled in wrong, so its messages show), read at grade 7 or below.

How a page is measured is in tests/plain_language.py (the browser tests use the same rule in `check_page`).
The test prints the hardest pages, and fails on any page above the bar and on any portal template that no
page here rendered (a new page gets measured, or this test says it is missing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from audit.access_log import describe
from audit.events import auth_event, rest_event
from mappers.notebook import QUESTION, SIDE_EFFECT, SYMPTOM, entry_resource
from portal.core import PATIENT_WORDS, TEMPLATES, Visit
from portal.help_topics import TOPICS
from portal.router import build_portal_router
from portal.sessions import SessionSummary
from smart_auth.accounts.models import PatientLink, ProxyLink
from smart_auth.accounts.proxies import RELATIONSHIPS
from tests.plain_language import MAX_GRADE, DataMask, Grade, grade_page, record_strings, report, too_hard
from tests.unit.mappers.conftest import TODAY, demo_records
from web.i18n import LANG_COOKIE

from .pages_harness import demo_visit

NOON = datetime(TODAY.year, TODAY.month, TODAY.day)
PID = "pt-0001"  # visits coming up, medicines with refills, a bill to pay, messages, forms
FULL = "pt-0004"  # the fullest record: lab panels with trends, imaging, visit notes (the browser tests' patient)
SUBMISSION = {"csrf_token": "c", "submission": "sub-abcdefghijklmnop"}
# What a person could type wrong in every field of a form (each form reads the fields it knows).
WRONG = {"phone": "12", "email": "not-an-address", "line1": "", "city": "", "state": "ZZ", "postal": "1",
         "ec0_name": "", "ec0_phone": "x", "language": "?", "contact_by": "sms", "substance": "", "category": "?",
         "onset": "31/31/2019", "severity": "?", "member_id": "", "payer": "", "change": "?", "reason": "",
         "subject": "", "text": "", "topic": "?", "pharmacy": "?", "practice": "?", "day": "tomorrow-ish",
         "kind": SYMPTOM, "amount": "-5", "card_number": "1234", "text_size": "huge", "contrast": "?"}
NOT_PAGES = {"layout.html"}  # the frame every page extends; its words are measured with each page


@dataclass
class Site:
    """The portal's routes for one demo patient, answered from the demo record without any server."""

    patient: str
    client: httpx.AsyncClient
    visit: Visit
    rendered: set[str] = field(default_factory=set)

    async def page(self, method: str, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        if method == "GET":
            answer = await self.client.get(path)
        else:
            answer = await self.client.post(path, data={**SUBMISSION, **(data or {})})
        return answer.status_code, answer.text


def first(resources: list[dict[str, Any]], resource_type: str, **wanted: str) -> str:
    return next(r["id"] for r in resources if r["resourceType"] == resource_type
                and all(r.get(k) == v for k, v in wanted.items()))


def notebook_entries(pid: str, medicine: str) -> list[dict[str, Any]]:
    """One entry of each kind, as the notebook's own form writes them."""
    day = TODAY - timedelta(days=2)
    out = []
    for n, (kind, text) in enumerate(((SYMPTOM, "Tired in the afternoons"), (SIDE_EFFECT, "Dry mouth"),
                                      (QUESTION, "Should I keep taking it at night?"))):
        form = {"kind": kind, "text": text, "day": day.isoformat(), "severity": "mild", "medicine": medicine}
        body = entry_resource(form, patient_ref=f"Patient/{pid}", author_ref=f"Patient/{pid}",
                              submission=f"notebook-entry-{n:08d}", today=TODAY, medicines={medicine: "it"},
                              visits={})
        out.append({**body, "id": f"nb-{n}", "meta": {"versionId": "1"}})
    return out


def access_log(pid: str) -> list[dict[str, Any]]:
    """Entries as the gateway's access-log API words them (audit.access_log.describe)."""
    at = datetime(TODAY.year, TODAY.month, 1, 9, 30, tzinfo=UTC)
    common: dict[str, Any] = dict(outcome="0", patient_refs=[f"Patient/{pid}"], account_id="acct-1",
                                  client_id="portal-web", on_behalf_of=None, source_ip="203.0.113.9",
                                  request_id="r-1", query=None, recorded=at)
    events = [rest_event(interaction="search-type", action="E", entity_refs=["Observation/obs-1"],
                         account_ref=f"Patient/{pid}", **common | {"query": "category=laboratory"}),
              rest_event(interaction="read", action="R", entity_refs=["MedicationRequest/rx-1"],
                         account_ref="Practitioner/prac-01", **common),
              rest_event(interaction="update", action="U", entity_refs=["Appointment/ap-1"],
                         account_ref="RelatedPerson/rp-7", **common | {"on_behalf_of": f"Patient/{pid}"}),
              rest_event(interaction="read", action="R", entity_refs=["Observation/obs-2"],
                         account_ref="Practitioner/prac-09", **common | {"outcome": "8"}),
              auth_event("login", "success", account_id="acct-1", fhir_user=f"Patient/{pid}", patient_id=pid,
                         source_ip="203.0.113.9", request_id="r-2", recorded=at)]
    names = {"Practitioner/prac-01": "Dr. Margaret Ellison", "RelatedPerson/rp-7": "Sam Lee",
             "portal-web": "Patient portal"}
    return [describe(e, names, patient=pid) for e in events]


@functools.cache
def demo_data() -> frozenset[str]:
    """The data of the demo records and of the notebook entries the pages show, read once per test process
    (this module's mask and the Spanish pages' are both made of it)."""
    resources = [r for rs in demo_records().values() for r in rs] + notebook_entries(PID, "rx-1")
    return frozenset(record_strings(resources))


@pytest.fixture(scope="module")
def mask() -> DataMask:
    """The demo records' data, the notebook entries the pages show, and the people named in this test."""
    return DataMask(demo_data() | {"Sam Lee", "Dr. Margaret Ellison", "Patient portal", "Ana Lopez"})


def site_for(tmp_path: Path, records: dict[str, list[dict[str, Any]]], pid: str, rendered: set[str],
             **options: Any) -> Site:
    resources = records[pid]
    medicine = first(resources, "MedicationRequest", status="active")
    visit = demo_visit(tmp_path, [*resources, *notebook_entries(pid, medicine)], pid, NOON,
                       access_log=access_log(pid), **options)
    portal = visit.portal
    text = portal.renderer.text

    def recording(template: str, **context: Any) -> str:
        rendered.add(template)
        return text(template, **context)

    portal.renderer.text = recording  # type: ignore[method-assign]

    async def current(request: Request) -> Visit:
        return Visit(portal, request, visit.session, visit.fhir)

    portal.visit = current  # type: ignore[method-assign]  # the demo patient, signed in
    app = FastAPI()
    app.include_router(build_portal_router(portal))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test")
    return Site(pid, client, visit, rendered)


def requests_for(resources: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, str] | None]]:
    """Every page a patient can open, in each state that has words of its own, and every form sent back
    empty and wrong."""
    booked = first(resources, "Appointment", status="booked")
    past = first(resources, "Appointment", status="fulfilled")
    rx = first(resources, "MedicationRequest", status="active")
    bill = first(resources, "Invoice", status="issued")
    thread = first(resources, "Communication")
    slot = first(resources, "Slot", status="free")
    later = [r["id"] for r in resources if r["resourceType"] == "Slot" and r["status"] == "free"][5]
    gets = ["/portal/", "/portal/record", "/portal/results", "/portal/todo", "/portal/menu",
            "/portal/messages", "/portal/messages/new", "/portal/messages/new?topic=billing",
            f"/portal/messages/{thread}", f"/portal/messages/{thread}?sent=1",
            "/portal/appointments", f"/portal/appointments/{booked}", f"/portal/appointments/{booked}?booked=1",
            f"/portal/appointments/{booked}?moved=1", f"/portal/appointments/{past}",
            "/portal/appointments/book", "/portal/appointments/book?type=followup",
            f"/portal/appointments/book/{slot}", f"/portal/appointments/book?move={booked}",
            f"/portal/appointments/{booked}/move/{later}",
            "/portal/medications", f"/portal/medications?asked={rx}", f"/portal/medications/{rx}/refill",
            f"/portal/medications/{rx}/renewal",
            "/portal/referrals", "/portal/referrals?asked=1", "/portal/referrals/new",
            "/portal/billing", f"/portal/billing/{bill}", f"/portal/billing/{bill}?paid=1",
            f"/portal/billing/{bill}?processing=1", f"/portal/billing/{bill}/pay",
            "/portal/forms", "/portal/forms/q-previsit-checkin",
            f"/portal/forms/q-previsit-checkin?appointment={booked}",
            "/portal/forms/q-previsit-checkin?saved=1", "/portal/forms/q-new-patient-intake?sent=1",
            "/portal/profile", "/portal/profile?saved=contact", "/portal/profile?saved=insurance",
            "/portal/profile?saved=notices", "/portal/profile?saved=allergy", "/portal/profile/contact",
            "/portal/profile/insurance", "/portal/profile/insurance?change=replace", "/portal/profile/allergies/new",
            "/portal/notebook", "/portal/notebook?saved=new", "/portal/notebook?saved=new-shared",
            "/portal/notebook?saved=changed", "/portal/notebook?saved=shared", "/portal/notebook?conflict=1",
            f"/portal/notebook/new?kind={SYMPTOM}", f"/portal/notebook/new?kind={SIDE_EFFECT}",
            f"/portal/notebook/new?kind={QUESTION}", "/portal/notebook/nb-1/edit", "/portal/notebook/print",
            "/portal/download", "/portal/download?problem=no-summary", "/portal/download?problem=unavailable",
            "/portal/download/summary", "/portal/download/making-pdf", "/portal/access-log",
            "/portal/guide", "/portal/help", *(t.url for t in TOPICS), "/portal/help/nothing-here",
            "/portal/self-check", "/portal/settings", "/portal/settings?saved=1",
            "/portal/signed-out", "/portal/signed-out?reason=idle"]
    for path in gets:
        yield "GET", path, None
    forms = ["/portal/messages", f"/portal/messages/{thread}/reply", "/portal/appointments",
             f"/portal/appointments/{booked}/cancel", f"/portal/appointments/{booked}/move",
             f"/portal/medications/{rx}/refill", "/portal/referrals", f"/portal/billing/{bill}/pay",
             "/portal/profile/contact", "/portal/profile/insurance", "/portal/profile/allergies", "/portal/notebook",
             "/portal/notebook/nb-0", "/portal/self-check", "/portal/settings"]
    for path in forms:
        yield "POST", path, {}
        yield "POST", path, WRONG
    yield "POST", "/portal/self-check", {"notes": "no", "results": "yes", "visits": "sometimes"}
    yield "POST", "/portal/appointments", {"slot": slot, "type": "?"}


async def grade_site(site: Site, mask: DataMask, requests: Iterable[tuple[str, str, dict[str, str] | None]],
                     label: str = "", lang: str = "en") -> list[Grade]:
    grades = []
    for method, path, data in requests:
        status, html = await site.page(method, path, data)
        assert status not in (405, 500), f"{method} {path}: {status}"  # 503: a page saying the EHR is down
        assert_wholly_in(lang, html, f"{method} {path}")
        suffix = "" if data is None else (" (sent empty)" if not data else " (sent wrong)")
        grades.append(grade_page(f"{method} {path}{suffix}{label}", html, mask, lang))
    return grades


def assert_wholly_in(lang: str, html: str, name: str) -> None:
    """The page is in `lang`, and (in another language than English) none of its own words are marked as
    still English: every portal page is translated."""
    assert f'<html lang="{lang}"' in html, name
    if lang != "en":
        assert not re.search(r'<main[^>]*\slang="en"', html), f"{name} is still English"


def direct_pages(site: Site, mask: DataMask, lang: str = "en") -> list[Grade]:
    """The pages whose data lives in the sign-in store rather than the record (sign-ins, caregivers), and
    the problem pages, rendered with what their routes hand them."""
    visit, now = site.visit, NOON.replace(tzinfo=UTC).timestamp()
    sessions = [SessionSummary("s", now - 600, now, "Chrome on Windows", "203.0.113.7", True),
                SessionSummary("t", now - 86400, now - 3600, "Safari on iPhone", None, False)]
    pages = [("portal/account.html", {"sessions": sessions, "notice": "ended"}),
             ("portal/caregivers.html", {
                 "records": [PatientLink(site.patient, "Demo Patient", None), PatientLink("pt-9", "Ana Lopez", "rp-1")],
                 "proxies": [ProxyLink("l1", site.patient, "rp-7", "active", "Sam Lee", "SPS"),
                             ProxyLink("l2", site.patient, "rp-8", "invited", "Ana Lopez", "CHILD")],
                 "own_record": True, "relationships": RELATIONSHIPS, "signin_csrf": "c"}),
             ("portal/caregivers.html", {"records": [PatientLink("pt-9", "Ana Lopez", "rp-1")], "proxies": [],
                                         "own_record": False, "relationships": RELATIONSHIPS, "signin_csrf": "c"})]
    grades = [grade_page(f"{name} ({', '.join(sorted(k for k, v in ctx.items() if v))})",
                         visit.render(name, **ctx).body.decode(), mask, lang) for name, ctx in pages]
    for kind, (title, text, status) in PATIENT_WORDS.items():
        html = visit.portal.message(visit.request, title, text, status, session=visit.session).body.decode()
        assert_wholly_in(lang, html, f"problem page: {kind}")
        grades.append(grade_page(f"problem page: {kind}", html, mask, lang))
    site.rendered.update(name for name, _ in pages)
    return grades


async def test_every_patient_page_reads_at_grade_7_or_below(tmp_path: Path, records: dict,
                                                             mask: DataMask) -> None:
    rendered: set[str] = set()
    grades: list[Grade] = []
    main = site_for(tmp_path / "main", records, PID, rendered)
    async with main.client:
        grades += await grade_site(main, mask, requests_for(records[PID]))
        grades += direct_pages(main, mask)
    record_pages = [("GET", path, None) for path in ("/portal/", "/portal/record", "/portal/results",
                                                     "/portal/todo", "/portal/download/summary")]
    full = site_for(tmp_path / "full", records, FULL, rendered)
    async with full.client:
        grades += await grade_site(full, mask, record_pages, f" [{FULL}]")
    down = site_for(tmp_path / "down", records, FULL, rendered, down=["Observation", "AuditEvent", "Appointment"])
    async with down.client:
        grades += await grade_site(down, mask, [*record_pages, ("GET", "/portal/access-log", None)],
                                   " [record system partly down]")
    print("\n" + "\n".join(report(grades, "Hardest portal pages to read")))
    templates = {f"portal/{p.name}" for p in (TEMPLATES / "portal").glob("*.html")
                 if not p.name.startswith("_") and p.name not in NOT_PAGES}
    assert not templates - rendered, f"portal pages not measured here: {sorted(templates - rendered)}"
    assert len(grades) > 100 and all(g.words for g in grades if "problem" not in g.name)
    assert not too_hard(grades), f"above grade {MAX_GRADE}: {too_hard(grades)}"


async def test_every_patient_page_in_spanish_reads_at_grade_7_or_below(tmp_path: Path, records: dict,
                                                                        mask: DataMask) -> None:
    """The same pages and states for a patient who reads Spanish: each one wholly Spanish, graded with
    Crawford's formula for Spanish under the same bar."""
    rendered: set[str] = set()
    grades: list[Grade] = []
    main = site_for(tmp_path / "main", records, PID, rendered, lang="es")
    main.client.cookies.set(LANG_COOKIE, "es")  # the pages after sign-out keep this browser's language
    async with main.client:
        grades += await grade_site(main, mask, requests_for(records[PID]), lang="es")
        grades += direct_pages(main, mask, lang="es")
    full = site_for(tmp_path / "full", records, FULL, rendered, lang="es")
    async with full.client:
        grades += await grade_site(full, mask, [("GET", path, None) for path in (
            "/portal/", "/portal/record", "/portal/results", "/portal/todo", "/portal/download/summary")],
            f" [{FULL}]", lang="es")
    print("\n" + "\n".join(report(grades, "Hardest portal pages to read, in Spanish")))
    templates = {f"portal/{p.name}" for p in (TEMPLATES / "portal").glob("*.html")
                 if not p.name.startswith("_") and p.name not in NOT_PAGES}
    assert not templates - rendered, f"portal pages not measured in Spanish: {sorted(templates - rendered)}"
    assert len(grades) > 100
    assert not too_hard(grades), f"above grade {MAX_GRADE}: {too_hard(grades)}"


def test_the_demo_records_names_and_dates_count_as_data_not_as_our_words(records: dict, mask: DataMask) -> None:
    """The rule that sets the record's data aside, on one line of a real page: a medicine's and a clinician's
    name and a date are one word each; our own words around them are all still there."""
    rx = next(r for r in records[PID] if r["resourceType"] == "MedicationRequest")
    medicine = rx["medicationCodeableConcept"]["text"]
    line = f"Prescribed by Dr. Margaret Ellison on Thursday 2 May 2024: {medicine}. Ask your care team for a refill."
    assert mask(line) == "Prescribed by X on X: X. Ask your care team for a refill."
    note = next(e for e in notebook_entries(PID, "rx-1") if e["valueString"] == "Tired in the afternoons")
    assert mask(f"How I feel, 2 days ago: {note['valueString']}.") == \
        "How I feel, 2 days ago: X."
