"""The health summary a patient prints: current things only, the newest value of each test."""

from __future__ import annotations

from mappers.summary import health_summary, latest_results

from .conftest import TODAY, assert_readable, of_type


def test_summary_keeps_current_problems_and_medicines_and_the_newest_results(records: dict) -> None:
    resources = records["pt-0010"]
    patient = of_type(resources, "Patient")[0]
    summary = health_summary(patient, resources, TODAY)
    assert summary.born_text and summary.born_text.endswith("years old)")
    assert summary.problems and all(p.is_current for p in summary.problems)
    assert summary.medicines and all(m.is_current for m in summary.medicines)
    assert all(v.was_given for v in summary.vaccines)
    assert 0 < len(summary.visits) <= 5
    starts = [v.start.sort_key() for v in summary.visits if v.start]
    assert starts == sorted(starts, reverse=True)
    for text in [summary.name, summary.made_text, *(r.value_text for r in summary.latest_results)]:
        assert_readable(text)


def test_latest_result_is_the_newest_of_each_test() -> None:
    def glucose(oid: str, value: float, when: str) -> dict:
        return {"resourceType": "Observation", "id": oid, "status": "final", "effectiveDateTime": when,
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
                "valueQuantity": {"value": value, "unit": "mg/dL"}}

    wrong = {**glucose("c", 300, "2026-03-01"), "status": "entered-in-error"}
    (row,) = latest_results([glucose("a", 90, "2025-01-01"), glucose("b", 121, "2026-02-01"), wrong])
    assert row.value_text == "121 mg/dL"
