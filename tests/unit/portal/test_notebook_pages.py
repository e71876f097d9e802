"""The health notebook pages with respx standing in for the gateway's /fhir: what a person reads, what each
form sends (once, with If-Match for a change or a share), and what a refusal or a stale form shows."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import respx

from mappers.notebook import CATEGORY_SEARCH, entry_resource
from portal.pages import notebook

from .test_messages_pages import FHIR, PT, bundle, gw, text, visit  # noqa: F401 (gw is a fixture)

RX = {"resourceType": "MedicationRequest", "id": "rx-1", "status": "active", "intent": "order",
      "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "Metformin 500 mg"},
      "authoredOn": "2026-01-02"}


def stored(kind: str, rid: str, status: str = "preliminary", **fields: str) -> dict:
    form = {"kind": kind, "text": f"Words of {rid}", "day": "2026-11-01", "severity": "mild", "medicine": "rx-1",
            **fields}
    body = entry_resource(form, patient_ref=f"Patient/{PT}", author_ref=f"Patient/{PT}", submission="s" * 20,
                          today=visit_day(), medicines={"rx-1": "Metformin 500 mg"}, visits={})
    return {**body, "status": status, "id": rid, "meta": {"versionId": "4"}}


def visit_day() -> date:
    """A day that is in the past in every time zone (the portal's clock is in the clinic's)."""
    return date.today() - timedelta(days=2)


def lists(gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get("/MedicationRequest").respond(json=bundle(RX))
    gw.get("/Appointment").respond(json=bundle())


async def test_the_notebook_lists_entries_with_their_privacy_and_only_searches_the_notebook(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    search = gw.get("/Observation").respond(json=bundle(
        stored("symptom", "nb-1"), stored("side-effect", "nb-2", "final"), stored("question", "nb-3")))
    words = text(await notebook.show_notebook(visit(tmp_path, path="/portal/notebook", query="saved=shared")))
    assert "Shared with your care team. They can now see it in your record." in words
    assert "Words of nb-1" in words and "Medicine: Metformin 500 mg" in words and "How bad: Mild" in words
    assert words.count("Private: only you can see it here") == 2 and words.count("Share with my care team") == 2
    assert "call 911" in words and "preliminary" not in words and "urn:" not in words
    assert dict(search.calls.last.request.url.params)["category"] == CATEGORY_SEARCH


async def test_a_new_note_is_sent_once_private_and_a_bad_form_says_what_to_fix(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    lists(gw)
    page = text(await notebook.new_entry(visit(tmp_path, path="/portal/notebook/new", query="kind=side-effect")))
    assert "Which medicine?" in page and "Metformin 500 mg" in page
    post = gw.post("/Observation").respond(201, json=stored("side-effect", "nb-9"))
    data = {"csrf_token": "csrf-1", "submission": "f" * 24, "kind": "side-effect", "text": " Dry   mouth ",
            "day": visit_day().isoformat(), "severity": "moderate", "medicine": "rx-1"}
    done = await notebook.add_entry(visit(tmp_path, "POST", "/portal/notebook", data=data))
    assert done.status_code == 303 and done.headers["location"] == "/portal/notebook?saved=new#entry-nb-9"
    sent = json.loads(post.calls.last.request.content)
    assert sent["status"] == "preliminary" and sent["valueString"] == "Dry mouth"
    assert sent["extension"][0]["valueReference"]["reference"] == "MedicationRequest/rx-1"
    assert post.calls.last.request.headers["Idempotency-Key"] == f"notebook-{'f' * 24}"
    bad = {**data, "medicine": "rx-other", "day": (date.today() + timedelta(days=3)).isoformat(), "share": "yes"}
    page = await notebook.add_entry(visit(tmp_path, "POST", "/portal/notebook", data=bad))
    words = text(page)
    assert page.status_code == 422 and "Choose the medicine from your list." in words
    assert "This date is in the future." in words and post.call_count == 1
    assert 'name="share" value="yes" checked' in page.body.decode()  # what was typed is kept


async def test_a_change_is_saved_with_if_match_and_a_change_from_elsewhere_is_shown(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    lists(gw)
    gw.get("/Observation/nb-1").respond(json=stored("symptom", "nb-1"))
    form = await notebook.edit_entry(visit(tmp_path, path="/portal/notebook/nb-1/edit",
                                           path_params={"entry_id": "nb-1"}))
    assert "Words of nb-1" in text(form) and 'name="version" value="4"' in form.body.decode()
    put = gw.put("/Observation/nb-1").respond(200, json=stored("symptom", "nb-1"))
    data = {"csrf_token": "csrf-1", "submission": "g" * 24, "version": "4", "text": "Better today",
            "day": "2026-11-02", "severity": "mild"}
    done = await notebook.save_entry(visit(tmp_path, "POST", "/portal/notebook/nb-1", data=data,
                                           path_params={"entry_id": "nb-1"}))
    assert done.headers["location"] == "/portal/notebook?saved=changed#entry-nb-1"
    assert put.calls.last.request.headers["If-Match"] == 'W/"4"'
    sent = json.loads(put.calls.last.request.content)
    assert (sent["id"], sent["valueString"], sent["effectiveDateTime"]) == ("nb-1", "Better today", "2026-11-02")
    put.respond(412, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "conflict"}]})
    stale = await notebook.save_entry(visit(tmp_path, "POST", "/portal/notebook/nb-1", data=data,
                                            path_params={"entry_id": "nb-1"}))
    assert stale.headers["location"] == "/portal/notebook?conflict=1#entry-nb-1"


async def test_sharing_sends_the_entry_as_final_and_nobody_elses_entry_can_be_opened(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get("/Observation/nb-1").respond(json=stored("question", "nb-1"))
    theirs = {**stored("symptom", "nb-2"), "performer": [{"reference": "RelatedPerson/rp-1"}]}
    gw.get("/Observation/nb-2").respond(json=theirs)
    gw.get("/Observation/lab-1").respond(json={"resourceType": "Observation", "id": "lab-1", "status": "final",
                                               "code": {"text": "Glucose"}})
    put = gw.put("/Observation/nb-1").respond(200, json=stored("question", "nb-1", "final"))
    data = {"csrf_token": "csrf-1", "submission": "share-entry-nb-1-v4", "version": "4"}
    done = await notebook.share_entry(visit(tmp_path, "POST", "/portal/notebook/nb-1/share", data=data,
                                            path_params={"entry_id": "nb-1"}))
    assert done.headers["location"] == "/portal/notebook?saved=shared#entry-nb-1"
    assert json.loads(put.calls.last.request.content)["status"] == "final"
    assert put.calls.last.request.headers["Idempotency-Key"] == "notebook-share-share-entry-nb-1-v4"
    for other in ("nb-2", "lab-1"):
        try:
            await notebook.edit_entry(visit(tmp_path, path=f"/portal/notebook/{other}/edit",
                                            path_params={"entry_id": other}))
        except notebook.NotFound:
            continue
        raise AssertionError(f"{other} opened for editing")


async def test_the_printout_puts_questions_first_with_the_patients_name(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get("/Observation").respond(json=bundle(stored("symptom", "nb-1"), stored("question", "nb-3")))
    gw.get(f"/Patient/{PT}").respond(json={"resourceType": "Patient", "id": PT,
                                           "name": [{"given": ["Ana"], "family": "Rivera"}]})
    gw.get("/Appointment").respond(json=bundle())
    page = await notebook.print_notebook(visit(tmp_path, path="/portal/notebook/print"))
    words = text(page)
    assert "Health notebook of Ana Rivera, printed" in words and "print.js" in page.body.decode()
    assert words.index("Questions to ask") < words.index("Words of nb-3") < words.index("How I felt") < words.index(
        "Words of nb-1")
    assert "No side effects written down." in words


async def test_notes_stay_out_of_test_results(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    from portal.pages.results import show_results

    lab = {"resourceType": "Observation", "id": "lab-1", "status": "final", "subject": {"reference": f"Patient/{PT}"},
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
           "effectiveDateTime": "2026-10-01", "valueQuantity": {"value": 95, "unit": "mg/dL"}}
    gw.get("/DiagnosticReport").respond(json=bundle())
    gw.get("/Observation").respond(json=bundle(lab, stored("symptom", "nb-1")))
    words = text(await show_results(visit(tmp_path, path="/portal/results")))
    assert "Glucose" in words and "Words of nb-1" not in words
