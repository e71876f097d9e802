"""Appointments in a real browser against the real EHR: two people book the same time at once (one gets it,
the other is told it was just taken and offered the nearest free times), the winner cancels by keyboard,
and a made-up time or another patient's visit is refused with nothing written. The EHR is read directly
to check what was stored."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect

from mappers.booking import VISIT_TYPE_SYSTEM

from .harness import check_page, press_by_keyboard, sign_in

pytestmark = pytest.mark.e2e


async def _ehr(base: str, path: str, params: dict[str, str] | None = None) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        return (await http.get(f"{base}/{path}", params=params)).json()


async def _free_slot(base: str) -> dict:
    """A free time two days ahead or more (outside the clinic's notice), any of them: runs sharing one EHR
    must not race each other for the first."""
    after = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    found = await _ehr(base, "Slot", {"status": "free", "start": f"gt{after}", "_count": "200"})
    slots = [e["resource"] for e in found.get("entry", [])]
    assert slots, "the fixtures leave free times in the next 30 days"
    return random.choice(slots)


async def _press_book(page: Page) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name="Book this time").click()


async def test_two_people_book_one_time_one_wins_and_the_other_is_offered_the_nearest(
        new_context, enrolled, ehr_base_url: str) -> None:
    people = [await enrolled(), await enrolled()]
    slot = await _free_slot(ehr_base_url)
    kind = next(c["code"] for t in slot["serviceType"] for c in t.get("coding", []) if c["system"] == VISIT_TYPE_SYSTEM)
    pages = []
    for person in people:
        page = await (await new_context()).new_page()
        await sign_in(page, person, next_path=f"/portal/appointments/book/{slot['id']}?type={kind}")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your visit")
        pages.append(page)
    await check_page(pages[0], "portal-appointment-confirm")

    await asyncio.gather(*(_press_book(p) for p in pages))  # both at once
    won = [i for i, p in enumerate(pages) if "booked=1" in p.url]
    assert len(won) == 1, [p.url for p in pages]
    winner, loser = pages[won[0]], pages[1 - won[0]]
    winner_id = people[won[0]].patient.patient_id
    await expect(loser.get_by_role("alert")).to_contain_text("That time was just taken")
    nearest = loser.locator("main a.time")
    assert await nearest.count() >= 1
    await check_page(loser, "portal-appointment-taken")

    booked = await _ehr(ehr_base_url, "Appointment", {"slot": f"Slot/{slot['id']}", "status": "booked"})
    assert len(booked.get("entry", [])) == 1
    stored = booked["entry"][0]["resource"]
    assert {"reference": f"Patient/{winner_id}"} in [p["actor"] for p in stored["participant"]]
    assert (await _ehr(ehr_base_url, f"Slot/{slot['id']}"))["status"] == "busy"
    appt_id = urlsplit(winner.url).path.rsplit("/", 1)[1]
    assert appt_id == stored["id"]

    # Refused, nothing written: the loser's own forms sent with the winner's visit, or with a made-up time.
    token = await loser.locator("input[name=csrf_token]").first.input_value()
    for action in ("cancel", "move"):
        refused = await loser.request.post(f"/portal/appointments/{appt_id}/{action}", form={
            "csrf_token": token, "submission": f"their-visit-{action}-e2e-0123", "reason": "pat", "slot": slot["id"]})
        assert refused.status == 404 and "Page not found" in await refused.text()
    made_up = await loser.request.post("/portal/appointments", form={
        "csrf_token": token, "submission": "made-up-time-e2e-0123456", "slot": "made-up-slot-e2e", "type": kind})
    assert made_up.status == 404 and "could not find that time" in await made_up.text()
    assert not (await _ehr(ehr_base_url, "Appointment", {"slot": "Slot/made-up-slot-e2e"})).get("entry")
    assert (await _ehr(ehr_base_url, f"Appointment/{appt_id}"))["meta"] == stored["meta"]

    # The winner's visit: details, then cancelled with the keyboard alone.
    await expect(winner.get_by_role("status")).to_contain_text("Your visit is booked")
    await check_page(winner, "portal-appointment")
    # Tab reaches a radio group once; the arrow keys choose within it.
    await press_by_keyboard(winner, winner.get_by_label("I can't come"), key="ArrowDown", navigates=False)
    await expect(winner.get_by_label("I feel better")).to_be_checked()
    await press_by_keyboard(winner, winner.get_by_role("button", name="Cancel this visit"))
    await expect(winner.get_by_role("status")).to_contain_text("Your visit is cancelled")
    assert (await _ehr(ehr_base_url, f"Appointment/{appt_id}"))["status"] == "cancelled"
    assert (await _ehr(ehr_base_url, f"Slot/{slot['id']}"))["status"] == "free"
