"""Test results: lab panels with flags in words and colour, the clinician's notes, imaging reports,
results outside any report, every numeric analyte with two or more values as a chart beside its table,
and a plain-language explanation of each test that has one (folded away, so the page stays short).

Names, values, flags and explanations are mappers'; charts are `portal/charts.py`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.explanations import Explanation, explanation_in, explanations_for, load_explanations, plain_names
from mappers.notebook import without_notebook
from mappers.results import Series, result_codes, results_page, trends
from web.i18n import lazy_gettext as _l

from ..charts import TrendChart, trend_chart
from ..core import PREFIX, Portal, Visit
from ..sections import load_sections

OPEN_PANELS = 4  # the newest panels are shown open; older ones fold away (a <details>, no script needed)


@dataclass(frozen=True)
class Trend:
    series: Series
    chart: TrendChart
    explanation: Explanation | None


async def show_results(visit: Visit) -> Response:
    locale = visit.portal.clock.formats(visit.locale)  # the reader's language, written the clinic's way
    table = load_explanations()  # validated once (cached)
    names = plain_names(table, locale)
    fhir, pid, tz = visit.fhir, visit.patient_id, visit.portal.clock.tz
    parts = await load_sections(
        reports=fhir.search("DiagnosticReport", [("patient", pid), ("_sort", "-date"), ("_count", "200")]),
        observations=fhir.search("Observation", [("patient", pid), ("_sort", "-date"), ("_count", "200")]),
    )
    # The health notebook's entries are the patient's own notes, not test results.
    reports, observations = parts["reports"].value or [], without_notebook(parts["observations"].value or [])
    page = results_page(reports, observations, tz, names, locale)
    charted = [Trend(s, trend_chart(s, f"trend-{s.loinc}", tz, locale),
                     explanation_in(table[s.loinc], locale) if s.loinc in table else None)
               for s in trends(observations, names, locale)]
    with_chart = {t.series.loinc for t in charted}
    explained = {e.loinc: e for e in explanations_for(result_codes(page), table, locale)}
    # Tests explained once at the foot of the page: those without a chart of their own.
    more = [e for code, e in explained.items() if code not in with_chart and e.kind == "measurement"]
    # A result row links to its test's explanation: in its chart, or at the foot.
    anchors = {t.series.loinc for t in charted if t.explanation} | {e.loinc for e in more}
    return visit.render(
        "portal/results.html", title=_l("Test results"), parts=parts,
        labs=[p for p in page.panels if not p.is_imaging], imaging=[p for p in page.panels if p.is_imaging],
        groups=page.groups, trends=charted, explained=explained, anchors=anchors, more_explained=more,
        open_panels=OPEN_PANELS)


def add_results_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/results", include_in_schema=False)(portal.page(show_results))
