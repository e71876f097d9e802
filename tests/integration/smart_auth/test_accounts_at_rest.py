"""Account data at rest: nothing readable as personal data in Redis, and the one-off migration of records
written in clear by older releases (`portal-auth accounts encrypt`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag

from smart_auth.accounts.models import AccountRecord, ProxyLink
from smart_auth.accounts.secrets_box import SecretBox
from smart_auth.accounts.store import AccountStore
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

REDIS_DB = 7
NAME, EMAIL, USERNAME, PHONE = "Alma Rosenthal", "alma.rosenthal@example.org", "alma.rosenthal", "+15551234567"


async def everything_stored(redis: aioredis.Redis) -> str:
    """Every key and every value in the database, as text (hashes and sets included)."""
    parts: list[str] = []
    async for key in redis.scan_iter(count=500):
        parts.append(key.decode())
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append((await redis.get(key) or b"").decode(errors="replace"))
        elif kind == "hash":
            parts += [f"{k.decode()}={v.decode(errors='replace')}" for k, v in (await redis.hgetall(key)).items()]
        elif kind == "set":
            parts += [m.decode(errors="replace") for m in await redis.smembers(key)]
    return "\n".join(parts)


def assert_nothing_personal(dump: str) -> None:
    for secret in (NAME, EMAIL, USERNAME, PHONE, "Alma", "Rosenthal"):
        assert secret.casefold() not in dump.casefold(), f"{secret!r} readable in Redis"


@pytest.fixture
async def redis(redis_server: Any) -> Any:
    client = aioredis.from_url(f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_accounts_invitations_and_links_are_sealed(redis: aioredis.Redis, tmp_path: Path) -> None:
    store = AccountStore(redis, SecretBox.load_or_create(tmp_path))
    record = await store.create(AccountRecord(id="", username=USERNAME, kind="patient", fhir_user="Patient/pt-9",
                                              patient_id="pt-9", password_hash="h", mfa_method="email",
                                              contact=EMAIL, display_name=NAME))
    await store.create_invitation(kind="caregiver", patient_id="pt-9", ttl_seconds=600, created_by="cli",
                                  email=EMAIL, phone=PHONE)
    await store.save_proxy(ProxyLink(id="l1", patient_id="pt-9", related_person_id="rp-1", status="active",
                                     caregiver_name=NAME, relationship="CHILD", caregiver_email=EMAIL,
                                     caregiver_account_id=record.id, patient_display=NAME))
    assert_nothing_personal(await everything_stored(redis))
    found = await store.record_by_username(USERNAME.upper())
    assert found is not None and found.contact == EMAIL and found.display_name == NAME
    assert not await store.username_available(USERNAME)
    assert (await store.get_proxy("l1")).caregiver_email == EMAIL
    # a sealed record moved to another key does not open there
    await redis.set("auth:account:stolen", await redis.get(f"auth:account:{record.id}"))
    with pytest.raises(InvalidTag):
        await store.get_record("stolen")


async def test_the_migration_seals_records_written_in_clear(redis: aioredis.Redis, tmp_path: Path,
                                                            redis_server: Any) -> None:
    legacy = {"id": "acct-old", "username": USERNAME, "kind": "patient", "fhir_user": "Patient/pt-9",
              "patient_id": "pt-9", "password_hash": "h", "mfa_method": "email", "contact": EMAIL,
              "display_name": NAME}
    await redis.set("auth:account:acct-old", json.dumps(legacy))
    await redis.set(f"auth:username:{USERNAME}", "acct-old")
    await redis.set("auth:invitation:inv-1", json.dumps({"id": "inv-1", "kind": "patient", "patient_id": "pt-9",
                                                        "code_hash": "x", "expires_at": 9e9, "created_at": 0,
                                                        "created_by": "cli", "email": EMAIL, "phone": PHONE}),
                    ex=3600)
    await redis.set("auth:proxy:l2", json.dumps({"id": "l2", "patient_id": "pt-9", "related_person_id": "rp",
                                                 "status": "active", "caregiver_name": NAME,
                                                 "relationship": "O", "caregiver_email": EMAIL}))
    store = AccountStore(redis, SecretBox.load_or_create(tmp_path))
    assert (await store.record_by_username(USERNAME)).id == "acct-old"  # readable before the migration

    env = {**os.environ, "PORTAL_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}",
           "PORTAL_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "smart_auth.cli", "accounts", "encrypt"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 accounts, 1 invitations, 1 proxy links, 1 usernames" in done.stdout

    assert_nothing_personal(await everything_stored(redis))
    assert 0 < await redis.ttl("auth:invitation:inv-1") <= 3600  # expiry kept
    found = await store.record_by_username(USERNAME)
    assert found is not None and found.id == "acct-old" and found.contact == EMAIL
    assert (await store.get_invitation("inv-1")).phone == PHONE
    assert (await store.get_proxy("l2")).caregiver_name == NAME
    again = await store.encrypt_existing()
    assert again == {"accounts": 0, "invitations": 0, "proxy_links": 0, "usernames": 0}
