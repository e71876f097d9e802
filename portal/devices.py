"""A browser's User-Agent in words ("Firefox on Windows"), for the person's list of signed-in sessions."""

from __future__ import annotations

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "an iPhone"), ("iPad", "an iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "a Mac"), ("Macintosh", "a Mac"), ("CrOS", "a Chromebook"), ("Linux", "Linux"))


def describe_device(user_agent: str | None) -> str:
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), "A web browser")
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    return f"{browser} on {system}" if system else browser
