"""axe-core (pinned in tests/e2e/package-lock.json) run inside the page for WCAG 2.1 A/AA rules.

The engine is evaluated through the DevTools protocol, which a page's Content-Security-Policy does not
govern, so pages are checked exactly as served (strict CSP, nothing bypassed). It needs JavaScript:
run it in a JavaScript-enabled context.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page

E2E_DIR = Path(__file__).resolve().parent.parent
AXE_JS = E2E_DIR / "node_modules" / "axe-core" / "axe.min.js"
WCAG21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BLOCKING = ("serious", "critical")
RUN_TIMEOUT = 60.0

_RUN = """async ([tags, include]) => {
  const result = await window.axe.run(include ? document.querySelector(include) : document,
                                      {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return {
    version: window.axe.version,
    violations: result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      targets: v.nodes.map(n => n.target.join(' ')),
      summaries: v.nodes.map(n => n.failureSummary || ''),
    })),
  };
}"""


@dataclass(frozen=True)
class Violation:
    id: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]
    summaries: tuple[str, ...]

    @property
    def blocking(self) -> bool:
        return self.impact in BLOCKING

    def describe(self) -> str:
        where = "; ".join(self.targets[:5]) + (" ..." if len(self.targets) > 5 else "")
        return f"[{self.impact}] {self.id}: {self.help} ({len(self.targets)}x: {where})"


class AxeUnavailable(RuntimeError):
    pass


@functools.cache
def axe_source() -> str:
    if not AXE_JS.exists():
        raise AxeUnavailable(f"{AXE_JS.relative_to(E2E_DIR.parent.parent)} is missing: `./stack test` runs npm ci "
                             "in tests/e2e")
    return AXE_JS.read_text(encoding="utf-8")


async def axe(page: Page, *, tags: tuple[str, ...] = WCAG21_AA, include: str | None = None) -> list[Violation]:
    """All violations of the WCAG 2.1 A/AA rules on the page as it is now (or inside the `include` selector)."""
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            if not await page.evaluate("() => typeof window.axe === 'object'"):
                await page.evaluate(axe_source())
            result: dict[str, Any] = await page.evaluate(_RUN, [list(tags), include])
    except TimeoutError as exc:
        raise AxeUnavailable("axe did not answer: is JavaScript disabled in this context?") from exc
    return [Violation(v["id"], v["impact"] or "minor", v["help"], v["helpUrl"], tuple(v["targets"]),
                      tuple(v["summaries"])) for v in result["violations"]]


async def assert_no_serious_axe_violations(page: Page, name: str = "") -> list[Violation]:
    """Fails on any serious or critical violation; prints the others and returns them."""
    violations = await axe(page)
    label = name or page.url
    blocking = [v for v in violations if v.blocking]
    for v in violations:
        if not v.blocking:
            print(f"axe {label}: {v.describe()}")
    assert not blocking, f"axe found serious/critical WCAG 2.1 A/AA violations on {label}:\n" + "\n".join(
        v.describe() + "\n    " + "\n    ".join(v.summaries[:2]) for v in blocking)
    return violations
