"""One composed settings object: a shared value set once moves every part that depends on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cache.settings import KEY_FILE, build_cipher
from fhir_gateway.settings import PortalSettings


def test_state_dir_given_in_code_moves_every_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_STATE_DIR", str(tmp_path / "from-env"))
    settings = PortalSettings.load(state_dir=tmp_path / "given")
    assert settings.audit.spool_path == tmp_path / "given" / "audit-spool.jsonl"
    assert settings.accounts.state_dir == tmp_path / "given"
    build_cipher(settings.cache)
    assert (tmp_path / "given" / KEY_FILE).exists()
    assert not (tmp_path / "from-env").exists()


def test_shared_values_come_from_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://portal.example.org")
    settings = PortalSettings.load(redis_url="redis://10.0.0.5:6379/2")
    assert settings.core.fhir_public_base == "https://portal.example.org/fhir"
    assert settings.auth.public_url == settings.accounts.public_url == settings.audit.public_url
    assert settings.auth.redis_url == settings.audit.redis_url == "redis://10.0.0.5:6379/2"


def test_replace_changes_a_section_but_never_a_shared_value() -> None:
    settings = PortalSettings.load().replace(gateway={"strict_search": False})
    assert settings.gateway.strict_search is False
    with pytest.raises(ValueError):
        settings.replace(core={"public_url": "http://elsewhere"})
