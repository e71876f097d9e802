"""Which EHR changes are "a new result is ready" for a patient (mappers/notices.released_results)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mappers.notices import released_results

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LAB = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}]
LAB_OBS = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory"}]}]
SURVEY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}]


def result(patient: str, *, rtype: str = "DiagnosticReport", status: str = "final", category: Any = LAB,
           issued: str = "2026-03-10T09:00:00Z") -> dict[str, Any]:
    when = {"issued": issued} if rtype == "DiagnosticReport" else {"effectiveDateTime": issued}
    return {"resourceType": rtype, "status": status, "category": category,
            "subject": {"reference": f"Patient/{patient}"}, **when}


def test_a_final_lab_report_or_observation_is_news_once_per_patient() -> None:
    changed = [result("pt-1"), result("pt-1", rtype="Observation", category=LAB_OBS),
               result("pt-2", status="amended", rtype="Observation", category=LAB_OBS)]
    assert released_results(changed, NOW) == ["pt-1", "pt-2"]


def test_pending_old_own_notes_other_types_and_odd_subjects_are_not_announced() -> None:
    changed = [
        result("pt-1", status="preliminary"),
        result("pt-2", issued="2025-01-01T00:00:00Z"),  # an old result edited or reloaded
        result("pt-3", rtype="Observation", category=SURVEY),  # the patient's own notebook
        {**result("pt-4"), "resourceType": "Condition"},
        {**result("pt-5"), "subject": {"reference": "Group/g-1"}},
        {**result("pt-6"), "subject": {"reference": "Patient/../x"}},
        result("pt-7", issued="not a date"),
    ]
    assert released_results(changed, NOW) == []
