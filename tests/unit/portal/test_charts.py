"""Trend charts: valid SVG with a spoken summary, the usual range as a band, every value labelled, all text
escaped, no inline styles (the CSP forbids them), and the same data as table rows."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

from mappers.explanations import load_explanations, plain_names
from mappers.results import numeric_series, trends
from portal.charts import trend_chart, trend_summary

SVG = "{http://www.w3.org/2000/svg}"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def potassium(oid: str, value: float, when: str, interp: str = "N", name: str = "Potassium",
              unit: str = "mmol/L") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}], "text": name},
            "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit, "code": unit},
            "interpretation": [{"coding": [{"system": INTERP, "code": interp}]}],
            "referenceRange": [{"low": {"value": 3.5, "unit": unit, "code": unit},
                                "high": {"value": 5.1, "unit": unit, "code": unit}}]}


SERIES = [potassium("a", 4.1, "2026-03-04T09:00:00Z"), potassium("b", 4.6, "2026-04-20T09:00:00Z"),
          potassium("c", 5.4, "2026-06-02T09:00:00Z", "H")]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well-formed


def test_summary_in_words() -> None:
    (series,) = trends(SERIES)
    assert trend_summary(series) == ("Your potassium went from 4.1 in March to 5.4 in June 2026 (3 results); "
                                     "the usual range is 3.5 to 5.1 mmol/L. The latest result is high.")
    (over_years,) = trends([potassium("a", 4.1, "2025-03-04"), potassium("b", 4.1, "2026-06-02")])
    assert trend_summary(over_years) == ("Your potassium stayed at 4.1 from March 2025 to June 2026 (2 results); "
                                         "the usual range is 3.5 to 5.1 mmol/L.")
    (ldl,) = trends([potassium("a", 120, "2026-03-04", name="LDL cholesterol", unit="mg/dL"),
                     potassium("b", 98, "2026-03-20", name="LDL cholesterol", unit="mg/dL")])
    assert trend_summary(ldl).startswith("Your LDL cholesterol went from 120 on 4 March to 98 on 20 March 2026")


def test_svg_is_accessible_xml_with_band_and_labelled_points() -> None:
    (series,) = trends(SERIES)
    chart = trend_chart(series, "trend-2823-3")
    root = parse(chart.svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 400 240"
    title_id, desc_id = root.get("aria-labelledby", "").split()
    assert root.find(f"{SVG}title").get("id") == title_id  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.get("id") == desc_id and desc.text == chart.summary
    band = root.find(f"{SVG}rect[@class='trend-band']")
    assert band is not None and float(band.get("height", "0")) > 0
    points = root.findall(f"{SVG}g")
    points = [g for g in points if "trend-point" in (g.get("class") or "")]
    assert [g.find(f"{SVG}text").text for g in points] == ["4.1", "4.6", "5.4 ↑"]  # type: ignore[union-attr]
    assert points[2].find(f"{SVG}title").text == "Tuesday 2 June 2026: 5.4 mmol/L, high"  # type: ignore[union-attr]
    assert "flag-high" in (points[2].get("class") or "")
    dates = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "trend-date"]
    assert dates == ["4 Mar", "20 Apr", "2 Jun"]
    assert [(r.date_text, r.value_text, r.flag_words) for r in chart.rows] == [
        ("Wednesday 4 March 2026", "4.1 mmol/L", "Normal"), ("Monday 20 April 2026", "4.6 mmol/L", "Normal"),
        ("Tuesday 2 June 2026", "5.4 mmol/L", "High")]


def test_band_lies_between_the_range_bounds() -> None:
    (series,) = trends(SERIES)
    root = parse(trend_chart(series, "k").svg)
    band = root.find(f"{SVG}rect[@class='trend-band']")
    circles = [c for c in root.iter(f"{SVG}circle")]
    top, bottom = float(band.get("y")), float(band.get("y")) + float(band.get("height"))  # type: ignore[union-attr, arg-type]
    # Normal values are drawn inside the band, the high one above it (smaller y).
    assert all(top <= float(c.get("cy")) <= bottom for c in circles)  # type: ignore[arg-type]
    diamond = next(r for r in root.iter(f"{SVG}rect") if r.get("transform"))
    assert float(diamond.get("y")) + 4.5 < top  # type: ignore[arg-type]


def test_every_piece_of_text_is_escaped_and_no_inline_style() -> None:
    evil = [potassium("a", 1, "2026-03-04", name='<script>alert("x")</script> & co', unit="<b>u</b>"),
            potassium("b", 2, "2026-03-05", name='<script>alert("x")</script> & co', unit="<b>u</b>")]
    (series,) = trends(evil)
    chart = trend_chart(series, 'x" onload="alert(1)')
    assert "<script" not in chart.svg and "<b>" not in chart.svg and "onload=" not in chart.svg
    assert "style=" not in chart.svg
    root = parse(chart.svg)
    assert '<script>alert("x")</script> & co over time' == root.find(f"{SVG}title").text  # type: ignore[union-attr]
    assert all(el.tag.startswith(SVG) for el in root.iter())
    assert {el.tag.removeprefix(SVG) for el in root.iter()} <= {"svg", "title", "desc", "rect", "text", "g", "line",
                                                                "polyline", "circle"}


def test_one_point_and_no_range_still_draw() -> None:
    lone = {**potassium("a", 4.1, "2026-03-04"), "referenceRange": []}
    (series,) = numeric_series([lone])
    chart = trend_chart(series, "lone")
    root = parse(chart.svg)
    assert root.find(f"{SVG}rect[@class='trend-band']") is None and root.find(f"{SVG}polyline") is None
    assert chart.summary == "Your potassium was 4.1 mmol/L on Wednesday 4 March 2026."


def test_every_demo_trend_draws(records: dict) -> None:
    names = plain_names(load_explanations())
    for resources in list(records.values())[:5]:
        for series in trends([r for r in resources if r["resourceType"] == "Observation"], names):
            chart = trend_chart(series, f"trend-{series.loinc}")
            root = parse(chart.svg)
            points = [g for g in root.iter(f"{SVG}g") if "trend-point" in (g.get("class") or "")]
            assert len(points) == len(series.points) == len(chart.rows) >= 2
            # Every point names its date and value; visible labels never crowd each other.
            assert all(g.find(f"{SVG}title") is not None for g in points)
            shown = [float(t.get("x")) for g in points if (t := g.find(f"{SVG}text")) is not None]  # type: ignore[arg-type]
            assert len(shown) >= 2 and all(b - a >= 34 for a, b in itertools.pairwise(shown))
            dates = [t for t in root.iter(f"{SVG}text") if t.get("class") == "trend-date"]
            assert len(dates) >= 2 and dates[0].get("text-anchor") == "start" and dates[-1].get("text-anchor") == "end"
            xs = [float(t.get("x")) for t in dates]  # type: ignore[arg-type]
            assert all(b - a >= 40 for a, b in itertools.pairwise(xs))
            assert "None" not in chart.svg and "nan" not in chart.svg


def test_a_value_back_where_it_started_is_not_said_to_have_stayed() -> None:
    (series,) = trends([potassium("a", 4.8, "2025-03-04"), potassium("b", 5.2, "2025-09-04"),
                        potassium("c", 4.8, "2026-06-02")])
    assert trend_summary(series) == ("Your potassium was 4.8 in March 2025 and 4.8 again in June 2026, between 4.8 "
                                     "and 5.2 in the meantime (3 results); the usual range is 3.5 to 5.1 mmol/L.")
    root = parse(trend_chart(series, "k").svg)
    first = next(c for c in root.iter(f"{SVG}circle"))
    assert float(first.get("cx")) > 48 + 10  # clear of the value axis and its labels  # type: ignore[arg-type]
