"""The plain-language table: complete, sourced, readable, never advice, and covering every test the demo uses."""

from __future__ import annotations

import re

import pytest
import textstat

from fixtures.catalog import IMAGING, LABS, PANELS, VITALS
from mappers.explanations import ExplanationError, explanation_in, load_explanations, plain_names
from mappers.results import result_row
from tests.plain_language import MAX_GRADE, grade_units  # each entry on its own is held to the pages' bar

from .conftest import all_of_type

ADVICE = re.compile(r"\b(you should|you must|do not|don't|stop taking|start taking|never take|always take)\b", re.I)

ENTRY = '''
[tests."2823-3"]
name = "Potassium"
kind = "measurement"
measures = "A mineral."
high = "Can mean a kidney problem."
low = "Can mean loose stools."
ask = "Do I need this test again?"
source_title = "Potassium Blood Test"
source_url = "https://medlineplus.gov/lab-tests/potassium-blood-test/"
'''


def test_shipped_table_loads() -> None:
    table = load_explanations()
    assert len(table) >= 30
    potassium = table["2823-3"]
    assert potassium.name == "Potassium (a blood mineral)" and potassium.kind == "measurement"
    assert potassium.high and potassium.low and potassium.source_url.startswith("https://medlineplus.gov/")
    assert table["58410-2"].kind == "panel" and table["58410-2"].high is None


@pytest.mark.parametrize(("change", "message"), [
    (('source_url = "https://medlineplus.gov/lab-tests/potassium-blood-test/"\n', ""), "`source_url` is missing"),
    (('source_url = "https://medlineplus.gov/lab-tests/potassium-blood-test/"', 'source_url = "medlineplus"'),
     "https address"),
    (('low = "Can mean loose stools."\n', ""), "`low` is missing"),
    (('ask = "Do I need this test again?"', 'ask = "  "'), "`ask` is missing or empty"),
    (('kind = "measurement"', 'kind = "guess"'), "`kind` must be one of"),
    (('[tests."2823-3"]', '[tests."potassium"]'), "not a LOINC code"),
    (('name = "Potassium"', 'name = "Potassium"\ncolour = "red"'), "unknown field(s) colour"),
    (('[tests."2823-3"]', "[tests"), "not valid TOML"),
])
def test_loader_names_what_is_wrong(change: tuple[str, str], message: str) -> None:
    assert load_explanations(ENTRY)["2823-3"].name == "Potassium"
    with pytest.raises(ExplanationError, match=re.escape(message)):
        load_explanations(ENTRY.replace(*change))
    with pytest.raises(ExplanationError, match="no"):
        load_explanations("")


def fixture_loinc_codes(records: dict) -> set[str]:
    """Every LOINC code on a demo test: the code tables the fixtures draw from, and what they generated."""
    codes = {v.code for v in VITALS.values()} | {lab.code for lab in LABS.values()}
    codes |= {p.code for p in PANELS.values()} | {i.code for i in IMAGING.values()}
    for resource_type in ("Observation", "DiagnosticReport"):
        for resource in all_of_type(records, resource_type):
            for part in [resource, *resource.get("component", [])]:
                codes |= {c["code"] for c in part["code"].get("coding", []) if c.get("system") == "http://loinc.org"}
    return codes


def test_every_loinc_code_the_fixtures_use_is_explained(records: dict) -> None:
    codes = fixture_loinc_codes(records)
    assert len(codes) >= 30
    missing = sorted(codes - set(load_explanations()))
    assert not missing, f"no explanation for LOINC {missing}"


def test_explanations_are_easy_to_read_and_never_advice() -> None:
    grades = []
    for item in load_explanations().values():
        text = " ".join(item.texts)
        grades.append((textstat.flesch_kincaid_grade(text), item.loinc, item.name))
        assert not ADVICE.search(text), f"{item.loinc} reads as advice: {ADVICE.search(text)}"
        assert item.ask.rstrip().endswith("?"), f"{item.loinc}: `ask` should be questions for the care team"
        if item.high:
            assert re.search(r"\b(can|may|often|is)\b", item.high), item.loinc
    grades.sort(reverse=True)
    print("\nHardest explanations to read (Flesch-Kincaid grade):")
    for grade, code, name in grades[:5]:
        print(f"  {grade:4.1f}  {code:8}  {name}")
    too_hard = [(g, c) for g, c, _ in grades if g > MAX_GRADE]
    assert not too_hard, f"above grade {MAX_GRADE}: {too_hard}"


def test_plain_names_replace_the_labs_wording(records: dict) -> None:
    names = plain_names(load_explanations())
    bp = next(o for o in all_of_type(records, "Observation") if o["code"]["coding"][0]["code"] == "85354-9")
    row = result_row(bp, names=names)
    assert row.name == "Blood pressure"
    assert [c.name for c in row.components] == ["Top blood pressure number (systolic)",
                                                "Bottom blood pressure number (diastolic)"]


ADVICE_ES = re.compile(r"\b(usted debe|tiene que|no tome|deje de tomar|empiece a tomar|nunca tome|siempre tome)\b",
                       re.I)


def test_every_explanation_reads_in_plain_spanish_and_never_as_advice() -> None:
    """The table in Spanish (from the catalogue): every entry translated, each read on its own at the pages' bar
    by Crawford's formula for Spanish."""
    grades = []
    for item in load_explanations().values():
        spanish = explanation_in(item, "es")
        assert spanish.name != item.name and all(es != en for es, en in zip(spanish.texts, item.texts, strict=True)), \
            f"{item.loinc} is not translated"
        assert not ADVICE_ES.search(" ".join(spanish.texts[:-1])), f"{item.loinc} reads as advice in Spanish"
        assert spanish.ask.rstrip().endswith("?") and spanish.ask.lstrip().startswith("¿"), item.loinc
        grades.append((grade_units(item.loinc, [spanish.name, *spanish.texts], lang="es"), item.loinc))
    grades.sort(key=lambda pair: pair[0].grade, reverse=True)
    print("\nHardest explanations to read in Spanish (Crawford):")
    for grade, code in grades[:5]:
        print(f"  {grade.grade:4.1f}  {code:8}  {grade.units[0]}")
    too_hard = [(g.grade, c) for g, c in grades if g.grade > MAX_GRADE]
    assert not too_hard, f"above grade {MAX_GRADE}: {too_hard}"
