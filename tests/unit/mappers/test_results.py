"""Results as a patient sees them: panels with their rows, loose results by day, series for trends."""

from __future__ import annotations

import base64
from typing import Any

from mappers.results import report_panel, result_row, results_page, trends

from .conftest import all_of_type, assert_readable, of_type

LOINC = "http://loinc.org"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def potassium(oid: str, value: float, when: str, interp: str | None = None, unit: str = "mmol/L") -> dict:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [{"coding": [{"code": "laboratory", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "2823-3", "display": "Potassium [Moles/volume]"}],
                 "text": "Potassium"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
        "referenceRange": [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}],
    }
    if interp:
        obs["interpretation"] = [{"coding": [{"system": INTERP, "code": interp}]}]
    return obs


def test_a_row_has_everything_the_page_shows() -> None:
    obs = potassium("k1", 5.4, "2026-06-02T09:00:00-05:00", "H")
    obs["note"] = [{"text": "Repeat in a week.", "authorReference": {"display": "Dr. Raman"},
                    "time": "2026-06-03T10:00:00-05:00"}]
    row = result_row(obs)
    assert (row.name, row.value_text, row.range_text) == ("Potassium", "5.4 mmol/L", "3.5 to 5.1 mmol/L")
    assert row.flag is not None and (row.flag.words, row.flag.symbol) == ("High", "↑")
    assert row.date_text == "Tuesday 2 June 2026" and row.reference == "Observation/k1"
    assert row.notes[0].text == "Repeat in a week." and row.notes[0].author == "Dr. Raman"
    assert row.category == "Laboratory" and row.status_text is None


def test_blood_pressure_reads_as_one_value() -> None:
    bp = {"resourceType": "Observation", "id": "bp", "status": "final", "code": {"text": "Blood pressure"},
          "effectiveDateTime": "2026-01-05",
          "component": [
              {"code": {"coding": [{"system": LOINC, "code": "8480-6"}], "text": "Systolic"},
               "valueQuantity": {"value": 128, "unit": "mmHg", "code": "mm[Hg]"}},
              {"code": {"coding": [{"system": LOINC, "code": "8462-4"}], "text": "Diastolic"},
               "valueQuantity": {"value": 82, "unit": "mmHg", "code": "mm[Hg]"}}]}
    row = result_row(bp)
    assert row.value_text == "128/82 mmHg"
    assert [c.value_text for c in row.components] == ["128 mmHg", "82 mmHg"]


def test_other_value_types_and_missing_values() -> None:
    base = {"resourceType": "Observation", "code": {"text": "Test"}}
    assert result_row({**base, "valueString": "Positive"}).value_text == "Positive"
    assert result_row({**base, "valueCodeableConcept": {"coding": [{"display": "Detected"}]}}).value_text == "Detected"
    assert result_row({**base, "valueBoolean": False}).value_text == "No"
    assert result_row({**base, "valueRange": {"low": {"value": 1}, "high": {"value": 2}}}).value_text == "1 to 2"
    assert result_row({**base, "dataAbsentReason": {"text": "Sample clotted"}}).value_text == \
        "No result: sample clotted"
    odd = result_row({"resourceType": "Observation"})
    assert (odd.name, odd.value_text, odd.date_text, odd.flag) == ("Test result", "No result", "an unknown date", None)
    assert result_row(None).name == "Test result"


def test_panel_keeps_report_order_and_drops_errors() -> None:
    observations = {"Observation/a": potassium("a", 4.0, "2026-01-05"),
                    "Observation/b": {**potassium("b", 9.9, "2026-01-05"), "status": "entered-in-error"},
                    "Observation/c": potassium("c", 5.6, "2026-01-05", "HH")}
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final",
              "code": {"text": "Basic metabolic panel"}, "effectiveDateTime": "2026-01-05",
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
              "result": [{"reference": "Observation/c"}, {"reference": "Observation/b"}, {"reference": "Observation/a"},
                         {"reference": "Observation/missing"}],
              "conclusion": "Potassium very high; we will call you.",
              "resultsInterpreter": [{"display": "Dr. Raman"}]}
    panel = report_panel(report, observations)
    assert [r.reference for r in panel.rows] == ["Observation/c", "Observation/a"]
    assert [r.flag.key for r in panel.flagged] == ["critical-high"]  # type: ignore[union-attr]
    assert panel.conclusion == "Potassium very high; we will call you." and panel.interpreter == "Dr. Raman"
    assert not panel.is_imaging and panel.report_text is None


