"""Who has looked at my record: the gateway's access log (/portal/api/access-log), by month."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.dates import month_year
from mappers.instants import parse_instant
from web.i18n import gettext

from ..core import PREFIX, Portal, Visit
from ..fhir import RecordUnavailable

API = "/portal/api/access-log"
MONTHS_OFFERED = 12
# One screen shows the newest entries of the month, about SHOWN of them (whole API pages), then a link to
# the older ones: a busy month holds thousands of looks, and reading them all made the page slow. The EHR's
# time for one page grows with its size, so pages are small.
PAGE_SIZE = 50
SHOWN = 50
MAX_PAGES = 80  # newer months are paged through to reach an older one; enough for a busy year
CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True)
class Entry:
    when: str
    who: str
    what: str
    app: str | None
    address: str | None
    failed: bool


def _months(today: date, locale: str = "en") -> list[tuple[str, str]]:
    """The months offered, newest first: (`2026-03`, `March 2026` in the language `locale` is written)."""
    out, year, month = [], today.year, today.month
    for _ in range(MONTHS_OFFERED):
        out.append((f"{year:04d}-{month:02d}", month_year(date(year, month, 1), locale)))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def add_access_log_routes(router: APIRouter, portal: Portal) -> None:
    async def access_log(visit: Visit) -> Response:
        formats = visit.portal.clock.formats(visit.locale)
        months = _months(visit.portal.clock.today(), formats)
        asked = visit.request.query_params.get("month", "")
        month = asked if re.fullmatch(r"\d{4}-\d{2}", asked) and asked in dict(months) else months[0][0]
        start = f"{month}-01"
        entries: list[Entry] = []
        unavailable = False
        params: dict[str, str] | None = {"since": start, "count": str(PAGE_SIZE)}
        older_asked = visit.request.query_params.get("older", "")
        if CURSOR.fullmatch(older_asked):  # where the previous screen of this month stopped
            params["cursor"] = older_asked
        older: str | None = None
        path = API
        try:
            for _ in range(MAX_PAGES):
                body = await visit.fhir.get_json(path, params, what="access log")
                for item in body.get("entries") or []:
                    when = parse_instant(item.get("when"))
                    if when is None or when.astimezone(visit.portal.clock.tz).strftime("%Y-%m") != month:
                        continue
                    entries.append(Entry(visit.portal.clock.when(item.get("when"), visit.locale),
                                         str(item.get("who") or ""), str(item.get("what") or ""),
                                         item.get("app"), item.get("from"), item.get("outcome") == "failure"))
                following = body.get("next")
                if not following or not str(following).startswith(API + "?"):
                    break
                if len(entries) >= SHOWN:
                    older = (parse_qs(urlsplit(str(following)).query).get("cursor") or [None])[0]
                    break
                path, params = str(following), None
        except RecordUnavailable:
            unavailable = True
        return visit.render("portal/access_log.html", title=gettext("Who has looked at your record"), entries=entries,
                            months=months, month=month, month_words=dict(months)[month], unavailable=unavailable,
                            older=older, continued=bool(CURSOR.fullmatch(older_asked)))

    router.get(f"{PREFIX}/access-log", include_in_schema=False)(portal.page(access_log))
