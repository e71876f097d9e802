"""The portal's dashboard workload: what a patient's home page asks for, per patient."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from .runner import Request


def dashboard_queries(patient: str) -> list[str]:
    today = datetime.now(UTC).date().isoformat()
    ref = f"Patient/{patient}"
    return [
        f"Patient/{patient}",
        f"Observation?patient={ref}&category=laboratory&_sort=-date&_count=10",
        f"Observation?patient={ref}&category=vital-signs&_sort=-date&_count=10",
        f"MedicationRequest?patient={ref}&status=active",
        f"Appointment?patient={ref}&date=ge{today}",
        f"Communication?subject={ref}&_sort=-sent&_count=10",
        f"AllergyIntolerance?patient={ref}",
        f"Immunization?patient={ref}",
    ]


def build(base: str, patients: list[str], tokens: dict[str, str] | None, total: int, seed: int = 7) -> list[Request]:
    """`total` requests drawn from every patient's dashboard, in the same order for every target."""
    rng = random.Random(seed)
    out: list[Request] = []
    while len(out) < total:
        out += every_dashboard(base, [rng.choice(patients)], tokens)
    return out[:total]


def every_dashboard(base: str, patients: list[str], tokens: dict[str, str] | None) -> list[Request]:
    """Each patient's whole dashboard once: what a warm cache has already seen."""
    out: list[Request] = []
    for patient in patients:
        headers = {"Accept": "application/fhir+json"}
        if tokens is not None:
            headers["Authorization"] = f"Bearer {tokens[patient]}"
        out += [Request(f"{base}/{q}", headers) for q in dashboard_queries(patient)]
    return out
