"""A browser's User-Agent in words ("Firefox on Windows"), for the person's list of signed-in sessions.

The words are kept with the session in English when it opens (`describe_device`), and put in the reader's
language each time the list is shown (`device_words`), so a later switch of language changes them too.
"""

from __future__ import annotations

import re

from locales import N_, gettext_in

WEB_BROWSER = N_("A web browser")
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", N_("an iPhone")), ("iPad", N_("an iPad")), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", N_("a Mac")), ("Macintosh", N_("a Mac")), ("CrOS", N_("a Chromebook")), ("Linux", "Linux"))
ON = N_("%(browser)s on %(system)s")
_KNOWN_BROWSERS = {name for _, name in _BROWSERS} | {WEB_BROWSER}
_KNOWN_SYSTEMS = {name for _, name in _SYSTEMS}
_STORED = re.compile(r"(?P<browser>.+?) on (?P<system>.+)")


def describe_device(user_agent: str | None) -> str:
    """The device in English, as kept with the session."""
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), WEB_BROWSER)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    return f"{browser} on {system}" if system else browser


def device_words(described: str, locale: str) -> str:
    """A device as `describe_device` kept it, in `locale` (anything else is shown as it was kept)."""
    found = _STORED.fullmatch(described)
    if found and found["browser"] in _KNOWN_BROWSERS and found["system"] in _KNOWN_SYSTEMS:
        return gettext_in(locale, ON) % {"browser": gettext_in(locale, found["browser"]),
                                         "system": gettext_in(locale, found["system"])}
    return gettext_in(locale, described) if described == WEB_BROWSER else described
