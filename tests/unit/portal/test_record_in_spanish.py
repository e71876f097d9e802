"""The health record side in Spanish, as a Spanish-speaking patient reads it: the record page, the download
pages and Home's medicines, with the record's words (doses, statuses, dates) in Spanish too, no English of
ours left, and plain Spanish (Crawford's grade) on each page."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from mappers.explanations import explanations_for, load_explanations
from mappers.medications import dosage_text, medication
from mappers.quantities import quantity_text
from mappers.ranges import range_words
from mappers.results import result_row
from portal.pages.dashboard import show_dashboard
from portal.pages.downloads import pdf_progress, show_downloads
from portal.pages.record import show_record
from portal.pages.results import show_results
from tests.plain_language import MAX_GRADE, grade_page
from tests.unit.mappers.conftest import TODAY

from .pages_harness import demo_visit
from .test_language_pages import SPANISH_DATE, _main
from .test_pages import text_of

NOON = datetime(TODAY.year, TODAY.month, TODAY.day)
PID = "pt-0005"  # a full record: visits with notes, problems, medicines, allergies and vaccines
# Our own English words that must not be left on a Spanish page of this slice.
ENGLISH_OF_OURS = ("Health record", "Health problems", "Prescribed by", "Reason for the visit", "Written by",
                   "Given", "refills?", "Refill", "No known", "on record", "times a day", "once a day",
                   "twice a day", "tablets?", "Status not known", "Vaccinations", "Download", "Making your")


def _no_english_of_ours(text: str) -> None:
    text = re.sub(r"“[^”]*”", " ", text)  # the prescriber's own instructions are the record's, as written
    for words in ENGLISH_OF_OURS:
        found = re.search(rf"\b{words}\b", text)
        assert not found, text[max(found.start() - 80, 0):found.end() + 40]


def _grade(name: str, html: str) -> None:
    grade = grade_page(name, re.sub(r'<span lang="en">.*?</span>', " ", html), lang="es")
    assert grade.grade <= MAX_GRADE, grade.hardest()


async def test_the_health_record_in_spanish(tmp_path: Path, records: dict) -> None:
    html = (await show_record(demo_visit(tmp_path, records[PID], PID, NOON, lang="es"))).body.decode()
    main = _main(html)
    text = text_of(re.sub(r'(?s)<div class="report-text">.*?</div>', " ", main))  # the clinic's notes, as written
    assert "<title>Historial médico \u2013 Portal del paciente</title>" in html
    assert 'lang="en"' not in html.split("<main", 1)[1].split(">", 1)[0] and "solo está en inglés" not in text
    for words in ("Historial médico", "Consultas", "Problemas de salud", "Medicamentos", "Alergias", "Vacunas",
                  "Recetado por Dr", "Aplicada:"):
        assert words in text, words
    assert re.search(r"(Le quedan? \d+ resurtidos?|Sin resurtidos|No le quedan resurtidos|\d+ resurtidos?)", text)
    assert "<h3>Actuales</h3>" in main  # the medicines taken now: plural, unlike a health problem's "Actual"
    assert SPANISH_DATE.search(main)
    _no_english_of_ours(text)
    _grade("record (es)", html)


async def test_test_results_in_spanish_with_charts_and_explanations(tmp_path: Path, records: dict) -> None:
    html = (await show_results(demo_visit(tmp_path, records[PID], PID, NOON, lang="es"))).body.decode()
    main = _main(html)
    text = text_of(re.sub(r'(?s)<div class="report-text">.*?</div>', " ", main))
    assert "<title>Resultados \u2013 Portal del paciente</title>" in html and "solo está en inglés" not in text
    for words in ("Análisis de laboratorio", "Cambios con el tiempo", "Rango normal", "Qué significa",
                  "Qué mide este análisis", "Qué preguntar a su equipo médico", "Presión arterial"):
        assert words in text, words
    # A chart's summary and its table speak Spanish, dates and numbers too.
    assert re.search(r"Su [^.]+ (pasó de|se mantuvo en|fue) [\d.,/]+", text)
    assert re.search(r"\d+ resultados, el último: [\d.,/]+", text)
    assert SPANISH_DATE.search(main) and ">Fecha del análisis</text>" in main
    assert re.search(r'class="flag flag-[\w-]+"><span aria-hidden="true">.</span> (Normal|Alto|Bajo|Muy alto)<',
                     main)
    for english in ("Lab results", "What it means", "Normal range", "Your result", "over time", "Usual range",
                    "results, latest", "What this test measures", "The latest result"):
        found = re.search(rf"\b{english}\b", text)
        assert not found, text[max(found.start() - 100, 0):found.end() + 60]
    # The sources are English pages: their titles are marked so.
    assert re.search(r'rel="noopener noreferrer"><span lang="en">[^<]+</span></a>', main)
    _grade("results (es)", html)


async def test_the_download_pages_in_spanish(tmp_path: Path, records: dict) -> None:
    html = (await show_downloads(demo_visit(tmp_path, records[PID], PID, NOON, lang="es"))).body.decode()
    text = text_of(_main(html))
    assert "<title>Descargar su historial \u2013 Portal del paciente</title>" in html
    assert "Un resumen de salud para imprimir" in text and "Descargar todo su historial" in text
    assert 'data-progress="Estamos haciendo su PDF.' in html
    _no_english_of_ours(text)
    _grade("download (es)", html)
    html = (await pdf_progress(demo_visit(tmp_path, records[PID], PID, NOON, lang="es"))).body.decode()
    assert "El archivo se descargará solo." in text_of(_main(html))
    assert '<progress aria-label="Estamos haciendo su PDF">' in html


async def test_home_shows_doses_and_refills_in_spanish(tmp_path: Path, records: dict) -> None:
    html = (await show_dashboard(demo_visit(tmp_path, records[PID], PID, NOON, lang="es"))).body.decode()
    card = _main(html).split('id="medicines"', 1)[1].split("</li>\n", 1)[0]
    assert re.search(r"(vez|veces) (al día|a la semana)|cada ", card), card
    assert not re.search(r"\b(times|once|twice|tablets?|refills?)\b", card), card


def test_a_dose_in_spanish_in_the_clinics_region() -> None:
    dosage = {"doseAndRate": [{"doseQuantity": {"value": 1.5, "unit": "tablet"}}],
              "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["HS"]}},
              "asNeededBoolean": True}
    assert dosage_text(dosage) == "1.5 tablets twice a day at bedtime when needed"
    assert dosage_text(dosage, "es_US") == "1.5 tabletas dos veces al día al acostarse cuando lo necesite"
    assert dosage_text(dosage, "es_ES") == "1,5 tabletas dos veces al día al acostarse cuando lo necesite"
    every = {"timing": {"repeat": {"period": 4, "periodMax": 6, "periodUnit": "h", "timeOfDay": ["08:00", "20:00"],
                                   "boundsDuration": {"value": 10, "code": "d"}}}}
    assert dosage_text(every) == "every 4 to 6 hours at 08:00 and 20:00 for 10 days"
    assert dosage_text(every, "es") == "cada 4 a 6 horas a las 08:00 y 20:00 por 10 días"
    rx = medication({"resourceType": "MedicationRequest", "id": "m", "status": "stopped",
                     "authoredOn": "2026-03-03", "dispenseRequest": {"numberOfRepeatsAllowed": 2},
                     "dosageInstruction": [{"timing": {"code": {"coding": [{"code": "BID"}]}}},
                                           {"sequence": 2, "timing": {"code": {"coding": [{"code": "QD"}]}}}]},
                    locale="es_US")
    assert rx.name == "Un medicamento" and rx.status_text == "Se suspendió"
    assert rx.dose_text == "dos veces al día; luego una vez al día" and rx.written_text == "martes, 3 de marzo de 2026"


def test_ranges_quantities_and_flags_in_spanish() -> None:
    span = {"low": {"value": 3.5, "code": "mmol/L"}, "high": {"value": 5.1, "code": "mmol/L"}}
    assert range_words(span) == "3.5 to 5.1 mmol/L"
    assert range_words(span, locale="es_ES") == "3,5 a 5,1 mmol/L"
    assert range_words({"text": "<1,000.5"}, "mg/dL", "es_ES") == "menos de 1.000,5 mg/dL"
    assert range_words({"high": {"value": 200}}, "mg/dL", "es") == "200 mg/dL o menos"
    assert quantity_text({"value": 72, "code": "/min", "comparator": ">="}, "es_US") == "por lo menos 72 por minuto"
    row = result_row({"resourceType": "Observation", "status": "preliminary", "code": {"text": "Potassium"},
                      "valueQuantity": {"value": 5.4, "code": "mmol/L"}, "effectiveDateTime": "2026-03-03",
                      "interpretation": [{"coding": [{"code": "H"}]}]}, locale="es_US")
    assert (row.flag and row.flag.words, row.status_text, row.date_text) == (
        "Alto", "Resultado preliminar", "martes, 3 de marzo de 2026")
    assert explanations_for(["2823-3"], load_explanations(), "es")[0].name == "Potasio (un mineral de la sangre)"
