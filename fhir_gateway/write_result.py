"""What a write through the gateway answers with (every write rule returns one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WriteResult:
    status: int
    resource: dict[str, Any]
    touched: list[str] = field(default_factory=list)  # every reference written, for audit and cache


def etag_of(resource: Mapping[str, Any]) -> str | None:
    version_id = (resource.get("meta") or {}).get("versionId")
    return f'W/"{version_id}"' if version_id else None
