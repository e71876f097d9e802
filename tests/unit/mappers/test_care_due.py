"""Vaccines and screenings due, from the record and a table of sourced rules."""

from __future__ import annotations

import re
from datetime import date

import pytest

from mappers.care_due import CareRuleError, add_months, care_due, load_rules

from .conftest import TODAY, of_type

CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def person(born: str, sex: str = "female") -> dict:
    return {"resourceType": "Patient", "id": "p", "birthDate": born, "gender": sex}


def shot(cvx: str, when: str, status: str = "completed") -> dict:
    return {"resourceType": "Immunization", "status": status, "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
            "occurrenceDateTime": when}


def coded(code: str, when: str, resource: str = "Observation", system: str = LOINC, value: float | None = None) -> dict:
    found = {"resourceType": resource, "status": "completed" if resource == "Procedure" else "final",
             "code": {"coding": [{"system": system, "code": code}]}}
    found["performedDateTime" if resource == "Procedure" else "effectiveDateTime"] = when
    if value is not None:
        found["valueQuantity"] = {"value": value, "unit": "kg/m2"}
    return found


def due(patient: dict, record: list, today: date = TODAY) -> dict[str, str]:
    return {i.rule_id: i.status_text for i in care_due(patient, record, today)}


def test_shipped_rules_load_with_sources() -> None:
    rules = load_rules()
    assert {"flu", "tdap", "shingles", "pneumococcal", "breast-cancer", "cervical-cancer", "colorectal-cancer",
            "diabetes-a1c"} <= {r.id for r in rules}
    assert all(r.source_url.startswith("https://") and r.source_title and r.evidence for r in rules)


def test_nothing_is_due_without_a_birth_date() -> None:
    assert care_due({"resourceType": "Patient"}, [], TODAY) == []
    assert care_due(person("2030-01-01"), [], TODAY) == []


def test_flu_each_season_only_in_season() -> None:
    child = person("2020-01-01", "male")
    assert due(child, [shot("140", "2025-10-01")], date(2026, 3, 10)).get("flu") is None
    assert due(child, [shot("140", "2025-07-20")], date(2026, 3, 10))["flu"] == "Due this season"
    assert "flu" not in due(child, [], date(2026, 6, 1))  # between seasons
    assert due(child, [shot("140", "2025-10-01", status="not-done")], date(2026, 1, 5))["flu"] == "Due this season"
    baby = person("2025-12-01")
    assert "flu" not in due(baby, [], date(2026, 3, 10)) and "flu" in due(baby, [], date(2026, 8, 2))


def test_tetanus_every_ten_years() -> None:
    adult = person("1980-05-05", "male")
    assert due(adult, [])["tdap"] == "Due now: no record of it"
    assert "tdap" not in due(adult, [shot("115", "2020-01-01")])
    assert due(adult, [shot("115", "2016-04-20")])["tdap"] == "Due by Monday 20 April 2026"
    assert due(adult, [shot("09", "2015-01-01")])["tdap"] == "Overdue since January 2025"


def test_shingles_series_and_age() -> None:
    assert "shingles" not in due(person("1980-01-01"), [])
    older = person("1970-01-01")
    assert due(older, [])["shingles"] == "Due now: no record of it"
    assert due(older, [shot("187", "2026-01-20")])["shingles"] == "Dose 2 of 2: due by Friday 20 March 2026"
    assert due(older, [shot("187", "2025-10-01")])["shingles"] == "Dose 2 of 2: overdue since December 2025"
    assert "shingles" not in due(older, [shot("187", "2025-10-01"), shot("187", "2025-12-15")])


def test_what_is_due_in_spanish() -> None:
    older = person("1970-01-01")
    items = {i.rule_id: i for i in care_due(older, [shot("187", "2026-01-20"), shot("09", "2015-01-01")], TODAY,
                                            locale="es_US")}
    assert items["shingles"].title == "Vacuna contra la culebrilla (2 dosis)"
    assert items["shingles"].status_text == "Dosis 2 de 2: le toca antes del viernes, 20 de marzo de 2026"
    assert items["tdap"].status_text == "Pendiente desde enero de 2025"
    assert items["tdap"].last_done_text == "jueves, 1 de enero de 2015"
    assert items["tdap"].why.startswith("Los adultos necesitan un refuerzo contra el tétanos")
    assert items["pneumococcal"].status_text == "Le toca ahora: no está en su historial"
    # The guideline's title stays the guideline's own (English), as its link does.
    assert items["tdap"].source_title == "CDC: Adult Immunization Schedule by Age"


