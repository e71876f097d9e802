"""The portal's record pages, rendered from the demo data: what a patient reads on home, health record and
test results, with every piece of wording from mappers (plain names, charts, explanations, items due)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mappers.explanations import load_explanations
from mappers.notebook import CATEGORY_SEARCH
from mappers.results import trends
from portal.pages.dashboard import show_dashboard
from portal.pages.record import show_record
from portal.pages.results import show_results
from tests.unit.mappers.conftest import TODAY, of_type

from .pages_harness import demo_visit

NOON = datetime(TODAY.year, TODAY.month, TODAY.day)


def text_of(html: str) -> str:
    body = re.sub(r"(?s)<(script|style|head|svg)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'").replace("&amp;", "&").strip()


async def render(page: Any, tmp_path: Path, resources: list[dict[str, Any]], pid: str, **kw: Any) -> str:
    response = await page(demo_visit(tmp_path, resources, pid, NOON, **kw))
    assert response.status_code == 200
    return response.body.decode()


async def test_results_chart_every_repeated_number_beside_its_table(tmp_path: Path, records: dict) -> None:
    pid = "pt-0004"
    html = await render(show_results, tmp_path, records[pid], pid)
    series = trends(of_type(records[pid], "Observation"))
    assert len(series) >= 5
    charts = re.findall(r'<svg [^>]*class="trend-chart"', html)
    assert len(charts) == len(series)
    for s in series:
        block = html.split(f'id="about-{s.loinc}"', 1)[1].split("</details>\n", 1)[0]
        assert 'role="img"' in block and "<table" in block, s.name  # the chart and the same values as a table
    # The chart's one-sentence summary is there in words too.
    assert re.search(r"Your [a-zA-Z ]+ (went from|stayed at) ", text_of(html))


async def test_results_use_plain_names_and_explain_each_test_without_advice(tmp_path: Path, records: dict) -> None:
    pid = "pt-0004"
    html = await render(show_results, tmp_path, records[pid], pid)
    text = text_of(html)
    assert "Comprehensive metabolic 2000 panel" not in text and "Serum or Plasma" not in text
    assert "Blood chemistry tests (comprehensive metabolic panel)" in text
    table = load_explanations()
    potassium = table["2823-3"]
    # Explanations are folded away in a disclosure, each with its source.
    explain = re.findall(r'(?s)<details class="explain"[^>]*>.*?</details>', html)
    assert explain and all("<summary>" in d for d in explain)
    assert any(potassium.measures in d and potassium.source_url in d for d in explain)
    for heading in ("What this test measures", "What a high value can mean", "What a low value can mean",
                    "What to ask your care team"):
        assert heading in text
    assert "not advice about your own results" in text
    assert not re.search(r"\byou should\b", text, re.I)
    # Every "What is this?" link leads to an explanation on the page.
    for code in set(re.findall(r'href="#about-([0-9-]+)"', html)):
        assert f'id="about-{code}"' in html


async def test_results_part_down_says_so_and_shows_the_rest(tmp_path: Path, records: dict) -> None:
    pid = "pt-0004"
    html = await render(show_results, tmp_path, records[pid], pid, down=["Observation"])
    text = text_of(html)
    assert "Some of your results can't be shown right now" in text
    assert "Lab results" in text


async def test_record_in_words_medicines_allergies_vaccines_and_procedures(tmp_path: Path, records: dict) -> None:
    pid = "pt-0004"
    html = await render(show_record, tmp_path, records[pid], pid)
    text = text_of(html)
    assert re.search(r"Prescribed by Dr\. [A-Z]", text)
    assert re.search(r"\d+ refills?|No refills", text)
    assert "Reaction:" in text or "no known allergies" in text
    assert re.search(r"Given \w+day \d+ \w+ \d{4}", text)
    assert "Procedures" not in text  # none in the demo data: no empty section
    procedure = {"resourceType": "Procedure", "id": "proc-1", "status": "completed",
                 "subject": {"reference": f"Patient/{pid}"}, "code": {"text": "Colonoscopy"},
                 "performedDateTime": "2024-05-02", "performer": [{"actor": {"display": "Dr. Ana Ruiz"}}]}
    text = text_of(await render(show_record, tmp_path, [*records[pid], procedure], pid))
    assert "Procedures" in text and "Colonoscopy" in text and "Thursday 2 May 2024, by Dr. Ana Ruiz" in text


async def test_home_lists_items_due_and_medicines_needing_a_refill(tmp_path: Path, records: dict) -> None:
    pid = "pt-0005"  # 86 years old: vaccines and screenings apply
    medicine = {"resourceType": "MedicationRequest", "id": "rx-due", "status": "active", "intent": "order",
                "subject": {"reference": f"Patient/{pid}"}, "medicationCodeableConcept": {"text": "Lisinopril 10 mg"},
                "authoredOn": "2026-01-20", "dispenseRequest": {"numberOfRepeatsAllowed": 0,
                                                               "expectedSupplyDuration": {"value": 30}}}
    visit = demo_visit(tmp_path, [*records[pid], medicine], pid, NOON)
    html = (await show_dashboard(visit)).body.decode()
    text = text_of(html)
    assert "Vaccines and check-ups due" in text
    due = html.split('id="due"', 1)[1]
    assert due.count("<li>") >= 1 and "Source:" in text_of(due)
    assert "Lisinopril 10 mg" in text and "Refill due" in text
    assert text.index("Lisinopril 10 mg") < text.index("See your medicines and ask for refills")
    # Only the tests the rules count are fetched for "due", not every result (and the health notebook's own
    # entries by their category).
    narrowed = [p for t, p in visit.fhir.calls if t == "Observation"]
    assert narrowed and all(any(name in ("code", "category") for name, _ in params) for params in narrowed)
    assert sum(1 for params in narrowed if ("category", CATEGORY_SEARCH) in params) == 1


@pytest.mark.parametrize("page", [show_dashboard, show_record, show_results])
async def test_no_codes_or_raw_fhir_where_a_patient_reads(tmp_path: Path, records: dict, page: Any) -> None:
    for pid in ("pt-0001", "pt-0010", "pt-0012"):
        text = text_of(await render(page, tmp_path, records[pid], pid))
        assert "http://" not in text and "resourceType" not in text and "None" not in text.split(), (pid, page)
