"""/portal/staff/metrics: portal adoption and how quickly the practice answers, for every staff role.

Every role sees it: the figures are counts, shares and durations over the whole practice, never a person,
and each role moves one of them (front desk: invitations; clinicians and nurses: replies and refills;
billing: the patients they ask to pay online). There is no manager role in the practice's PractitionerRoles
to give a separate view to. The figures come from `fhir_gateway.service_metrics` (the audit store and the
EHR), the same ones /metrics exposes to Prometheus.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.portal_access import duration_words, share_words

from ..core import StaffArea, StaffVisit
from ..settings import PREFIX


def add_metrics_routes(router: APIRouter, area: StaffArea, figures_source: Any) -> None:
    """`figures_source`: a `fhir_gateway.service_metrics.ServiceMetrics` (anything with `await figures()`)."""

    async def metrics(visit: StaffVisit) -> Response:
        figures = await figures_source.figures()
        return visit.render("staff/metrics.html", title="Portal figures", figures=figures,
                            duration_words=duration_words, share_words=share_words,
                            computed=area.clock.when(figures.computed_at.timestamp()))

    router.get(f"{PREFIX}/metrics", include_in_schema=False)(area.page(metrics, queue="metrics"))
