"""An audit sink for tests that keeps every security event smart_auth records (and can be made to fail)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordingAudit:
    events: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False

    async def __call__(self, kind: str, outcome: str, **fields: Any) -> None:
        if self.failing:
            raise ConnectionError("audit stream down")
        self.events.append({"kind": kind, "outcome": outcome, **fields})

    def kinds(self) -> list[tuple[str, str]]:
        return [(e["kind"], e["outcome"]) for e in self.events]

    def has(self, kind: str, outcome: str, **match: Any) -> bool:
        return any(e["kind"] == kind and e["outcome"] == outcome and all(e.get(k) == v for k, v in match.items())
                   for e in self.events)
