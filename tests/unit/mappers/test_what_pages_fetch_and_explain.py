"""Small helpers pages use to decide what to fetch and what to explain."""

from __future__ import annotations

from mappers.care_due import evidence_codes, load_rules
from mappers.explanations import explanations_for, load_explanations
from mappers.results import result_codes, results_page

from .conftest import of_type


def test_every_test_on_a_results_page_is_listed_once_in_reading_order(records: dict) -> None:
    resources = records["pt-0004"]
    page = results_page(of_type(resources, "DiagnosticReport"), of_type(resources, "Observation"))
    codes = result_codes(page)
    assert len(codes) == len(set(codes))
    first_panel = page.panels[0]
    assert codes[0] == first_panel.loinc and codes[1] == first_panel.rows[0].loinc
    # Blood pressure's parts are tests of their own.
    assert {"8480-6", "8462-4"} <= set(codes)


def test_explanations_follow_the_codes_given_and_skip_unknown_ones() -> None:
    table = load_explanations()
    found = explanations_for(["2823-3", "0000-0", "2823-3", "4548-4"], table)
    assert [e.loinc for e in found] == ["2823-3", "4548-4"]


def test_evidence_codes_name_every_code_the_rules_count_and_the_bmi() -> None:
    codes = evidence_codes(load_rules())
    assert "http://loinc.org|4548-4" in codes["Observation"]  # A1C counts for the diabetes rules
    assert "http://loinc.org|39156-5" in codes["Observation"]  # BMI decides who the diabetes screening is for
    assert "http://snomed.info/sct|73761001" in codes["Procedure"]  # colonoscopy
    assert "Condition" not in codes
    assert all(len(v) == len(set(v)) for v in codes.values())
