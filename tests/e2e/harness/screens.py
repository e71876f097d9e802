"""Screenshots for review and the layout checks a phone user would notice.

Screenshots go to `<output>/screenshots/<name>-1280.png` and `<name>-375.png`; the output folder is
`test-output/e2e` in the checkout unless `PORTAL_E2E_OUTPUT` names another (it is git-ignored).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from .browser import DESKTOP, PHONE

ROOT = Path(__file__).resolve().parents[3]
# Big targets for people who are not nimble with a mouse or a touch screen: buttons and fields at least
# 44 px tall (WCAG 2.5.5); check boxes and radio buttons (with their labels) at least 24 px (WCAG 2.5.8).
MIN_TARGET_PX = 44
MIN_SMALL_TARGET_PX = 24


def output_dir() -> Path:
    """Where this run's e2e output goes (screenshots, failure captures)."""
    return Path(os.environ.get("PORTAL_E2E_OUTPUT") or ROOT / "test-output" / "e2e").resolve()


def screenshot_dir() -> Path:
    path = output_dir() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "page"


def viewport_for(width: int) -> dict[str, int]:
    return {"width": width, "height": PHONE["height"] if width <= PHONE["width"] else DESKTOP["height"]}


async def capture(page: Page, name: str) -> Path:
    """A full-page PNG of the page at its current width: `<output>/screenshots/<name>-<width>.png`."""
    width = (page.viewport_size or DESKTOP)["width"]
    path = screenshot_dir() / f"{_slug(name)}-{width}.png"
    await page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


async def screenshots(page: Page, name: str, *, widths: tuple[int, ...] = (DESKTOP["width"], PHONE["width"])
                      ) -> list[Path]:
    """Full-page PNGs of the page as it is now, one per width (1280 and 375 px by default); the viewport is
    put back afterwards. Returns the files written."""
    original = page.viewport_size
    written = []
    try:
        for width in widths:
            await page.set_viewport_size(viewport_for(width))
            written.append(await capture(page, name))
    finally:
        if original:
            await page.set_viewport_size(original)
    return written


_LAYOUT_JS = """([minTarget, minSmall]) => {
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + ' "' + (el.getAttribute('aria-label') || el.innerText || el.value || el.name || '').trim().slice(0, 30) + '"';
  const visible = (el) => el.checkVisibility({checkVisibilityCSS: true}) && el.getBoundingClientRect().width > 0;
  const doc = document.documentElement;
  const problems = [];
  if (doc.scrollWidth > doc.clientWidth + 1)
    problems.push(`page is ${doc.scrollWidth}px wide in a ${doc.clientWidth}px window (sideways scrolling)`);
  for (const el of document.querySelectorAll('main *, header *, footer *')) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right > doc.clientWidth + 1 && getComputedStyle(el).position !== 'fixed' && !el.closest('.skip-link'))
      problems.push(`${describe(el)} sticks out past the right edge (${Math.round(r.right)}px)`);
  }
  for (const el of document.querySelectorAll('button, .button, input:not([type=hidden]), select, textarea')) {
    if (!visible(el) || el.closest('.skip-link')) continue;
    const small = el.type === 'checkbox' || el.type === 'radio';
    let h = el.getBoundingClientRect().height;
    if (small && el.labels && el.labels[0]) h = Math.max(h, el.labels[0].getBoundingClientRect().height);
    const need = small ? minSmall : minTarget;
    if (h + 0.5 < need) problems.push(`${describe(el)} is ${Math.round(h)}px tall (needs ${need}px)`);
  }
  return [...new Set(problems)];
}"""


async def layout_problems_now(page: Page) -> list[str]:
    """At the current width: sideways scrolling, content past the right edge, targets too small to tap."""
    result: list[Any] = await page.evaluate(_LAYOUT_JS, [MIN_TARGET_PX, MIN_SMALL_TARGET_PX])
    return [str(p) for p in result]


async def layout_problems(page: Page, width: int = PHONE["width"]) -> list[str]:
    """`layout_problems_now` at ``width`` px (the viewport is put back afterwards)."""
    original = page.viewport_size
    try:
        await page.set_viewport_size(viewport_for(width))
        return await layout_problems_now(page)
    finally:
        if original:
            await page.set_viewport_size(original)


async def assert_layout_ok(page: Page, name: str = "", widths: tuple[int, ...] = (PHONE["width"], DESKTOP["width"])
                           ) -> None:
    problems = []
    for width in widths:
        problems += [f"{width}px: {p}" for p in await layout_problems(page, width)]
    assert not problems, f"layout problems on {name or page.url}:\n" + "\n".join(problems)
