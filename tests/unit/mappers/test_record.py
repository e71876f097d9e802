"""The health record in words: medicines, allergies, vaccines, problems, procedures, visits, appointments."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

from mappers.allergies import allergy, allergy_list
from mappers.appointments import appointment, upcoming_appointments
from mappers.conditions import problem, problem_list
from mappers.immunizations import vaccine, vaccine_list
from mappers.medications import dosage_text, medication, medication_list, refill_due, timing_text
from mappers.procedures import procedure, procedure_list
from mappers.references import index_by_reference
from mappers.visits import visit_list

from .conftest import TODAY, all_of_type, assert_readable, of_type

METFORMIN = {
    "resourceType": "MedicationRequest", "id": "rx1", "status": "active", "intent": "order",
    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                              "code": "861007", "display": "metformin 500 MG Oral Tablet"}],
                                  "text": "Metformin 500 mg"},
    "authoredOn": "2026-01-02T09:00:00-06:00",
    "requester": {"reference": "Practitioner/prac-03"},
    "reasonReference": [{"reference": "Condition/c1", "display": "Diabetes mellitus type 2"}],
    "dosageInstruction": [{"text": "Take 1 tablet by mouth twice daily with meals.",
                           "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                           "route": {"text": "Oral route"},
                           "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}],
    "dispenseRequest": {"numberOfRepeatsAllowed": 3, "quantity": {"value": 180, "unit": "tablet"},
                        "expectedSupplyDuration": {"value": 90, "unit": "days", "code": "d"}},
}
DOCTOR = {"resourceType": "Practitioner", "id": "prac-03", "name": [{"family": "Raman", "given": ["Anita"],
                                                                     "prefix": ["Dr."]}]}


def dispense(did: str, when: str, status: str = "completed") -> dict:
    return {"resourceType": "MedicationDispense", "id": did, "status": status, "whenHandedOver": when,
            "authorizingPrescription": [{"reference": "MedicationRequest/rx1"}]}


def test_medication_in_words() -> None:
    med = medication(METFORMIN, resources=index_by_reference([DOCTOR]))
    assert (med.name, med.dose_text, med.prescriber) == ("Metformin 500 mg", "1 tablet twice a day", "Dr. Anita Raman")
    assert med.instructions == "Take 1 tablet by mouth twice daily with meals."
    assert (med.is_current, med.status_text, med.reason) == (True, "Current", "Diabetes mellitus type 2")
    assert (med.refills_left, med.refills_known, med.refills_text) == (3, False, "3 refills")
    assert med.supply_text == "180 tablets, about 90 days" and med.written_text == "Friday 2 January 2026"
    assert med.runs_out == date(2026, 12, 28)  # four fills of 90 days from the day it was written


def test_refills_left_counts_dispenses_after_the_first_fill() -> None:
    fills = [dispense("d1", "2026-01-03"), dispense("d2", "2026-04-01"), dispense("d3", "2026-05-01", "cancelled"),
             {**dispense("d4", "2026-06-01"), "authorizingPrescription": [{"reference": "MedicationRequest/other"}]}]
    med = medication(METFORMIN, dispenses=fills)
    assert (med.refills_left, med.refills_known, med.refills_text) == (2, True, "2 refills left")
    assert med.runs_out == date(2026, 6, 30)
    assert refill_due(med, date(2026, 6, 20)) and not refill_due(med, date(2026, 5, 1))
    none_left = medication({**METFORMIN, "dispenseRequest": {"numberOfRepeatsAllowed": 0}}, dispenses=[])
    assert none_left.refills_text == "No refills left"


def test_timing_and_dose_words() -> None:
    assert timing_text({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}) == "once a day"
    assert timing_text({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}) == "3 times a day"
    assert timing_text({"repeat": {"period": 4, "periodMax": 6, "periodUnit": "h"}}) == "every 4 to 6 hours"
    assert timing_text({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}) == "once a week"
    assert timing_text({"repeat": {"period": 1, "periodUnit": "d", "when": ["HS"],
                                   "boundsDuration": {"value": 10, "code": "d"}}}) == "every day at bedtime for 10 days"
    assert timing_text({"code": {"coding": [{"code": "BID"}]}}) == "twice a day"
    assert timing_text("x") is None
    assert dosage_text({"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "puff"}}],
                        "asNeededCodeableConcept": {"text": "Wheezing"},
                        "timing": {"repeat": {"period": 4, "periodMax": 6, "periodUnit": "h"}}}) == \
        "2 puffs every 4 to 6 hours when needed for wheezing"
    dose_range = {"low": {"value": 1}, "high": {"value": 2, "unit": "tablet"}}
    assert dosage_text({"doseAndRate": [{"doseRange": dose_range}]}) == "1 to 2 tablets"
    assert dosage_text({"text": "Use as directed"}) == "Use as directed"
    assert dosage_text({"asNeededBoolean": True, "text": "Take 2 for pain"}) == "Take 2 for pain"


def test_odd_medications_do_not_raise() -> None:
    odd = medication({"resourceType": "MedicationRequest", "status": "weird", "dispenseRequest": {
        "numberOfRepeatsAllowed": "3"}, "dosageInstruction": [None, {"sequence": "x"}]})
    assert (odd.name, odd.dose_text, odd.status_text, odd.refills_text) == \
        ("A medicine", None, "Status not known", None)
    by_ref = medication({"medicationReference": {"reference": "Medication/m"}},
                        resources={"Medication/m": {"resourceType": "Medication", "code": {"text": "Insulin"}}})
    assert by_ref.name == "Insulin"
    assert medication(None).name == "A medicine"


def test_current_and_past_medicines() -> None:
    old = {**METFORMIN, "id": "rx0", "status": "completed", "authoredOn": "2025-01-02"}
    stopped = {**METFORMIN, "id": "rx2", "status": "stopped", "authoredOn": "2024-01-02",
               "medicationCodeableConcept": {"text": "Lisinopril 10 mg"}, "statusReason": {"text": "Dry cough"}}
    refill_request = {**METFORMIN, "id": "rx3", "status": "draft", "intent": "proposal"}
    current, past = medication_list([old, stopped, METFORMIN, refill_request])
    assert [m.reference for m in current] == ["MedicationRequest/rx1"]
    assert [(m.name, m.status_text, m.status_reason) for m in past] == [("Lisinopril 10 mg", "Stopped", "Dry cough")]


def test_allergies() -> None:
    bee = {"resourceType": "AllergyIntolerance", "id": "a1", "type": "allergy", "category": ["environment"],
           "criticality": "high", "code": {"text": "Bee venom"},
           "clinicalStatus": {"coding": [{"code": "active"}]},
           "reaction": [{"manifestation": [{"text": "Anaphylaxis"}, {"coding": [{"display": "Hives"}]}],
                         "severity": "severe"}]}
    found = allergy(bee)
    assert (found.substance, found.criticality, found.kind) == ("Bee venom", "High risk of a serious reaction",
                                                                 "Allergy")
    assert [(r.what, r.severity) for r in found.reactions] == [("Anaphylaxis, Hives", "Severe")]
    nka = {"resourceType": "AllergyIntolerance", "code": {"coding": [{"system": "http://snomed.info/sct",
                                                                     "code": "716186003"}],
                                                          "text": "No known allergies"}}
    assert allergy_list([nka]) and allergy_list([nka])[0].no_known
    mild = {**bee, "id": "a2", "criticality": "low", "code": {"text": "Cat dander"}}
    refuted = {**bee, "id": "a3", "verificationStatus": {"coding": [{"code": "refuted"}]}}
    past = {**bee, "id": "a4", "code": {"text": "Aspirin"}, "clinicalStatus": {"coding": [{"code": "resolved"}]}}
    assert [a.substance for a in allergy_list([past, mild, nka, bee, refuted])] == \
        ["Bee venom", "Cat dander", "Aspirin"]
    assert allergy(None).substance == "An unnamed substance"


def test_vaccines_problems_procedures() -> None:
    shot = vaccine({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "Tdap"},
                    "occurrenceDateTime": "2025-10-09T15:15:00-05:00", "primarySource": False,
                    "reportOrigin": {"text": "State immunization registry"},
                    "route": {"text": "Injection"}, "site": {"text": "left deltoid"},
                    "protocolApplied": [{"doseNumberPositiveInt": 2, "seriesDosesPositiveInt": 2}]})
    assert (shot.name, shot.date_text, shot.dose_text) == ("Tdap", "Thursday 9 October 2025", "Dose 2 of 2")
    assert shot.where == "Injection in the left deltoid"
    assert shot.source_text == "Reported from state immunization registry"
    skipped = vaccine({"status": "not-done", "statusReason": {"text": "Patient declined"}})
    assert (skipped.status_text, skipped.reason_not_given, skipped.was_given) == \
        ("Not given", "Patient declined", False)

    htn = problem({"resourceType": "Condition", "code": {"text": "High blood pressure"},
                   "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2019-05",
                   "category": [{"coding": [{"code": "problem-list-item"}]}]})
    assert (htn.is_current, htn.since_text, htn.category) == (True, "May 2019", "Health problem")
    flu_record = {"code": {"text": "Flu"}, "onsetAge": {"value": 40}, "abatementDateTime": "2020-01-05"}
    flu = problem(flu_record)
    assert (flu.is_current, flu.status_text, flu.since_text, flu.ended_text) == \
        (False, "Past", "age 40", "Sunday 5 January 2020")
    current, past = problem_list([flu_record, {"code": {"text": "x"}, "verificationStatus": {
        "coding": [{"code": "entered-in-error"}]}}, {"code": {"text": "Asthma"}}])
    assert [p.name for p in current] == ["Asthma"] and [p.name for p in past] == ["Flu"]

    done = procedure({"resourceType": "Procedure", "status": "completed", "code": {"text": "Colonoscopy"},
                      "performedPeriod": {"start": "2024-05-01T08:00:00Z"}, "bodySite": [{"text": "Colon"}],
                      "performer": [{"actor": {"display": "Dr. Lee"}}], "note": [{"text": "No polyps."}]})
    assert (done.name, done.date_text, done.done_by, done.notes) == \
        ("Colonoscopy", "Wednesday 1 May 2024", "Dr. Lee", ("No polyps.",))
    assert procedure_list([{"status": "entered-in-error"}, {"performedString": "as a child"}])[0].date_text == \
        "as a child"


def test_visits_carry_their_notes() -> None:
    encounter = {"resourceType": "Encounter", "id": "e1", "status": "finished",
                 "class": {"code": "VR"}, "period": {"start": "2026-02-03T10:00:00-06:00"},
                 "participant": [{"individual": {"reference": "Practitioner/prac-03"}}]}
    note = {"resourceType": "DocumentReference", "id": "d1", "status": "current",
            "context": {"encounter": [{"reference": "Encounter/e1"}]},
            "type": {"text": "Visit summary"}, "date": "2026-02-03T11:00:00-06:00", "author": [{"display": "Dr. R"}],
            "content": [{"attachment": {"contentType": "text/html",
                                        "data": base64.b64encode(b"<p>Rest <b>well</b></p>").decode()}}]}
    composition = {"resourceType": "Composition", "id": "c1", "encounter": {"reference": "Encounter/e1"},
                   "title": "Discharge letter", "section": [{"title": "Plan", "text": {"div": "<div>Fluids</div>"}}]}
    (found,) = visit_list([encounter], [note, composition, {"status": "entered-in-error"}],
                          index_by_reference([DOCTOR]))
    assert (found.kind, found.is_video, found.clinicians) == ("Video visit", True, ("Dr. Anita Raman",))
    assert found.time_text == "10:00 am"
    assert [(n.title, n.text) for n in found.notes] == [("Visit summary", "Rest well"),
                                                       ("Discharge letter", "Plan\nFluids")]


def test_appointments() -> None:
    booked = {"resourceType": "Appointment", "id": "a1", "status": "booked", "serviceType": [{"text": "Follow-up"}],
              "start": "2026-03-11T09:30:00-06:00", "end": "2026-03-11T10:00:00-06:00",
              "participant": [{"actor": {"reference": "Patient/pt-1"}},
                              {"actor": {"reference": "Practitioner/prac-03"}},
                              {"actor": {"reference": "Location/loc", "display": "Main clinic"}}],
              "patientInstruction": "Bring your medicines."}
    view = appointment(booked, TODAY, resources=index_by_reference([DOCTOR]))
    assert (view.what, view.when_text, view.minutes) == ("Follow-up", "tomorrow at 9:30 am", 30)
    assert (view.with_whom, view.place, view.instructions) == (("Dr. Anita Raman",), "Main clinic",
                                                              "Bring your medicines.")
    past = {**booked, "id": "a0", "start": "2026-03-01T09:00:00-06:00"}
    cancelled = {**booked, "id": "a2", "status": "cancelled"}
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert [a.reference for a in upcoming_appointments([past, cancelled, booked], TODAY, now)] == \
        ["Appointment/a1"]


def test_every_demo_record_reads_well(records: dict) -> None:
    for resources in records.values():
        lookup = index_by_reference(resources)
        current, past = medication_list(of_type(resources, "MedicationRequest"), resources=lookup)
        for med in current + past:
            assert_readable(med.name), assert_readable(med.dose_text), assert_readable(med.prescriber)
        for med in current:
            assert_readable(med.refills_text)
        for item in allergy_list(of_type(resources, "AllergyIntolerance")):
            assert_readable(item.substance)
        for shot in vaccine_list(of_type(resources, "Immunization")):
            assert_readable(shot.name), assert_readable(shot.date_text)
        current_p, past_p = problem_list(of_type(resources, "Condition"))
        for item in current_p + past_p:
            assert_readable(item.name), assert_readable(item.since_text)
        for item in visit_list(of_type(resources, "Encounter"), of_type(resources, "DocumentReference"), lookup):
            assert_readable(item.kind), assert_readable(item.date_text)
            assert item.clinicians and item.place
            assert item.notes and all(n.text for n in item.notes)
        for item in upcoming_appointments(of_type(resources, "Appointment"), TODAY, None, lookup):
            assert_readable(item.when_text), assert_readable(item.what)
    assert any(medication(m).refills_allowed for m in all_of_type(records, "MedicationRequest"))
