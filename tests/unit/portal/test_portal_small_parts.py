"""The portal's small pure parts: sealed sessions, where sign-in may send a person, devices in words."""

from __future__ import annotations

from pathlib import Path

from portal.devices import describe_device
from portal.safe_next import safe_next
from portal.token_box import TokenBox


def test_sealed_values_open_only_under_their_own_key_and_place(tmp_path: Path) -> None:
    box = TokenBox.load_or_create(tmp_path)
    assert (tmp_path / "portal-session-key").stat().st_mode & 0o777 == 0o600
    sealed = box.seal(b"eyJ.secret.token", "portal:session:a")
    assert b"eyJ" not in sealed
    assert box.open(sealed, "portal:session:a") == b"eyJ.secret.token"
    assert box.open(sealed, "portal:session:b") is None  # copied under another session's key
    assert box.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "portal:session:a") is None  # tampered
    assert TokenBox.load_or_create(tmp_path).open(sealed, "portal:session:a") == b"eyJ.secret.token"  # restart
    assert TokenBox(b"z" * 32).open(sealed, "portal:session:a") is None


def test_after_sign_in_a_person_only_goes_to_portal_pages() -> None:
    assert safe_next("/portal/results?month=2026-01") == "/portal/results?month=2026-01"
    for bad in ("", None, "https://evil.example/portal/", "//evil.example/portal/", "/auth/token",
                "/portal/../auth/x", "/portal/callback?code=x", "/portal/login", "\\\\evil", "/portal/\nx"):
        assert safe_next(bad) == "/portal/", bad


def test_devices_in_words() -> None:
    assert describe_device("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/130.0 Safari/537.36 Edg/130.0") == "Edge on Windows"
    assert describe_device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                           "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1") == "Safari on an iPhone"
    assert describe_device("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0") == \
        "Firefox on Linux"
    assert describe_device(None) == "A web browser"
