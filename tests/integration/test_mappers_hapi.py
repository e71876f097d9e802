"""The patient-facing shaping read against what the real HAPI server returns for demo patients (read-only)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import httpx
import pytest

from mappers.allergies import allergy_list
from mappers.care_due import care_due
from mappers.conditions import problem_list
from mappers.explanations import load_explanations, plain_names
from mappers.immunizations import vaccine_list
from mappers.medications import medication_list
from mappers.references import index_by_reference
from mappers.results import results_page, trends
from mappers.visits import visit_list
from portal.charts import trend_chart

pytestmark = pytest.mark.integration

RAW = re.compile(r"https?://|\[[a-z_]+\]|\{[^}]*\}|\bNone\b")
TYPES = ("Observation", "DiagnosticReport", "MedicationRequest", "AllergyIntolerance", "Immunization", "Condition",
         "Encounter", "DocumentReference", "Procedure")


def fetch(base: str, patient_id: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        patient = client.get(f"Patient/{patient_id}").raise_for_status().json()
        found["Patient"] = [patient]
        for rtype in TYPES:
            url: str | None = f"{base}/{rtype}?patient={patient_id}&_count=500"
            found[rtype] = []
            while url:
                bundle = client.get(url).raise_for_status().json()
                found[rtype] += [e["resource"] for e in bundle.get("entry", [])]
                url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
        practice = client.get("Practitioner?_count=100").raise_for_status().json()
        found["Practitioner"] = [e["resource"] for e in practice.get("entry", [])]
    return found


def readable(text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip()) and not RAW.search(text)


@pytest.mark.parametrize("patient_id", ["pt-0001", "pt-0004", "pt-0006"])
def test_a_demo_patients_record_from_hapi_reads_well(ehr_base_url: str, patient_id: str) -> None:
    data = fetch(ehr_base_url, patient_id)
    lookup = index_by_reference([r for rs in data.values() for r in rs])
    names = plain_names(load_explanations())

    page = results_page(data["DiagnosticReport"], data["Observation"], names=names)
    assert page.panels, "the demo patients all have lab panels"
    for panel in page.panels:
        assert readable(panel.name) and (panel.rows or panel.report_text)
        for row in panel.rows:
            assert readable(row.name) and readable(row.value_text) and row.flag is not None
    for group in page.groups:
        assert all(readable(r.value_text) and r.value_text != "No result" for r in group.rows)

    for series in trends(data["Observation"], names):
        root = ET.fromstring(trend_chart(series, f"t-{series.loinc}").svg)  # noqa: S314 - our own output
        assert root.get("role") == "img"

    current, past = medication_list(data["MedicationRequest"], resources=lookup)
    assert current or past
    assert all(readable(m.name) and readable(m.dose_text) and readable(m.prescriber) for m in current + past)
    assert all(readable(a.substance) for a in allergy_list(data["AllergyIntolerance"]))
    assert all(readable(v.name) and readable(v.date_text) for v in vaccine_list(data["Immunization"]))
    now, before = problem_list(data["Condition"])
    assert all(readable(p.name) for p in now + before)
    visits = visit_list(data["Encounter"], data["DocumentReference"], lookup)
    assert visits and all(v.notes and all(n.text for n in v.notes) for v in visits)
    for item in care_due(data["Patient"][0], [r for rs in data.values() for r in rs], date.today()):
        assert readable(item.title) and item.source_url.startswith("https://")
