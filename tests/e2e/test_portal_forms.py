"""Forms and the to-do list in a real browser: a pre-visit check-in filled in by keyboard, saved as a draft,
corrected where the page says, sent and then read-only, with the answers checked in HAPI itself; another
patient's visit pasted into the address refused with nothing written; the to-do list and a calendar file.
Every page held to `check_page` (axe, keyboard, 375 and 1280 px)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from playwright.async_api import Page, expect

from mappers.inbound import APPOINTMENT_EXTENSION
from tests.integration.gateway.helpers import ehr_search

from .harness import Account, check_page, fill_by_keyboard, sign_in

pytestmark = pytest.mark.e2e
CHECKIN = "q-previsit-checkin"


def booked_visit(ehr: str, patient_id: str) -> str:
    """A visit the clinic booked just now (each run its own, so its check-in is still to do)."""
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    body = {"resourceType": "Appointment", "status": "booked", "serviceType": [{"text": "Follow-up visit"}],
            "description": f"Follow-up {uuid.uuid4().hex[:6]}", "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}]}
    created = httpx.post(f"{ehr}/Appointment", json=body, timeout=30, headers={"Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def someone_elses_visit(ehr: str, patient_id: str) -> str:
    """A visit already in another patient's record (only pasted, never changed)."""
    bundle = httpx.get(f"{ehr}/Appointment", params={"patient": f"Patient/{patient_id}", "_count": "1"},
                       timeout=30).json()
    return bundle["entry"][0]["resource"]["id"]


def cancel(ehr: str, appointment_id: str) -> None:
    """The visit made for the test is cancelled again, so runs do not pile up visits in the shared EHR."""
    current = httpx.get(f"{ehr}/Appointment/{appointment_id}", timeout=30).json()
    httpx.put(f"{ehr}/Appointment/{appointment_id}", json={**current, "status": "cancelled"}, timeout=30)


def answers_in_ehr(ehr: str, appointment_id: str) -> list[dict[str, Any]]:
    # Every page: each run of the suite adds answers the same day.
    found = ehr_search(ehr, "QuestionnaireResponse", {"_lastUpdated": f"ge{datetime.now(UTC).date()}"})
    return [r for r in found
            if any(x.get("url") == APPOINTMENT_EXTENSION
                   and x["valueReference"]["reference"] == f"Appointment/{appointment_id}"
                   for x in r.get("extension", []))]


async def choose(page: Page, question: str, answer: str) -> None:
    await page.get_by_role("group", name=question).get_by_label(answer, exact=True).check()


async def test_a_check_in_is_drafted_by_keyboard_corrected_sent_and_stored(
        page: Page, enrolled: Callable[..., Awaitable[Account]], ehr_base_url: str) -> None:
    account = await enrolled()
    assert account.patient is not None
    mine = booked_visit(ehr_base_url, account.patient.patient_id)
    try:
        await _check_in(page, account, ehr_base_url, mine, someone_elses_visit(ehr_base_url, "pt-0004"))
    finally:
        cancel(ehr_base_url, mine)


async def _check_in(page: Page, account: Account, ehr_base_url: str, mine: str, theirs: str) -> None:
    assert account.patient is not None
    await sign_in(page, account, next_path=f"/portal/forms/{CHECKIN}?appointment={mine}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pre-visit check-in")
    await check_page(page, "portal-form")
    reason = "What would you like to talk about at this visit? (required)"
    await fill_by_keyboard(page, {reason: "My knee hurts on stairs"}, "Save a draft")
    await expect(page.get_by_role("status")).to_contain_text("Your draft is saved")
    [draft] = answers_in_ehr(ehr_base_url, mine)
    assert draft["status"] == "in-progress"
    # Sending with a number out of range and a required answer missing: told at each question.
    pain_box = page.get_by_label("How much pain are you in right now, from 0 (none) to 10 (the worst)? (required)")
    await pain_box.fill("12")
    await page.get_by_role("button", name="Send to my care team").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Please enter a number from 0 to 10.")
    await expect(alert).to_contain_text("Please answer this question.")
    await check_page(page, "portal-form-errors", keyboard=False)
    assert answers_in_ehr(ehr_base_url, mine)[0]["status"] == "in-progress"
    await pain_box.fill("3")
    await choose(page, "Have your medicines changed since your last visit? (required)", "No")
    await choose(page, "Have you been to an emergency room or stayed in a hospital since your last visit? (required)",
                 "No")
    await choose(page, "Little interest or pleasure in doing things (required)", "Not at all")
    await choose(page, "Feeling down, depressed, or hopeless (required)", "Several days")
    await choose(page, "Is your insurance the same as at your last visit? (required)", "Yes")
    await page.get_by_role("button", name="Send to my care team").click()
    await expect(page.get_by_role("status")).to_contain_text("Your answers were sent")
    await expect(page.get_by_role("button", name="Send to my care team")).to_have_count(0)
    [sent] = answers_in_ehr(ehr_base_url, mine)
    assert sent["id"] == draft["id"] and sent["status"] == "completed"
    assert sent["subject"]["reference"] == f"Patient/{account.patient.patient_id}"
    pain = next(i for i in sent["item"] if i["linkId"] == "pain")
    assert pain["answer"] == [{"valueInteger": 3}]
    # Another patient's visit pasted into the address: not found, nothing written.
    response = await page.goto(f"/portal/forms/{CHECKIN}?appointment={theirs}")
    assert response is not None and response.status == 404
    assert answers_in_ehr(ehr_base_url, theirs) == []  # nothing written for it today


async def test_the_forms_list_the_to_do_list_and_a_calendar_file(
        portal_signed_in: Callable[..., Awaitable[Page]], shared_patient: Account, ehr_base_url: str) -> None:
    # The generated record may hold nothing still to come on a given day: the clinic books one visit for it.
    assert shared_patient.patient is not None
    visit = booked_visit(ehr_base_url, shared_patient.patient.patient_id)
    try:
        await _to_do_list(await portal_signed_in(), visit)
    finally:
        cancel(ehr_base_url, visit)


async def _to_do_list(page: Page, visit: str) -> None:
    await page.goto("/portal/forms")
    await expect(page.get_by_role("heading", name="To fill in")).to_be_visible()
    await check_page(page, "portal-forms")
    await page.goto("/portal/")
    panel = page.locator("li.card", has=page.get_by_role("heading", name="To do"))
    await expect(panel.get_by_role("link", name="See all")).to_be_visible()
    await panel.get_by_role("link", name="See all").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("To do")
    await check_page(page, "portal-todo")
    ours = page.locator(f"a[href='/portal/todo/visit-{visit}.ics']")
    await expect(ours).to_have_accessible_name(re.compile(r"^Add to my calendar"))
    async with page.expect_download() as download_info:
        await ours.click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".ics")
    events = Calendar.from_ical(open(await download.path(), "rb").read()).walk("VEVENT")
    assert len(events) == 1 and "Follow-up" in str(events[0]["SUMMARY"])
