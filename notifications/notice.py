"""One queued notice: who gets it, what kind, the link; and its key (what makes a repeat a repeat)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

# Who a notice is for: a patient (their own account gets it), an account, or an e-mail address with no
# account yet (an invitation).
TARGET = re.compile(r"(Patient/[A-Za-z0-9\-.]{1,64}|account:[A-Za-z0-9\-]{1,64}|mailto:[^\s@]{1,64}@[^\s@]{1,255})")


@dataclass(frozen=True)
class Notice:
    key: str  # digest of the caller's notice key
    to: str
    kind: str
    link: str
    at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Notice:
        data = json.loads(raw)
        return cls(str(data["key"]), str(data["to"]), str(data["kind"]), str(data["link"]), float(data["at"]))


def key_digest(key: str) -> str:
    """Keys may name accounts and resources; only their digest is stored, and it doubles as the Message-ID."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]
