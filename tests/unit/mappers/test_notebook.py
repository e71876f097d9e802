"""The health notebook's pure parts: the form's checks in words, the Observation the portal sends, entries in
words for the page, Home and the printout, and the notebook kept apart from test results."""

from __future__ import annotations

from datetime import date

from mappers.notebook import (
    SEVERITY_WORDS,
    entry_errors,
    entry_resource,
    for_next_visit,
    in_words,
    notebook_entries,
    print_heading,
    shared,
    without_notebook,
)

TODAY = date(2026, 11, 30)
MEDICINES = {"rx-1": "Metformin 500 mg"}
VISITS = {"ap-1": "3 December 2026: Check-up"}
ME = "Patient/pt-1"


def form(kind: str, **extra: str) -> dict[str, str]:
    return {"kind": kind, "text": "Dizzy in the morning", "day": "2026-11-28", "severity": "mild", **extra}


def resource(kind: str, rid: str, **extra: str) -> dict:
    body = entry_resource(form(kind, **extra), patient_ref=ME, author_ref=ME, submission="s" * 20, today=TODAY,
                          medicines=MEDICINES, visits=VISITS)
    return {**body, "id": rid, "meta": {"versionId": "2"}}


def test_each_field_says_what_is_wrong_in_plain_words() -> None:
    errors = entry_errors({"kind": "symptom", "text": " ", "day": "2026-12-25", "severity": "awful"}, TODAY,
                          medicines=MEDICINES, visits=VISITS)
    assert errors == {"text": ["Say how you feel, for example “headache after lunch”."],
                      "day": ["This date is in the future. Enter the day it happened."],
                      "severity": ["Choose how bad it is: mild, moderate or severe."]}
    side = entry_errors(form("side-effect", medicine="rx-9"), TODAY, medicines=MEDICINES, visits=VISITS)
    assert side == {"medicine": ["Choose the medicine from your list."]}
    question = entry_errors({"kind": "question", "text": "x" * 501, "visit": "ap-9"}, TODAY, medicines={},
                            visits=VISITS)
    assert question["text"] == ["This can be at most 500 characters. You have 501."]
    assert question["visit"] == ["Choose one of your visits, or “My next visit”."]
    assert entry_errors(form("question"), TODAY, medicines={}, visits={}) == {}
    assert entry_errors({"kind": "diary"}, TODAY, medicines={}, visits={}) == {
        "kind": ["Choose what you want to write down."]}


def test_entries_read_in_words_newest_first_with_who_may_change_them() -> None:
    side = resource("side-effect", "nb-2", medicine="rx-1", day="2026-11-29", severity="severe")
    question = resource("question", "nb-3", visit="ap-1", text="Can I take it with food?")
    caregiver = {**resource("symptom", "nb-4", day="2026-11-01"), "performer": [{"reference": "RelatedPerson/rp"}]}
    lab = {"resourceType": "Observation", "id": "lab", "status": "final", "code": {"text": "Glucose"},
           "category": [{"coding": [{"code": "laboratory"}]}]}
    entries = notebook_entries([resource("symptom", "nb-1"), shared(side), question, caregiver, lab], TODAY,
                               mine=[ME])
    assert [e.id for e in entries] == ["nb-3", "nb-2", "nb-1", "nb-4"]
    q, s, sym, other = entries
    assert (q.kind_text, q.text, q.visit_id, q.shared) == ("Question for my visit", "Can I take it with food?",
                                                           "ap-1", False)
    assert (s.medicine, s.severity_text, s.day_text, s.shared, s.status_text) == (
        "Metformin 500 mg", "Severe", "yesterday", True, "Shared with your care team")
    assert sym.status_text == "Private: only you can see it here" and sym.written_by_me
    assert not other.written_by_me
    assert s.form() == {"kind": "side-effect", "text": "Dizzy in the morning", "day": "2026-11-29",
                        "severity": "severe", "medicine": "rx-1", "visit": ""}
    assert without_notebook([lab, side]) == [lab]


def test_before_a_visit_its_questions_and_the_recent_notes_are_picked() -> None:
    entries = notebook_entries([
        resource("question", "q-this", visit="ap-1"), resource("question", "q-any"),
        resource("question", "q-other", visit="ap-2"), resource("symptom", "recent", day="2026-11-20"),
        resource("symptom", "old", day="2026-09-01")], TODAY, mine=[ME])
    notes = for_next_visit(entries, "ap-1", date(2026, 11, 1))
    assert {e.id for e in notes.questions} == {"q-this", "q-any"} and [e.id for e in notes.notes] == ["recent"]
    assert not for_next_visit([], "ap-1", None)


def test_in_spanish_the_words_and_dates_are_spanish_and_the_record_is_the_same() -> None:
    errors = entry_errors({"kind": "symptom", "text": "x" * 501, "day": "2026-12-25", "severity": "awful"}, TODAY,
                          medicines={}, visits={}, locale="es_US")
    assert errors == {"text": ["Puede tener 500 letras como máximo. Usted tiene 501."],
                      "day": ["Esa fecha todavía no llega. Escriba el día en que pasó."],
                      "severity": ["Elija qué tan fuerte es: leve, moderada o grave."]}
    side = resource("side-effect", "nb-2", medicine="rx-1", day="2026-11-20", severity="severe")
    # What is written to the record does not depend on the language the patient reads.
    assert side == resource("side-effect", "nb-2", medicine="rx-1", day="2026-11-20", severity="severe")
    (entry,) = notebook_entries([shared(side)], TODAY, mine=[ME], locale="es_US")
    assert (entry.kind_text, entry.severity_text, entry.status_text) == (
        "Efecto de un medicamento", "Grave", "Compartida con su equipo médico")
    assert (entry.day_text, entry.date_text) == ("viernes, 20 de noviembre de 2026", "20 de noviembre de 2026")
    assert print_heading("Ana López", TODAY, "es_US") == "Cuaderno de salud de Ana López, impreso el lunes, " \
                                                         "30 de noviembre de 2026"
    assert print_heading(None, TODAY) == "Your health notebook, printed Monday 30 November 2026"
    assert in_words(SEVERITY_WORDS, "es")["severe"] == "Grave: no puedo hacer mis cosas de siempre"
