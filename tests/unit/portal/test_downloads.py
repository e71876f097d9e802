"""Download my record: the printable health summary (page and PDF), and the patient summary document with
its plain 'not offered here' when the record system has no $summary."""

from __future__ import annotations

import json
import re
import zlib
from datetime import datetime
from pathlib import Path

import pytest

import portal.summary_pdf as summary_pdf_module
from mappers.explanations import load_explanations, plain_names
from mappers.summary import health_summary
from portal.fhir import RecordUnavailable
from portal.pages.downloads import patient_summary_document, pdf_progress, printable_summary, summary_as_pdf
from portal.summary_pdf import summary_pdf
from tests.unit.mappers.conftest import TODAY

from .pages_harness import demo_visit
from .test_pages import text_of

NOON = datetime(TODAY.year, TODAY.month, TODAY.day)
PID = "pt-0010"


def _patient(records: dict) -> dict:
    return next(r for r in records[PID] if r["resourceType"] == "Patient")


def _name(records: dict) -> str:
    name = _patient(records)["name"][0]
    return " ".join([*name.get("given", []), name["family"]])


async def test_printable_summary_page_in_words_with_a_print_stylesheet(tmp_path: Path, records: dict) -> None:
    response = await printable_summary(demo_visit(tmp_path, records[PID], PID, NOON))
    html = response.body.decode()
    text = text_of(html)
    assert response.status_code == 200
    for part in ("Health summary", _name(records), "Health problems", "Medicines", "Allergies", "Vaccinations",
                 "Latest test results", "Recent visits", "Metformin 500 mg", "A1C (average blood sugar)"):
        assert part in text, part
    assert "style=" not in html and "<style" not in html  # the print look is the stylesheet's @media print
    assert "portal/print.js" in html and "Ctrl+P" in text  # a button with script, words without


async def test_the_pdf_is_made_on_the_server_and_named_for_download(tmp_path: Path, records: dict) -> None:
    response = await summary_as_pdf(demo_visit(tmp_path, records[PID], PID, NOON))
    assert response.status_code == 200 and response.media_type == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="health-summary.pdf"'
    assert response.headers["cache-control"] == "no-store"
    body = b"".join([chunk async for chunk in response.body_iterator])
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert int(response.headers["content-length"]) == len(body)
    assert len(re.findall(rb"/Type /Page\b", body)) >= 2


def test_pdf_text_reads_like_the_page(records: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    # With the built-in font the text is stored as written, so it can be read back from the PDF.
    monkeypatch.setattr(summary_pdf_module, "FONT_DIRS", ())
    summary = health_summary(_patient(records), records[PID], TODAY, None, plain_names(load_explanations()))
    data = summary_pdf(summary)
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
    text = b"".join(zlib.decompress(s) for s in streams if s[:1] == b"x").decode("latin-1")
    for part in ("Health summary", _name(records), "Metformin 500 mg", "Latest test results",
                 r"A1C \(average blood sugar\)", "Recent visits"):  # parentheses are escaped in PDF text
        assert f"({part}" in text or part in text, part


async def test_the_pdf_link_shows_progress_without_script(tmp_path: Path, records: dict) -> None:
    html = (await pdf_progress(demo_visit(tmp_path, records[PID], PID, NOON))).body.decode()
    assert '<meta http-equiv="refresh" content="1;url=/portal/download/summary.pdf">' in html
    assert "<progress" in html and 'href="/portal/download/summary.pdf"' in html


async def test_a_summary_with_a_part_missing_is_not_printed(tmp_path: Path, records: dict) -> None:
    response = await printable_summary(demo_visit(tmp_path, records[PID], PID, NOON, down=["MedicationRequest"]))
    assert response.status_code == 503
    assert "not answering right now" in text_of(response.body.decode())


async def test_patient_summary_not_offered_says_so(tmp_path: Path, records: dict) -> None:
    response = await patient_summary_document(demo_visit(tmp_path, records[PID], PID, NOON))
    assert response.status_code == 200
    assert "does not make patient summaries yet" in text_of(response.body.decode())
    down = await patient_summary_document(demo_visit(tmp_path, records[PID], PID, NOON,
                                                     summary=RecordUnavailable("summary")))
    assert down.status_code == 503


async def test_patient_summary_document_downloads_as_fhir_json(tmp_path: Path, records: dict) -> None:
    document = {"resourceType": "Bundle", "type": "document",
                "entry": [{"resource": {"resourceType": "Composition", "title": "Patient Summary"}}]}
    response = await patient_summary_document(demo_visit(tmp_path, records[PID], PID, NOON, summary=document))
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["content-disposition"] == 'attachment; filename="patient-summary.json"'
    assert json.loads(response.body)["type"] == "document"
    # Anything that is not a document is not offered as one.
    odd = await patient_summary_document(demo_visit(tmp_path, records[PID], PID, NOON,
                                                    summary={"resourceType": "OperationOutcome"}))
    assert "does not make patient summaries yet" in text_of(odd.body.decode())


async def test_the_summary_in_spanish_on_the_page_and_in_the_pdf(tmp_path: Path, records: dict,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    html = (await printable_summary(demo_visit(tmp_path, records[PID], PID, NOON, lang="es"))).body.decode()
    text = text_of(html.split("<main", 1)[1])
    assert "<title>Resumen de salud \u2013 Portal del paciente</title>" in html
    for part in ("Resumen de salud", "Problemas de salud", "Últimos resultados", "Consultas recientes",
                 "A1C (promedio del azúcar en la sangre)", "Imprimir este resumen", "nació el"):
        assert part in text, part
    assert re.search(r"Hecho el \w+, \d{1,2} de \w+ de \d{4} con el historial", text)
    assert re.search(r"\(\d+ años\)", text)  # the age, in Spanish
    for english in ("Health summary", "Latest test results", "Recent visits", "born", "Made on", "years old"):
        assert english not in text, english
    # The PDF says the same in Spanish (the built-in font reads back as written, accents left off).
    monkeypatch.setattr(summary_pdf_module, "FONT_DIRS", ())
    summary = health_summary(_patient(records), records[PID], TODAY, None, plain_names(load_explanations(), "es"),
                             "es_US")
    data = summary_pdf(summary, "Portal del paciente", "es_US")
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
    pdf_text = b"".join(zlib.decompress(s) for s in streams if s[:1] == b"x").decode("latin-1")
    for part in ("Resumen de salud", "Ultimos resultados", "Consultas recientes", "Medicamentos", "pagina 1 de"):
        assert part in pdf_text, part
    assert "Latest test results" not in pdf_text and "/Lang (es)" in data.decode("latin-1")