def test_screenings_by_sex_age_and_evidence() -> None:
    woman = person("1975-01-01")
    man = person("1975-01-01", "male")
    assert "breast-cancer" in due(woman, []) and "breast-cancer" not in due(man, [])
    mammogram = coded("24606-6", "2025-01-10", "DiagnosticReport")
    assert "breast-cancer" not in due(woman, [mammogram])
    assert "breast-cancer" not in due(person("1950-01-01"), [])  # 76: past the screening ages
    # Colon: a stool test lasts a year, a colonoscopy ten.
    assert due(man, [coded("29771-3", "2024-01-01")])["colorectal-cancer"] == "Overdue since January 2025"
    assert "colorectal-cancer" not in due(man, [coded("29771-3", "2024-01-01"),
                                                coded("73761001", "2019-06-01", "Procedure", SNOMED)])


def test_condition_and_bmi_rules() -> None:
    adult = person("1970-06-01", "male")
    diabetes = {"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.65"}]}}
    assert "diabetes-a1c" not in due(adult, [])
    assert due(adult, [diabetes])["diabetes-a1c"] == "Due now: no record of it"
    assert "diabetes-a1c" not in due(adult, [diabetes, coded("4548-4", "2025-12-01")])
    resolved = {**diabetes, "clinicalStatus": {"coding": [{"code": "resolved"}]}}
    assert "diabetes-a1c" not in due(adult, [resolved])
    heavy, light = coded("39156-5", "2026-01-01", value=31.2), coded("39156-5", "2026-01-01", value=22.0)
    assert "diabetes-screening" in due(adult, [heavy]) and "diabetes-screening" not in due(adult, [light])
    newer_light = coded("39156-5", "2026-02-01", value=24.0)
    assert "diabetes-screening" not in due(adult, [heavy, newer_light])


def test_order_overdue_then_due_then_soon() -> None:
    items = care_due(person("1980-05-05", "male"), [shot("09", "2015-01-01")], TODAY)
    statuses = [i.status for i in items]
    assert statuses == sorted(statuses, key=["overdue", "due", "due-soon"].index)
    assert items[0].rule_id == "tdap" and items[0].source_url.startswith("https://www.cdc.gov/")


RULE = '''
[[rules]]
id = "x"
title = "X"
kind = "vaccine"
why = "Because."
min_age = 1
every_months = 12
source_title = "Somewhere"
source_url = "https://example.org/x"
[[rules.evidence]]
resource = "Immunization"
system = "http://hl7.org/fhir/sid/cvx"
codes = ["1"]
'''


@pytest.mark.parametrize(("change", "message"), [
    (('source_url = "https://example.org/x"\n', ""), "`source_url` is missing"),
    (('source_url = "https://example.org/x"', 'source_url = "example.org"'), "https address"),
    (('kind = "vaccine"', 'kind = "magic"'), "`kind` must be one of"),
    (("every_months = 12", "every_months = 12\nonce = true"), "exactly one of"),
    (('resource = "Immunization"', 'resource = "Patient"'), "evidence needs a `resource`"),
    (('codes = ["1"]', "codes = []"), "list of `codes`"),
    (("min_age = 1", "min_age = -1"), "`min_age` must be a number"),
    (('why = "Because."', ""), "`why` is missing"),
])
def test_rule_loader_names_what_is_wrong(change: tuple[str, str], message: str) -> None:
    assert load_rules(RULE)[0].id == "x"
    with pytest.raises(CareRuleError, match=re.escape(message)):
        load_rules(RULE.replace(*change))
    with pytest.raises(CareRuleError, match="twice"):
        load_rules(RULE + RULE)


def test_add_months_keeps_to_the_calendar() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 11, 15), 14) == date(2026, 1, 15)


def test_demo_patients(records: dict) -> None:
    for resources in records.values():
        patient = of_type(resources, "Patient")[0]
        items = care_due(patient, resources, TODAY)
        ids = [i.rule_id for i in items]
        assert len(ids) == len(set(ids))
        for item in items:
            assert item.title and item.why and item.status_text and item.source_url
        had_mammogram = [r for r in of_type(resources, "DiagnosticReport")
                         if r["code"]["coding"][0]["code"] == "24606-6"]
        if had_mammogram and patient["gender"] == "female":
            latest = max(r["effectiveDateTime"][:10] for r in had_mammogram)
            if latest >= "2024-04-10":
                assert "breast-cancer" not in ids
