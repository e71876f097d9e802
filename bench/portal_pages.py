"""`./stack bench portal`: how long the portal's home and test-results pages take, cold and warm, and how
that compares with the slowest FHIR call each page makes (the baseline, measured in the same loads).

The app is built in this process exactly as `create_app` builds it (gateway, cache, audit, portal), over the
running EHR (read only: audit export is off) and a private Redis. Each load is one page as a signed-in
patient sees it: the page's concurrent FHIR searches through the in-process transport into the gateway
(access checks, cache, audit), the shaping in mappers, the charts and the template. Time to look up the
session cookie (one Redis read) is not included. Cold: the first load of each patient's page with an empty
cache. Warm: later loads. `PortalFhir.calls` gives each FHIR call's own time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from portal.client_registration import SCOPES
from portal.core import Portal, Visit
from portal.pages.dashboard import show_dashboard
from portal.pages.results import show_results
from portal.sessions import PortalSession, Tokens
from smart_auth.keys import KeyStore

from .stack import ehr_and_redis, fixture_patients, private_cache_redis

Page = Callable[[Visit], Awaitable[Any]]
PAGES: dict[str, tuple[str, Page]] = {"dashboard": ("/portal/", show_dashboard),
                                      "results": ("/portal/results", show_results)}


@dataclass
class Loads:
    page_ms: list[float] = field(default_factory=list)
    slowest_call_ms: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    def add(self, page: float, slowest: float, calls: int) -> None:
        self.page_ms.append(page * 1000)
        self.slowest_call_ms.append(slowest * 1000)
        self.calls.append(calls)

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        data = sorted(values)
        return data[min(len(data) - 1, round(q / 100 * (len(data) - 1)))] if data else float("nan")

    def ratios(self) -> list[float]:
        return [p / s for p, s in zip(self.page_ms, self.slowest_call_ms, strict=True) if s > 0]


def _token(keys: KeyStore, public_url: str, client_id: str, patient: str) -> str:
    now = int(time.time())
    return keys.sign({"iss": public_url, "sub": f"bench-{patient}", "aud": public_url + "/fhir", "iat": now,
                      "exp": now + 3600, "jti": uuid.uuid4().hex, "client_id": client_id, "patient": patient,
                      "fhirUser": f"{public_url}/fhir/Patient/{patient}", "scope": SCOPES})


def _visit(portal: Portal, path: str, patient: str, token: str) -> Visit:
    request = Request({"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [],
                       "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "scheme": "http"})
    now = time.time()
    session = PortalSession(id=uuid.uuid4().hex, account_id=f"bench-{patient}", fhir_user=f"Patient/{patient}",
                            patient_id=patient, patient_name="Bench Patient", tokens=Tokens(token, now + 3600),
                            csrf_token="x", created=now, last_seen=now, previous_sign_in=now - 86400 * 30)
    return Visit(portal, request, session, portal.fhir_for(request, token))


async def _load(portal: Portal, name: str, patient: str, token: str, into: Loads) -> None:
    path, page = PAGES[name]
    visit = _visit(portal, path, patient, token)
    started = time.perf_counter()
    response = await page(visit)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{name} for {patient} answered {response.status_code}")
    into.add(elapsed, max((t for _, t in visit.fhir.calls), default=0.0), len(visit.fhir.calls))


def _report(results: dict[tuple[str, str], Loads]) -> str:
    lines = [f"{'page':10} {'run':5} {'loads':>5} {'calls':>5} {'p50 ms':>8} {'p95 ms':>8} "
             f"{'slowest call p50':>17} {'page/slowest p50':>17} {'p95':>6}"]
    for (name, run), loads in results.items():
        ratios = loads.ratios()
        lines.append(f"{name:10} {run:5} {len(loads.page_ms):5d} {statistics.median(loads.calls):5.0f} "
                     f"{Loads.pct(loads.page_ms, 50):8.1f} {Loads.pct(loads.page_ms, 95):8.1f} "
                     f"{Loads.pct(loads.slowest_call_ms, 50):14.1f} ms {Loads.pct(ratios, 50):16.2f}x "
                     f"{Loads.pct(ratios, 95):5.2f}x")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    from fhir_gateway.app import create_app
    from fhir_gateway.settings import PortalSettings

    with ehr_and_redis() as cfg, private_cache_redis("512mb") as redis_url:
        state = Path(tempfile.mkdtemp(prefix="bench-portal-"))
        base = redis_url.rsplit("/", 1)[0]
        os.environ.update({"PORTAL_AUDIT_EXPORT": "false", "PORTAL_CACHE_REDIS_URL": f"{base}/1",
                           "PORTAL_AUDIT_STREAM": f"audit:bench:{uuid.uuid4().hex[:12]}", "LOG_LEVEL": "warning"})
        public_url = "http://127.0.0.1:8000"
        settings = PortalSettings.load(fhir_base_url=cfg.fhir_base_url, redis_url=f"{base}/0", state_dir=state,
                                       public_url=public_url)
        app = create_app(settings)
        patients = fixture_patients(cfg.fhir_base_url, args.patients)
        async with app.router.lifespan_context(app):
            portal: Portal = app.state.portal
            keys = KeyStore.load_or_create(state / "signing-key.pem")
            tokens = {p: _token(keys, public_url, settings.portal.oauth_client_id, p) for p in patients}
            results: dict[tuple[str, str], Loads] = {}
            for name in PAGES:
                results[(name, "cold")] = cold = Loads()
                for p in patients:  # each patient's first load of this page: nothing of it cached yet
                    await _load(portal, name, p, tokens[p], cold)
                results[(name, "warm")] = warm = Loads()
                for _ in range(args.rounds):
                    for p in patients:
                        await _load(portal, name, p, tokens[p], warm)
            messaging, writer = None, ""
            if args.messages:
                from .portal_messages import patient_with_care_team, round_trips

                writer = patient_with_care_team(cfg.fhir_base_url)
                token = _token(keys, public_url, settings.portal.oauth_client_id, writer)
                messaging = await round_trips(portal, cfg.fhir_base_url, writer, token, args.messages)
            booking, booker = None, ""
            if args.bookings:
                from .portal_bookings import demo_patient
                from .portal_bookings import round_trips as booking_round_trips

                booker = demo_patient(cfg.fhir_base_url)
                token = _token(keys, public_url, settings.portal.oauth_client_id, booker)
                booking = await booking_round_trips(portal, cfg.fhir_base_url, booker, token, args.bookings)
        print(f"portal pages, {len(patients)} patients, {args.rounds} warm rounds, one page at a time "
              f"(in-process gateway, EHR {cfg.fhir_base_url}, cache on)")
        print(_report(results))
        dashboard = results[("dashboard", "warm")]
        p50, ratio = Loads.pct(dashboard.page_ms, 50), Loads.pct(dashboard.ratios(), 50)
        verdict = "meets" if p50 <= 60 and ratio <= 1.5 else "misses"
        print(f"target warm dashboard p50 <= 60 ms and <= 1.5x its slowest call: {p50:.1f} ms, {ratio:.2f}x "
              f"({verdict})")
        if messaging:
            _print_messaging(writer, args.messages, messaging)
        if booking:
            _print_booking(booker, args.bookings, booking)
    return 0


def _print_messaging(patient: str, n: int, times: dict[str, list[float]]) -> None:
    base = Loads.pct(times["direct write"], 50)
    print(f"messaging, {n} round trips for {patient} (send = the form through the gateway into the EHR; "
          "open = the conversation page; baseline = the same message POSTed straight to the EHR)")
    for name, values in times.items():
        print(f"{name:13} p50 {Loads.pct(values, 50):7.1f} ms  p95 {Loads.pct(values, 95):7.1f} ms  "
              f"p50 / direct write {Loads.pct(values, 50) / base:5.2f}x")


def _print_booking(patient: str, n: int, times: dict[str, list[float]]) -> None:
    print(f"booking, {n} round trips for {patient} (book = the form through the gateway's one-winner transaction "
          "into the EHR; cancel = the cancel form, which frees the time; baselines = the same transactions sent "
          "straight to the EHR)")
    for name, values in times.items():
        base = Loads.pct(times["direct cancel" if "cancel" in name else "direct book"], 50)
        print(f"{name:13} p50 {Loads.pct(values, 50):7.1f} ms  p95 {Loads.pct(values, 95):7.1f} ms  "
              f"p50 / direct {Loads.pct(values, 50) / base:5.2f}x")
