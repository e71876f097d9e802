"""CodeableConcepts and Codings in words: the text, else a display, never a raw code or a system URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _codings(concept: Any) -> list[Mapping[str, Any]]:
    if not isinstance(concept, Mapping):
        return []
    codings = concept.get("coding")
    return [c for c in codings if isinstance(c, Mapping)] if isinstance(codings, list) else []


def coding_display(coding: Any) -> str | None:
    return _text(coding.get("display")) if isinstance(coding, Mapping) else None


def concept_text(concept: Any, fallback: str | None = None) -> str | None:
    """`text`, else the first coding's `display` (user-selected first), else `fallback`.

    A bare Coding is accepted too; a list of concepts gives the first readable one.
    """
    if isinstance(concept, list):
        for item in concept:
            found = concept_text(item)
            if found:
                return found
        return fallback
    if not isinstance(concept, Mapping):
        return fallback
    if "coding" not in concept and ("code" in concept or "display" in concept):
        return coding_display(concept) or fallback
    text = _text(concept.get("text"))
    if text:
        return text
    codings = sorted(_codings(concept), key=lambda c: c.get("userSelected") is not True)
    for coding in codings:
        display = coding_display(coding)
        if display:
            return display
    return fallback


def concept_texts(concepts: Any) -> list[str]:
    """Every readable concept of a list, in order, without repeats."""
    found: list[str] = []
    for item in concepts if isinstance(concepts, list) else [concepts]:
        text = concept_text(item)
        if text and text not in found:
            found.append(text)
    return found


def code_in(concept: Any, system: str) -> str | None:
    """The first code of `system` in a concept (or a list of concepts)."""
    for item in concept if isinstance(concept, list) else [concept]:
        for coding in _codings(item):
            if coding.get("system") == system and isinstance(coding.get("code"), str):
                return coding["code"]
    return None


def codes(concept: Any) -> set[tuple[str, str]]:
    """Every (system, code) pair of a concept or a list of concepts."""
    found: set[tuple[str, str]] = set()
    for item in concept if isinstance(concept, list) else [concept]:
        for coding in _codings(item):
            if isinstance(coding.get("code"), str):
                found.add((str(coding.get("system") or ""), coding["code"]))
    return found


def has_code(concept: Any, system: str, *wanted: str) -> bool:
    return any(s == system and c in wanted for s, c in codes(concept))


def loinc_code(concept: Any) -> str | None:
    return code_in(concept, LOINC)
