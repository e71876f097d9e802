"""The demo data set, generated in memory, so the wording is checked against what patients will see."""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any

import pytest

from fixtures.generate import generate

TODAY = date(2026, 3, 10)
# What must never show on a patient's page: code system URLs, UCUM brackets, bare LOINC/SNOMED codes.
RAW = re.compile(r"https?://|\[[a-z_]+\]|\{[^}]*\}|\b\d{3,6}-\d\b|\bNone\b")


@pytest.fixture(scope="session")
def records() -> dict[str, list[dict[str, Any]]]:
    """Every demo patient's resources (plus the practice's), by patient id."""
    return demo_records()


@functools.cache
def demo_records() -> dict[str, list[dict[str, Any]]]:
    """The demo data set, generated once per test process: the mappers' and the portal's tests (each
    folder has its own `records` fixture) read the same one and change none of it."""
    dataset = generate(42, 25, TODAY)
    practice = [e["resource"] for e in dataset.practice["entry"]]
    found: dict[str, list[dict[str, Any]]] = {}
    for bundle in dataset.patient_bundles():
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        found[patient["id"]] = resources + practice
    return found


def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r.get("resourceType") == resource_type]


def all_of_type(records: dict[str, list[dict[str, Any]]], resource_type: str) -> list[dict[str, Any]]:
    return [r for resources in records.values() for r in of_type(resources, resource_type)]


def assert_readable(text: Any) -> None:
    """Patient-facing text: present and free of codes and URLs."""
    assert isinstance(text, str) and text.strip(), text
    assert not RAW.search(text), text
