"""Codes, units and result flags in words and symbols, never as raw codes or URLs."""

from __future__ import annotations

import pytest

from mappers.concepts import LOINC, concept_text, concept_texts, has_code, loinc_code
from mappers.flags import interpretation_flag, observation_flag, range_flag
from mappers.quantities import number_text, quantity_text, unit_text
from mappers.ranges import observation_range, range_words

SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def test_concept_text_prefers_text_then_display_never_code() -> None:
    assert concept_text({"text": "Potassium", "coding": [{"display": "K"}]}) == "Potassium"
    assert concept_text({"coding": [{"system": LOINC, "code": "2823-3"},
                                    {"system": LOINC, "code": "2823-3", "display": "Potassium"}]}) == "Potassium"
    assert concept_text({"coding": [{"display": "A"}, {"display": "B", "userSelected": True}]}) == "B"
    assert concept_text({"coding": [{"system": "http://loinc.org", "code": "2823-3"}]}) is None
    assert concept_text({"coding": [{"code": "x"}]}, "a test") == "a test"
    assert concept_text({"system": LOINC, "code": "1", "display": "A coding"}) == "A coding"
    assert concept_text([None, {"text": " "}, {"text": "Second"}]) == "Second"
    assert concept_text("nonsense") is None
    assert concept_texts([{"text": "A"}, {"text": "A"}, {"text": "B"}, 4]) == ["A", "B"]
    assert loinc_code({"coding": [{"system": LOINC, "code": "2823-3"}]}) == "2823-3"
    assert has_code([{"coding": [{"system": LOINC, "code": "1"}]}], LOINC, "1", "2")


@pytest.mark.parametrize(("quantity", "words"), [
    ({"value": 5.4, "unit": "mmol/L", "code": "mmol/L"}, "5.4 mmol/L"),
    ({"value": 36.8, "unit": "Cel", "code": "Cel"}, "36.8 °C"),
    ({"value": 64, "code": "[in_i]"}, "64 in"),
    ({"value": 115, "unit": "mmHg", "code": "mm[Hg]"}, "115 mmHg"),
    ({"value": 5.6, "unit": "%", "code": "%"}, "5.6%"),
    ({"value": 4.0, "unit": "%"}, "4.0%"),
    ({"value": 250, "unit": "10*3/uL", "code": "10*3/uL"}, "250 thousand per µL"),
    ({"value": 72, "unit": "beats/minute", "code": "/min"}, "72 per minute"),
    ({"value": 2.1, "unit": "mIU/L", "code": "m[IU]/L"}, "2.1 mIU/L"),
    ({"value": 1250, "unit": "mg"}, "1,250 mg"),
    ({"value": 5, "comparator": "<", "unit": "mg/dL"}, "less than 5 mg/dL"),
    ({"value": 3, "code": "{score}"}, "3"),
    ({"value": 0.59, "unit": "mg/dL"}, "0.59 mg/dL"),
    ({"unit": "mg"}, None),
    ({"value": "5"}, None),
    ({"value": True}, None),
    ({"value": float("nan")}, None),
    (None, None),
])
def test_quantity_text(quantity: object, words: str | None) -> None:
    assert quantity_text(quantity) == words


def test_units_stay_when_people_write_them() -> None:
    assert unit_text("mmol/L") == "mmol/L"
    assert unit_text("mg/dL", "mg/dL") == "mg/dL"
    assert unit_text(None, "breaths/minute") == "breaths per minute"
    assert unit_text("[lb_av]") == "lb"
    assert unit_text(None, None) is None
    assert number_text(0.1 + 0.2) == "0.3"


RANGE = [{"low": {"value": 3.5, "unit": "mmol/L", "code": "mmol/L"},
          "high": {"value": 5.1, "unit": "mmol/L", "code": "mmol/L"}}]


def test_range_words() -> None:
    assert range_words(RANGE[0]) == "3.5 to 5.1 mmol/L"
    assert range_words({"high": {"value": 199, "unit": "mg/dL"}, "text": "<200 mg/dL"}) == "less than 200 mg/dL"
    assert range_words({"low": {"value": 60, "code": "mL/min/{1.73_m2}"}, "text": ">=60 mL/min/1.73m2"}) == \
        "60 mL/min/1.73 m² or higher"
    assert range_words({"high": {"value": 29, "unit": "mg/g"}}) == "29 mg/g or lower"
    assert range_words({"low": {"value": 40}}, "mg/dL") == "40 mg/dL or higher"
    assert range_words({"text": "Negative"}) == "Negative"
    assert range_words({}) is None and range_words("x") is None
    found = observation_range({"valueQuantity": {"value": 5.4, "unit": "mmol/L"},
                               "referenceRange": [{"appliesTo": [{"text": "Women"}], "low": {"value": 1}},
                                                  *RANGE]})
    assert found is not None and (found.low, found.high, found.words) == (3.5, 5.1, "3.5 to 5.1 mmol/L")


def _concept(*codes: str, text: str | None = None) -> dict:
    concept: dict = {"coding": [{"system": SYSTEM, "code": c} for c in codes]}
    if text:
        concept["text"] = text
    return concept


@pytest.mark.parametrize(("interpretation", "key", "words", "symbol"), [
    ([_concept("H")], "high", "High", "↑"),
    ([_concept("L")], "low", "Low", "↓"),
    ([_concept("N")], "normal", "Normal", "✓"),
    ([_concept("HH")], "critical-high", "Very high", "⇈"),
    ([_concept("LL")], "critical-low", "Very low", "⇊"),
    ([_concept("A")], "abnormal", "Outside the usual range", "!"),
    ([_concept("N"), _concept("HH")], "critical-high", "Very high", "⇈"),
    ([{"text": "High"}], "high", "High", "↑"),
])
def test_interpretation_flags_have_words_and_symbols(interpretation: list, key: str, words: str,
                                                      symbol: str) -> None:
    flag = interpretation_flag(interpretation)
    assert flag is not None
    assert (flag.key, flag.words, flag.symbol, flag.css_class) == (key, words, symbol, f"flag-{key}")


def test_unknown_interpretation_gives_none() -> None:
    assert interpretation_flag([_concept("ZZZ")]) is None
    assert interpretation_flag(None) is None
    assert interpretation_flag([{"text": "see note"}]) is None


def test_flag_from_range_when_the_lab_gave_none() -> None:
    value = {"value": 5.4, "unit": "mmol/L", "code": "mmol/L"}
    assert observation_flag({"valueQuantity": value, "referenceRange": RANGE}).key == "high"  # type: ignore[union-attr]
    assert range_flag({"value": 3.2, "code": "mmol/L"}, RANGE).key == "low"  # type: ignore[union-attr]
    assert range_flag({"value": 4.0, "code": "mmol/L"}, RANGE).key == "normal"  # type: ignore[union-attr]
    assert range_flag({"value": 9, "code": "mg/dL"}, RANGE) is None  # another unit: no guess
    assert range_flag({"value": 3, "comparator": "<", "code": "mmol/L"}, RANGE) is None
    assert range_flag({"value": 3}, []) is None
    lab_says_normal = {"valueQuantity": value, "referenceRange": RANGE, "interpretation": [_concept("N")]}
    assert observation_flag(lab_says_normal).key == "normal"  # type: ignore[union-attr]
    assert observation_flag(None) is None
