"""The running app as the browser tests see it: its URL, invitations by the admin API, and the outbox
where one-time codes and invitation links are "sent" (`<state>/outbox.jsonl`, the development sender)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CODE_RE = re.compile(r"code is (\d{6})")
LINK_RE = re.compile(r"(https?://\S+/auth/enroll\?code=[\w-]+)")


@dataclass(frozen=True)
class Invitation:
    url: str
    code: str
    patient_id: str


@dataclass(frozen=True)
class PortalApp:
    url: str
    state_dir: Path
    admin_key: str

    async def invite(self, patient_id: str, *, email: str | None = None) -> Invitation:
        """A patient invitation made the way the clinic makes one (`POST /auth/admin/invitations`)."""
        body: dict[str, Any] = {"patient": patient_id}
        if email:
            body["email"] = email
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.post("/auth/admin/invitations", json=body,
                                       headers={"Authorization": f"Bearer {self.admin_key}"})
        assert response.status_code == 201, response.text
        data = response.json()
        return Invitation(data["enroll_url"], data["code"], patient_id)

    def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages sent so far, oldest first (only those to ``to`` when given)."""
        path = self.state_dir / "outbox.jsonl"
        if not path.exists():
            return []
        messages = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [m for m in messages if to is None or m["to"] == to]

    def last_code(self, to: str) -> str:
        """The one-time code in the newest message to ``to``."""
        for message in reversed(self.outbox(to)):
            if match := CODE_RE.search(message["body"]):
                return match.group(1)
        raise AssertionError(f"no one-time code was sent to {to}")

    def last_link(self, to: str) -> str:
        """The enrolment link in the newest message to ``to``."""
        for message in reversed(self.outbox(to)):
            if match := LINK_RE.search(message["body"]):
                return match.group(1)
        raise AssertionError(f"no enrolment link was sent to {to}")
