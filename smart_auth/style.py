"""The SMART style document (`smart_style_url`): the portal's own colours, fonts and sizes, read from the
one stylesheet (`web/static/site.css`) so an embedded app matches the portal and never drifts from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from web.static import STATIC_DIR

_PROPERTY = re.compile(r"--([a-z-]+)\s*:\s*([^;]+);")
_BODY_FONT = re.compile(r"\bbody\s*\{[^}]*font-family:\s*([^;]+);[^}]*font-size:\s*([^;]+);", re.S)
ROOT_FONT_PX = 16


def _px(value: str) -> str:
    value = value.strip()
    if value.endswith("rem"):
        return f"{float(value[:-3]) * ROOT_FONT_PX:g}px"
    return value


def smart_style(css: str) -> dict[str, Any]:
    """SMART App Launch style properties from the stylesheet's custom properties and body rule."""
    props = {name: value.strip() for name, value in _PROPERTY.findall(css)}
    body = _BODY_FONT.search(css)
    font_family, font_size = (body.group(1).strip(), body.group(2).strip()) if body else ("sans-serif", "1rem")
    return {
        "color_background": props["paper"],
        "color_error": props["bad"],
        "color_highlight": props["brand"],
        "color_modal_backdrop": props["wash"],
        "color_success": props["ok"],
        "color_text": props["ink"],
        "dim_border_radius": _px(props["radius"]),
        "dim_font_size": _px(font_size),
        "dim_spacing_size": _px(props["gap"]),
        "font_family_body": font_family,
        "font_family_heading": font_family,
    }


def portal_style() -> dict[str, Any]:
    return smart_style((Path(STATIC_DIR) / "site.css").read_text(encoding="utf-8"))
