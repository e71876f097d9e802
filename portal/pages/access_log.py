"""Who has looked at my record: the gateway's access log (/portal/api/access-log), by month."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.dates import month_year
from mappers.instants import parse_instant

from ..core import PREFIX, Portal, Visit
from ..fhir import RecordUnavailable

API = "/portal/api/access-log"
MONTHS_OFFERED = 12
PAGE_SIZE = 200
MAX_PAGES = 20  # newer months are paged through to reach an older one; enough for a busy year


@dataclass(frozen=True)
class Entry:
    when: str
    who: str
    what: str
    app: str | None
    address: str | None
    failed: bool


def _months(today: date) -> list[tuple[str, str]]:
    out, year, month = [], today.year, today.month
    for _ in range(MONTHS_OFFERED):
        out.append((f"{year:04d}-{month:02d}", month_year(date(year, month, 1))))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def add_access_log_routes(router: APIRouter, portal: Portal) -> None:
    async def access_log(visit: Visit) -> Response:
        months = _months(visit.portal.clock.today())
        asked = visit.request.query_params.get("month", "")
        month = asked if re.fullmatch(r"\d{4}-\d{2}", asked) and asked in dict(months) else months[0][0]
        start = f"{month}-01"
        entries: list[Entry] = []
        unavailable = False
        params: dict[str, str] | None = {"since": start, "count": str(PAGE_SIZE)}
        path = API
        try:
            for _ in range(MAX_PAGES):
                body = await visit.fhir.get_json(path, params, what="access log")
                for item in body.get("entries") or []:
                    when = parse_instant(item.get("when"))
                    if when is None or when.astimezone(visit.portal.clock.tz).strftime("%Y-%m") != month:
                        continue
                    entries.append(Entry(visit.portal.clock.when(item.get("when")), str(item.get("who") or ""),
                                         str(item.get("what") or ""), item.get("app"), item.get("from"),
                                         item.get("outcome") == "failure"))
                following = body.get("next")
                if not following or not str(following).startswith(API + "?"):
                    break
                path, params = str(following), None
        except RecordUnavailable:
            unavailable = True
        return visit.render("portal/access_log.html", title="Who has looked at your record", entries=entries,
                            months=months, month=month, month_words=dict(months)[month], unavailable=unavailable)

    router.get(f"{PREFIX}/access-log", include_in_schema=False)(portal.page(access_log))
