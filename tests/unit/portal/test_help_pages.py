"""The first-use guide, the help pages, the self-check and the display settings, as a person sees them:
plain words, a help page for every part of the portal, the self-check's answers pointing to the right
page, and the display settings on the page's root element."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx
import textstat
from fastapi import APIRouter, FastAPI, Request

from portal.core import Visit
from portal.guide import CAREGIVER_STOPS, PATIENT_STOPS
from portal.help_topics import HELP_PAGE, TOPICS, help_url_for
from portal.menu import PLACES
from portal.pages.help import add_help_routes
from portal.pages.settings import display_errors
from portal.self_check import QUESTIONS, check_answers
from smart_auth.accounts.preferences import DisplayPreferences
from tests.plain_language import MAX_GRADE  # the texts people read here, one topic (or guide) at a time

from .pages_harness import demo_visit

DAY = datetime(2026, 3, 2)


def _main(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0]


def test_every_portal_page_has_a_help_page_and_its_footer_links_there(tmp_path: Path) -> None:
    helped = {t.href for t in TOPICS}
    missing = [p.href for p in PLACES if p.href not in helped and p.href != "/portal/menu" and p.href != HELP_PAGE]
    assert not missing, f"no help page for {missing}"
    assert help_url_for("/portal/results") == "/portal/help/results"
    assert help_url_for("/portal/results/obs-1/trend") == "/portal/help/results"
    assert help_url_for("/portal/") == "/portal/help/home"
    assert help_url_for("/portal/somewhere-new") == HELP_PAGE
    assert help_url_for("/portal/resultsX") == HELP_PAGE  # a prefix of a name is not the page
    visit = demo_visit(tmp_path, [], "pt-0001", DAY)
    visit.request.scope["path"] = "/portal/medications"
    page = visit.render("portal/help.html", title="Help", topics=TOPICS, guide_url="/portal/guide",
                        self_check_url="/portal/self-check").body.decode()
    footer = page.split('class="site-footer"', 1)[1]
    assert 'href="/portal/help/medications">Help with this page' in footer
    assert 'href="/portal/settings">Display settings' in footer
    for t in TOPICS:
        assert f'href="{t.url}"' in _main(page)


def test_help_guide_and_self_check_read_at_about_grade_7() -> None:
    texts = [(f"help: {t.title}", " ".join(f"{a.question} {a.answer}" for a in t.answers)) for t in TOPICS]
    texts.append(("guide (patient)", " ".join(f"{s.title}. {s.says}" for s in PATIENT_STOPS)))
    texts.append(("guide (caregiver)", " ".join(f"{s.title}. {s.says}" for s in CAREGIVER_STOPS)))
    texts.append(("self-check", " ".join(f"{q.asks} {q.tip}" for q in QUESTIONS)))
    grades = sorted(((textstat.flesch_kincaid_grade(text), name) for name, text in texts), reverse=True)
    print("\nHardest help texts to read (Flesch-Kincaid grade):")
    for grade, name in grades[:5]:
        print(f"  {grade:4.1f}  {name}")
    too_hard = [(g, n) for g, n in grades if g > MAX_GRADE]
    assert not too_hard, f"above grade {MAX_GRADE}: {too_hard}"
    for t in TOPICS:
        for a in t.answers:
            assert a.question.endswith("?") and len(a.answer) < 300, a.question


def test_the_guide_tells_a_caregiver_whose_record_is_open_and_a_patient_about_each_part(tmp_path: Path) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", DAY)
    page = _main(visit.render("portal/guide.html", next_url="/portal/results", stops=PATIENT_STOPS,
                              caregiver=False).body.decode())
    assert page.count('href="/portal/results"') == 2  # skip, and start using the portal: both go on
    assert "Skip the guide" in page and "test results" in page and "ask your care team a question" in page.lower()
    visit.session = replace(visit.session, fhir_user="RelatedPerson/rp-1", patient_name="Ana Lopez")
    page = _main(visit.render("portal/guide.html", next_url="/portal/", stops=CAREGIVER_STOPS,
                              caregiver=True).body.decode())
    assert "You help <strong>Ana Lopez</strong>" in page
    assert "Whose record is open" in page and "own account" in page and "Switch record" in page


def test_self_check_points_each_answer_that_is_not_yes_to_the_page_that_helps() -> None:
    outcomes, errors = check_answers({"notes": "no", "results": "yes", "questions": "sometimes", "junk": "x"})
    assert not errors
    assert [(o.question.key, o.needs_help) for o in outcomes] == [("notes", True), ("results", False),
                                                                  ("questions", True)]
    assert outcomes[0].question.help.href == "/portal/record"
    assert outcomes[2].question.help.href == "/portal/messages"
    _, errors = check_answers({})
    assert errors == {"notes": ["Please answer at least one question."]}
    _, errors = check_answers({"bills": "maybe"})
    assert list(errors) == ["bills"] and "Do I check my bills here?" in errors["bills"][0]
    assert QUESTIONS[0].asks == "Do I review my visit notes soon after they are posted?"


async def test_self_check_pages_answer_with_links_and_field_messages(tmp_path: Path) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", DAY)
    portal = visit.portal

    async def current(request: Request) -> Visit:
        return Visit(portal, request, visit.session, visit.fhir)

    portal.visit = current  # type: ignore[method-assign]  # the signed-in person, without a sign-in
    router = APIRouter(route_class=portal.route_class())
    add_help_routes(router, portal)
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as client:
        answered = await client.post("/portal/self-check", data={"csrf_token": "c", "notes": "no", "visits": "yes"})
        refused = await client.post("/portal/self-check", data={"csrf_token": "c", "forms": "perhaps"})
        expired = await client.post("/portal/self-check", data={"notes": "no"})
        missing = await client.get("/portal/help/nothing-here")
        topic = await client.get("/portal/help/caregivers")
    assert answered.status_code == 200
    body = _main(answered.text)
    assert 'href="/portal/record">Go to Health record' in body and 'href="/portal/help/record"' in body
    assert "You already do these" in body and "Do I book, move or cancel my visits here?" in body
    assert "/portal/appointments" not in body  # answered yes: nothing to point to
    assert refused.status_code == 400
    assert 'id="forms-error"' in refused.text and 'aria-describedby="forms-error"' in refused.text
    assert 'href="#forms"' in refused.text  # the summary leads to the question
    assert expired.status_code == 400 and "This form has expired" in expired.text
    assert missing.status_code == 404 and "no help page" in missing.text
    assert topic.status_code == 200 and "Stop access" in topic.text


def test_display_settings_become_classes_on_every_portal_page(tmp_path: Path) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", DAY)
    plain = visit.render("portal/help.html", topics=TOPICS, guide_url="", self_check_url="").body.decode()
    assert re.search(r"<html lang=\"en\">", plain)
    visit.session.extra["display"] = {"text_size": "large", "contrast": "high"}
    styled = visit.render("portal/help.html", topics=TOPICS, guide_url="", self_check_url="").body.decode()
    assert '<html lang="en" class="text-large contrast-high">' in styled
    assert "style=" not in styled  # the strict CSP allows no inline style
    settings = visit.render("portal/settings.html", form=visit.session.extra["display"], errors={},
                            saved=True).body.decode()
    assert re.search(r'id="text_size-large"[^>]*checked', settings)
    assert re.search(r'id="contrast-high"[^>]*checked', settings)
    assert display_errors({"text_size": "huge", "contrast": "high"}) == {"text_size": ["Please pick a text size."]}
    assert display_errors({"text_size": "large", "contrast": "high"}) == {}


def test_stored_display_settings_read_back_and_anything_unknown_reads_as_standard() -> None:
    chosen = DisplayPreferences(text_size="large", contrast="high")
    assert DisplayPreferences.from_fields(chosen.as_fields()) == chosen
    assert DisplayPreferences.from_fields({}) == DisplayPreferences("standard", "standard")
    assert DisplayPreferences.from_fields({"text_size": "<b>", "contrast": "HIGH"}) == DisplayPreferences()
