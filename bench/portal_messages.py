"""Messaging round trips for `./stack bench portal --messages N`: a patient sends a message through the
portal's own page (form -> gateway rule -> EHR write -> redirect) and opens the conversation; the baseline
is the same Communication POSTed straight to the EHR, measured in the same run.

This WRITES to the EHR (2N messages in one demo patient's record: N through the portal, N direct), so it
runs only when asked for.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from starlette.requests import Request

from mappers.messages import outgoing
from portal.core import Portal, Visit
from portal.pages.messages import conversation, send_new
from portal.sessions import PortalSession, Tokens


def patient_with_care_team(ehr_base: str) -> str:
    """A demo patient who has a care team to write to (the EHR may hold other patients too)."""
    bundle = httpx.get(f"{ehr_base}/CareTeam", params={"status": "active", "_count": 1}, timeout=60).json()
    for entry in bundle.get("entry") or []:
        return str(entry["resource"]["subject"]["reference"]).split("/")[-1]
    raise SystemExit("The EHR has no care teams; run ./stack up once (it loads the fixtures)")


def _visit(portal: Portal, method: str, path: str, patient: str, token: str, *, data: dict[str, str] | None = None,
           path_params: dict[str, Any] | None = None) -> Visit:
    body, headers = b"", []
    if data is not None:
        built = httpx.Request(method, "http://127.0.0.1:8000" + path, data=data, files={"none": ("", b"")})
        body = built.read()
        headers = [(k.lower().encode(), v.encode()) for k, v in built.headers.items()]
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            return {"type": "http.disconnect"}
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": method, "path": path, "query_string": b"", "headers": headers,
                       "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "scheme": "http",
                       "path_params": path_params or {}}, receive)
    now = time.time()
    session = PortalSession(id=uuid.uuid4().hex, account_id=f"bench-{patient}", fhir_user=f"Patient/{patient}",
                            patient_id=patient, patient_name="Bench Patient", tokens=Tokens(token, now + 3600),
                            csrf_token="bench-csrf", created=now, last_seen=now)
    return Visit(portal, request, session, portal.fhir_for(request, token))


async def round_trips(portal: Portal, ehr_base: str, patient: str, token: str, n: int
                      ) -> dict[str, list[float]]:
    """Milliseconds per send, per open, and per direct-to-EHR write."""
    team = "Organization/org-team-care"
    out: dict[str, list[float]] = {"send": [], "open": [], "direct write": []}
    async with httpx.AsyncClient(timeout=60) as ehr:
        for i in range(n):
            submission = uuid.uuid4().hex
            form = {"csrf_token": "bench-csrf", "submission": submission, "to": team, "topic": "care",
                    "subject": f"Benchmark message {i + 1}", "text": "A question for the benchmark."}
            started = time.perf_counter()
            sent = await send_new(_visit(portal, "POST", "/portal/messages", patient, token, data=form))
            out["send"].append((time.perf_counter() - started) * 1000)
            if sent.status_code != 303:
                raise SystemExit(f"sending a message answered {sent.status_code}")
            thread = sent.headers["location"].split("/")[-1].split("?")[0]
            started = time.perf_counter()
            opened = await conversation(_visit(portal, "GET", f"/portal/messages/{thread}", patient, token,
                                               path_params={"thread_id": thread}))
            out["open"].append((time.perf_counter() - started) * 1000)
            if opened.status_code != 200:
                raise SystemExit(f"opening a conversation answered {opened.status_code}")
            direct = outgoing(patient_ref=f"Patient/{patient}", recipient=team, text="A question for the benchmark.",
                              submission=uuid.uuid4().hex, topic="care", subject=f"Benchmark baseline {i + 1}")
            direct |= {"sender": {"reference": f"Patient/{patient}"}, "sent": "2026-01-01T00:00:00Z"}
            started = time.perf_counter()
            answer = await ehr.post(f"{ehr_base}/Communication", json=direct,
                                    headers={"Content-Type": "application/fhir+json"})
            out["direct write"].append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    return out
