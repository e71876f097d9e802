"""The signed-in account pages as the account tests use them (English and Spanish alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smart_auth.keys import KeyStore

from .test_account_security import Site


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.load_or_create(tmp_path_factory.mktemp("keys") / "signing-key.pem")


@pytest.fixture
async def site(tmp_path: Path, keys: KeyStore) -> AsyncIterator[Site]:
    yield Site(tmp_path, keys)
