"""The clinic's forms as questions, what a browser sends read back as answers with field-level problems,
and the same answers judged when they come as a QuestionnaireResponse (the gateway's check)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.practice import VISIT_TYPES
from fixtures.questionnaires import questionnaire_resources
from mappers.inbound import APPOINTMENT_EXTENSION, FORM_SENT, questionnaire_response
from mappers.questionnaires import (
    REQUIRED,
    answered,
    answers_of,
    canonical,
    check_answers,
    cites,
    condition_hints,
    every_question,
    questions,
    read_form,
    response_items,
    typed_values,
)
from mappers.validation import InboundError

FORMS = {f["name"]: f for f in questionnaire_resources(VISIT_TYPES)}
INTAKE, CHECKIN = FORMS["NewPatientIntake"], FORMS["PrevisitCheckin"]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PT = "Patient/pt-1"


def fields(form: dict[str, Any], **by_link: str | list[str]) -> dict[str, list[str]]:
    """Form fields as a browser sends them, given answers by linkId."""
    ids = {q.link_id: q.field_id for q in every_question(questions(form))}
    return {ids[k]: v if isinstance(v, list) else [v] for k, v in by_link.items()}


GOOD_CHECKIN = {"reason": "My knee hurts", "pain": "3", "meds-changed": "no", "er-visit": "no",
                "phq2-interest": "0", "phq2-down": "1", "insurance-same": "yes"}


def test_both_forms_read_as_questions_with_groups_types_and_required_marks() -> None:
    intake = {q.link_id: q for q in every_question(questions(INTAKE))}
    assert intake["about"].kind == "group" and [q.link_id for q in intake["about"].items][:2] == [
        "preferred-name", "birth-date"]
    assert intake["birth-date"].kind == "date" and intake["birth-date"].required
    assert intake["conditions"].repeats and "None of these" in [c.label for c in intake["conditions"].choices]
    assert intake["alcohol"].min_value == 0 and intake["alcohol"].max_value == 100
    assert intake["weight"].kind == "decimal"
    checkin = {q.link_id: q for q in every_question(questions(CHECKIN))}
    assert [c.label for c in checkin["phq2-down"].choices] == [
        "Not at all", "Several days", "More than half the days", "Nearly every day"]
    # Field ids are safe HTML ids, whatever the linkIds are.
    assert all(q.field_id.replace("-", "").isalnum() for q in every_question(questions(INTAKE)))


def test_a_complete_check_in_reads_back_as_typed_fhir_answers() -> None:
    reading = read_form(questions(CHECKIN), fields(CHECKIN, **GOOD_CHECKIN), completing=True)
    assert reading.problems == {}
    assert reading.answers["pain"] == [{"valueInteger": 3}]
    assert reading.answers["meds-changed"] == [{"valueBoolean": False}]
    assert reading.answers["phq2-down"][0]["valueCoding"]["code"] == "LA6569-3"
    items = response_items(questions(CHECKIN), reading.answers)
    phq = next(i for i in items if i["linkId"] == "phq2")
    assert [i["linkId"] for i in phq["item"]] == ["phq2-interest", "phq2-down"]  # the form's groups kept


def test_each_problem_is_told_at_its_own_question_in_plain_words() -> None:
    typed = {**GOOD_CHECKIN, "pain": "11", "symptom-start": "31/31/2024", "meds-changed": "maybe"}
    del typed["reason"]
    reading = read_form(questions(CHECKIN), fields(CHECKIN, **typed), completing=True)
    assert reading.problems["pain"] == ["Please enter a number from 0 to 10."]
    assert reading.problems["symptom-start"] == ["Please enter a date, like 2024-03-15."]
    assert reading.problems["meds-changed"] == ["Please answer yes or no."]
    assert reading.problems["reason"] == [REQUIRED]
    assert reading.typed["pain"] == ["11"]  # shown again as typed, to correct


def test_a_draft_may_leave_required_questions_empty_but_not_hold_nonsense() -> None:
    qs = questions(CHECKIN)
    assert read_form(qs, fields(CHECKIN, reason="Check-up"), completing=False).problems == {}
    assert read_form(qs, fields(CHECKIN, pain="lots"), completing=False).problems == {
        "pain": ["Please enter a whole number, like 3."]}


def test_a_question_that_does_not_apply_is_not_required_and_its_answer_is_dropped() -> None:
    qs = questions(CHECKIN)
    assert condition_hints(qs)["meds-changes"] == (
        "Answer this only if your answer to “Have your medicines changed since your last visit?” was “Yes”.")
    on = read_form(qs, fields(CHECKIN, **{**GOOD_CHECKIN, "meds-changed": "yes"}), completing=True)
    assert on.problems == {"meds-changes": [REQUIRED]}
    off = read_form(qs, fields(CHECKIN, **GOOD_CHECKIN, **{"meds-changes": "typed before changing my mind"}),
                    completing=True)
    assert off.problems == {} and "meds-changes" not in off.answers


def test_several_choices_where_the_question_allows_them() -> None:
    qs = questions(INTAKE)
    reading = read_form(qs, fields(INTAKE, conditions=["0", "3"]), completing=False)
    assert len(reading.answers["conditions"]) == 2
    only_one = read_form(qs, fields(INTAKE, tobacco=["0", "1"]), completing=False)
    assert len(only_one.answers["tobacco"]) == 1  # a single-answer question keeps the first


def test_a_saved_draft_fills_the_form_back_in_exactly() -> None:
    qs = questions(CHECKIN)
    typed = {**GOOD_CHECKIN, "symptom-start": "2026-11-20", "overall": "2"}
    reading = read_form(qs, fields(CHECKIN, **typed), completing=True)
    response = {"item": response_items(qs, reading.answers)}
    assert typed_values(qs, answers_of(response)) == {k: [v] for k, v in typed.items()}
    lines = {line.text: line.answers for line in answered(qs, answers_of(response))}
    assert lines["How much pain are you in right now, from 0 (none) to 10 (the worst)?"] == ("3",)
    assert lines["Is your insurance the same as at your last visit?"] == ("Yes",)
    assert lines["In general, how would you rate your health?"] == ("Good",)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([q.field_id for q in every_question(questions(INTAKE))] + ["other"]),
                       st.lists(st.text(max_size=30), max_size=3)), st.booleans())
def test_whatever_a_browser_sends_the_answers_kept_pass_the_gateways_check(form: dict[str, list[str]],
                                                                          completing: bool) -> None:
    qs = questions(INTAKE)
    reading = read_form(qs, form, completing=completing)
    judged = check_answers(qs, reading.answers, completing=False)
    assert judged == {} or set(judged) <= set(reading.problems)
    if not reading.problems:
        assert check_answers(qs, reading.answers, completing=completing) == {}
        again = read_form(qs, fields(INTAKE, **typed_values(qs, reading.answers)), completing=completing)
        assert again.answers == reading.answers


def test_the_gateway_check_refuses_unknown_questions_wrong_kinds_and_choices_not_offered() -> None:
    qs = questions(CHECKIN)
    assert check_answers(qs, {"made-up": [{"valueString": "x"}]}, completing=False) == {
        "": ["The form has no question 'made-up' to answer."]}
    assert check_answers(qs, {"pain": [{"valueString": "3"}]}, completing=False) == {
        "pain": ["This answer is not the right kind for the question."]}
    assert check_answers(qs, {"overall": [{"valueCoding": {"system": "x", "code": "superb"}}]},
                         completing=False) == {"overall": ["Please pick one of the choices shown."]}
    assert check_answers(qs, {"pain": [{"valueInteger": 2}, {"valueInteger": 3}]}, completing=False) == {
        "pain": ["Please give one answer."]}


def test_a_response_names_its_form_by_versioned_canonical() -> None:
    assert canonical(CHECKIN).endswith("/previsit-checkin|1.3")
    assert cites(canonical(CHECKIN), CHECKIN) and cites(CHECKIN["url"], CHECKIN)
    assert not cites(CHECKIN["url"] + "|0.9", CHECKIN) and not cites(canonical(INTAKE), CHECKIN)


def proposed(status: str = "completed", **extra: Any) -> dict[str, Any]:
    qs = questions(CHECKIN)
    answers = read_form(qs, fields(CHECKIN, **GOOD_CHECKIN), completing=True).answers
    return {"resourceType": "QuestionnaireResponse", "questionnaire": canonical(CHECKIN), "status": status,
            "item": response_items(qs, answers), **extra}


def shape(body: dict[str, Any], current: dict[str, Any] | None = None, appointment: str | None = None
          ) -> dict[str, Any]:
    return questionnaire_response(body, CHECKIN, current, patient_ref=PT, author_ref=PT,
                                  appointment_ref=appointment, now=NOW)


def test_inbound_shaping_stores_exactly_what_was_checked_for_the_callers_own_record() -> None:
    shaped = shape(proposed(), appointment="Appointment/ap-1")
    assert shaped["subject"] == {"reference": PT} and shaped["status"] == "completed"
    assert shaped["authored"] == "2026-12-01T09:00:00+00:00"
    assert shaped["extension"] == [{"url": APPOINTMENT_EXTENSION, "valueReference": {"reference": "Appointment/ap-1"}}]


@pytest.mark.parametrize(("body", "current", "words"), [
    (proposed(status="amended"), None, "draft (in-progress) or sent (completed)"),
    (proposed(subject={"reference": "Patient/pt-2"}), None, "your own record"),
    (proposed(questionnaire=canonical(INTAKE)), None, "different form"),
    (proposed(item=[{"linkId": "pain", "answer": [{"valueInteger": 99}]}]), None, "from 0 to 10"),
    (proposed(), {"id": "qr-1", "status": "completed", "questionnaire": canonical(CHECKIN)}, FORM_SENT),
])
def test_inbound_shaping_refuses_with_words_the_patient_can_act_on(body: dict, current: dict | None,
                                                                  words: str) -> None:
    with pytest.raises(InboundError, match=words.replace("(", r"\(").replace(")", r"\)")):
        shape(body, current)


def test_a_draft_is_accepted_with_required_questions_empty_but_sending_is_not() -> None:
    empty = {"resourceType": "QuestionnaireResponse", "questionnaire": canonical(CHECKIN), "status": "in-progress"}
    assert shape(empty)["status"] == "in-progress"
    with pytest.raises(InboundError, match="Please answer this question"):
        shape({**empty, "status": "completed"})
