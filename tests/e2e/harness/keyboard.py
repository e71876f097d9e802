"""Keyboard-only use of a page, with real key presses (Tab, typing, Enter) and no mouse.

`tab_walk` presses Tab through one full cycle of the page and reports which interactive elements were never
reached and which showed no visible focus indicator (compared with how the same element looks unfocused:
an outline of at least 2 px with 3:1 contrast against what is behind it, or a clear change of background,
border or shadow). `fill_by_keyboard` fills a form and submits it by Tab, typing, arrow keys and Enter only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Locator, Page, Response

MIN_OUTLINE_PX = 2.0
MIN_CONTRAST = 3.0

_STYLE_JS = """
const e2eStyle = (el) => {
  const bgOf = (node) => {
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = getComputedStyle(n).backgroundColor;
      if (c && c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c)) return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const s = getComputedStyle(el);
  return {outlineStyle: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth) || 0, outlineColor: s.outlineColor,
          boxShadow: s.boxShadow, background: bgOf(el), behind: bgOf(el.parentElement),
          borderColor: s.borderTopColor, borderWidth: parseFloat(s.borderTopWidth) || 0,
          textDecoration: s.textDecorationLine + ' ' + s.textDecorationThickness};
};
"""

_MARK_JS = _STYLE_JS + """
() => {
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  const selector = 'a[href], area[href], button, input:not([type=hidden]), select, textarea, summary, iframe, '
                 + '[tabindex]:not([tabindex="-1"]), [contenteditable=""], [contenteditable="true"]';
  const seen = new Map();
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || el.closest('[inert]')) continue;
    if (!el.checkVisibility({checkVisibilityCSS: true, checkOpacity: true})) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    let key;
    const form = el.form ? [...document.forms].indexOf(el.form) : '-';
    if (el.type === 'radio' && el.name) key = 'radio:' + form + ':' + el.name;
    else key = 'el:' + seen.size;
    el.dataset.e2eKbd = key;
    const text = (el.getAttribute('aria-label') || el.innerText || el.value || el.name || el.id || '').trim();
    const desc = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.type ? '[' + el.type + ']' : '')
               + (text ? ' "' + text.slice(0, 40) + '"' : '');
    if (!seen.has(key)) seen.set(key, {key, desc, style: e2eStyle(el), positiveTabindex: el.tabIndex > 0});
  }
  return [...seen.values()];
}
"""

_FOCUSED_JS = _STYLE_JS + """
() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  return {key: el.dataset.e2eKbd || null, tag: el.tagName.toLowerCase(), id: el.id || '', style: e2eStyle(el)};
}
"""


def _rgb(color: str) -> tuple[float, float, float, float] | None:
    match = re.match(r"rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)", color)
    if not match:
        return None
    r, g, b, a = match.groups()
    alpha = 1.0 if a is None else (float(a[:-1]) / 100 if a.endswith("%") else float(a))
    return float(r), float(g), float(b), alpha


def _luminance(rgb: tuple[float, float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b, _ = rgb
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours (1.0 when either cannot be read or is transparent)."""
    ca, cb = _rgb(a), _rgb(b)
    if ca is None or cb is None or ca[3] == 0 or cb[3] == 0:
        return 1.0
    la, lb = sorted((_luminance(ca), _luminance(cb)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def focus_indicator_visible(unfocused: Mapping[str, Any], focused: Mapping[str, Any]) -> bool:
    """True when focus changes how the element looks enough to be seen (see the module docstring)."""
    outline = (focused["outlineStyle"] not in ("none", "hidden") and focused["outlineWidth"] >= MIN_OUTLINE_PX
               and contrast(focused["outlineColor"], focused["behind"]) >= MIN_CONTRAST
               and (unfocused["outlineStyle"] in ("none", "hidden") or unfocused["outlineWidth"] < MIN_OUTLINE_PX
                    or unfocused["outlineColor"] != focused["outlineColor"]))
    background = contrast(focused["background"], unfocused["background"]) >= MIN_CONTRAST
    shadow = focused["boxShadow"] not in ("none", "") and focused["boxShadow"] != unfocused["boxShadow"]
    border = (focused["borderWidth"] >= unfocused["borderWidth"] + 1
              or (focused["borderWidth"] >= MIN_OUTLINE_PX
                  and contrast(focused["borderColor"], unfocused["borderColor"]) >= MIN_CONTRAST))
    return outline or background or shadow or border


@dataclass
class TabWalk:
    """One full Tab cycle: the stops in order, what was never reached, what showed no focus indicator."""

    stops: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    no_indicator: list[str] = field(default_factory=list)
    positive_tabindex: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [f"not reachable with Tab: {d}" for d in self.unreachable]
        out += [f"no visible focus indicator: {d}" for d in self.no_indicator]
        out += [f"tabindex > 0 changes the natural order: {d}" for d in self.positive_tabindex]
        if not self.stops:
            out.append("Tab reaches nothing on this page")
        return out


async def tab_walk(page: Page) -> TabWalk:
    """Press Tab until focus comes round again; compare every stop's look with its unfocused look."""
    elements: list[dict[str, Any]] = await page.evaluate(_MARK_JS)
    by_key = {e["key"]: e for e in elements}
    walk = TabWalk(positive_tabindex=[e["desc"] for e in elements if e["positiveTabindex"]])
    visited: list[str] = []
    for _ in range(2 * len(elements) + 6):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(_FOCUSED_JS)
        if focused is None:
            continue  # focus left the document (the browser's own UI): the cycle goes on
        key = focused["key"] or f"unlisted:{focused['tag']}#{focused['id']}"
        if visited and key == visited[-1]:
            continue  # Tab moved inside one control (a date field's month, day and year)
        if key in visited:
            break
        visited.append(key)
        known = by_key.get(key)
        walk.stops.append(known["desc"] if known else key)
        if known and not focus_indicator_visible(known["style"], focused["style"]):
            walk.no_indicator.append(known["desc"])
    walk.unreachable = [e["desc"] for e in elements if e["key"] not in visited]
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    return walk


async def assert_keyboard_usable(page: Page, name: str = "") -> TabWalk:
    """Every interactive element is reachable with Tab and shows a visible focus indicator."""
    walk = await tab_walk(page)
    problems = walk.problems()
    assert not problems, f"keyboard problems on {name or page.url}:\n" + "\n".join(problems)
    return walk


async def press_by_keyboard(page: Page, target: Locator, key: str = "Enter", *, navigates: bool = True
                            ) -> Response | None:
    """Tab to ``target`` (a link, button or summary) and press ``key``; returns the response of the navigation
    (``navigates=False``: the key changes the page in place, e.g. opens a disclosure; returns None)."""
    await target.evaluate("el => el.dataset.e2eTarget = '1'")
    count = await page.evaluate("() => document.querySelectorAll('a[href], button, input, select, textarea, "
                                "summary, [tabindex]').length")
    for _ in range(2 * count + 6):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement?.dataset.e2eTarget === '1'"):
            if not navigates:
                await page.keyboard.press(key)
                return None
            async with page.expect_navigation() as navigation:
                await page.keyboard.press(key)
            return await navigation.value
    raise AssertionError(f"keyboard could not reach {target} on {page.url}")


def _typed_date(value: str) -> str:
    """What a person types into Chromium's US-English date field for an ISO date: month, day, year."""
    year, month, day = value.split("-")
    return f"{month}{day}{year}"


Label = str | re.Pattern[str]


def by_label(page: Page, label: Label) -> Locator:
    """The one form control with this visible label (exact text, or a regular expression)."""
    return page.get_by_label(label, exact=True) if isinstance(label, str) else page.get_by_label(label)


async def fill_by_keyboard(page: Page, values: Mapping[Label, str], submit: str) -> Response | None:
    """Fill the fields named by their visible labels and press the button named ``submit``, using only the
    keyboard: Tab to each field, type (or Space / arrow keys for check boxes and radio buttons, type-ahead
    for selects), then Tab to the button and press Enter. Returns the response of the navigation.

    A value for a check box is "on" or "off"; for a radio button, use the label of the option to choose.
    """
    fields = list(values.items())
    for index, (label, _value) in enumerate(fields):
        await by_label(page, label).evaluate(
            """(el, i) => {
                 el.dataset.e2eField = String(i);
                 if (el.type === 'radio' && el.name && el.form)
                   for (const r of el.form.querySelectorAll('input[type=radio]'))
                     if (r.name === el.name && r !== el) r.dataset.e2eGroup = String(i);
               }""", index)
    await page.get_by_role("button", name=submit, exact=True).evaluate("el => el.dataset.e2eField = 'submit'")
    focusable = await page.evaluate("() => document.querySelectorAll('a[href], button, input, select, textarea, "
                                    "summary, [tabindex]').length")
    pending = set(range(len(fields)))
    for _ in range(2 * focusable + 10):
        await page.keyboard.press("Tab")
        active = await page.evaluate("""() => { const a = document.activeElement;
            return a ? {field: a.dataset.e2eField ?? a.dataset.e2eGroup ?? null, type: (a.type || '').toLowerCase(),
                        checked: !!a.checked} : null; }""")
        if active is None or active["field"] is None:
            continue
        if active["field"] == "submit":
            if pending:
                continue  # go round again for the fields not reached yet
            async with page.expect_navigation() as navigation:
                await page.keyboard.press("Enter")
            return await navigation.value
        index = int(active["field"])
        if index not in pending:
            continue
        value = fields[index][1]
        await _enter(page, active, value, index)
        pending.discard(index)
    missing = [str(fields[i][0]) for i in sorted(pending)]
    raise AssertionError(f"keyboard could not reach {missing or [submit]} on {page.url}")


async def _enter(page: Page, active: Mapping[str, Any], value: str, index: int) -> None:
    kind = active["type"]
    if kind == "checkbox":
        if (value == "on") != active["checked"]:
            await page.keyboard.press("Space")
    elif kind == "radio":
        for _ in range(20):
            if await page.evaluate(f"() => document.querySelector('[data-e2e-field=\"{index}\"]').checked"):
                return
            await page.keyboard.press("ArrowDown")
        raise AssertionError(f"arrow keys never selected the radio button for {value!r}")
    elif kind == "date":
        await page.keyboard.type(_typed_date(value))
    elif kind.startswith("select"):
        await page.keyboard.type(value)
        chosen = await page.evaluate(f"() => document.querySelector('[data-e2e-field=\"{index}\"]')"
                                     ".selectedOptions[0]?.text")
        assert chosen == value, f"typing {value!r} into the list chose {chosen!r}"
    else:
        await page.keyboard.press("ControlOrMeta+a")
        await page.keyboard.type(value)