def test_imaging_report_text() -> None:
    text = base64.b64encode(b"Lungs are clear.").decode()
    report = {"resourceType": "DiagnosticReport", "id": "x", "status": "preliminary", "code": {"text": "Chest X-ray"},
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
              "presentedForm": [{"contentType": "text/plain", "data": text}], "issued": "2026-02-01T10:00:00Z"}
    panel = report_panel(report)
    assert panel.is_imaging and panel.report_text == "Lungs are clear." and panel.rows == ()
    assert panel.status_text == "Preliminary result" and panel.date_text == "Sunday 1 February 2026"


def test_loose_results_grouped_by_kind_and_day_newest_first() -> None:
    listed = potassium("in-report", 4.2, "2026-01-05")
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": {"text": "Panel"},
              "result": [{"reference": "Observation/in-report"}], "effectiveDateTime": "2026-01-05"}
    page = results_page([report], [listed, potassium("old", 4.0, "2025-01-05T10:00:00Z"),
                                   potassium("new", 4.4, "2026-02-05T10:00:00Z"),
                                   potassium("new2", 4.5, "2026-02-05T11:00:00Z")])
    assert [p.reference for p in page.panels] == ["DiagnosticReport/r"]
    assert [(g.date_text, len(g.rows)) for g in page.groups] == [("Thursday 5 February 2026", 2),
                                                                 ("Sunday 5 January 2025", 1)]


def test_series_oldest_first_one_unit_with_range() -> None:
    observations = [potassium("k2", 5.4, "2026-06-02T09:00:00Z", "H"), potassium("k1", 4.1, "2026-03-02T09:00:00Z"),
                    potassium("k0", 4100, "2025-12-01T09:00:00Z", unit="umol/L"),
                    {**potassium("kx", 1.0, "2026-04-01"), "status": "entered-in-error"},
                    {"resourceType": "Observation", "code": {"text": "Only once"}, "valueQuantity": {"value": 1}}]
    (series,) = trends(observations)
    assert [p.value for p in series.points] == [4.1, 5.4]
    assert [p.reference for p in series.points] == ["Observation/k1", "Observation/k2"]
    assert (series.name, series.unit, series.range_low, series.range_high, series.skipped) == \
        ("Potassium", "mmol/L", 3.5, 5.1, 1)


def test_demo_results_read_well(records: dict) -> None:
    patient_id = next(pid for pid, res in records.items() if len(of_type(res, "DiagnosticReport")) >= 3)
    resources = records[patient_id]
    page = results_page(of_type(resources, "DiagnosticReport"), of_type(resources, "Observation"))
    assert page.panels and page.groups
    for panel in page.panels:
        assert_readable(panel.name)
        assert panel.rows or panel.report_text
        for row in panel.rows:
            assert_readable(row.name), assert_readable(row.value_text), assert_readable(row.range_text)
            assert row.flag is not None and row.value is not None
    vitals = [g for g in page.groups if g.category == "Vital Signs"]
    assert vitals and any(r.value_text.endswith("mmHg") and "/" in r.value_text for g in vitals for r in g.rows)
    names = {s.name for s in trends(of_type(resources, "Observation"))}
    assert {"Systolic blood pressure", "Body weight"} <= names


def test_every_demo_flag_matches_the_lab(records: dict) -> None:
    words = {"H": "High", "L": "Low", "N": "Normal"}
    for obs in all_of_type(records, "Observation"):
        for interp in obs.get("interpretation", []):
            assert result_row(obs).flag.words == words[interp["coding"][0]["code"]]  # type: ignore[union-attr]
