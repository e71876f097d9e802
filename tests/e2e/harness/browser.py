"""Launching Debian's Chromium through Playwright, and the options every browser context gets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Playwright

# Debian's package; Playwright's own browser download is never used. PORTAL_E2E_CHROMIUM points elsewhere.
CHROMIUM = Path(os.environ.get("PORTAL_E2E_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
LOCALE = "en-US"


class BrowserMissing(RuntimeError):
    pass


def chromium_path() -> Path:
    path = CHROMIUM if CHROMIUM.is_absolute() else Path(shutil.which(str(CHROMIUM)) or CHROMIUM)
    if not path.exists():
        raise BrowserMissing(f"Chromium not found at {path}: `./stack test` installs Debian's chromium package")
    return path


async def launch_chromium(playwright: Playwright) -> Browser:
    """One headless Chromium. Playwright gives each launch a new, empty profile in a temporary directory
    and removes it on close, so nothing carries over between runs."""
    return await playwright.chromium.launch(executable_path=str(chromium_path()), args=LAUNCH_ARGS,
                                            headless=True)


def context_options(base_url: str, *, javascript: bool = True, **extra: Any) -> dict[str, Any]:
    """What every context starts from: desktop width, US English, the app as base URL (so `page.goto("/auth/login")`
    works). The CSP is never bypassed: pages are tested exactly as served."""
    return {"base_url": base_url, "viewport": dict(DESKTOP), "locale": LOCALE, "java_script_enabled": javascript,
            **extra}
