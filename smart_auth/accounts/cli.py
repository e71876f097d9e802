"""`portal-auth` subcommands for accounts: invite, staff add, proxy link, accounts encrypt.

`smart_auth/cli.py` calls `register_cli(subparsers)`; each subcommand sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from mappers.names import human_name

from ..deps import AuthDeps
from ..keys import KeyStore
from . import build_accounts
from .admin import create_patient_invitation
from .mfa import new_recovery_codes, new_totp_secret, provisioning_uri
from .models import AccountRecord, ProxyLink
from .passwords import password_problems
from .router import build_ctx
from .settings import AccountSettings

DepsFactory = Callable[[AccountSettings], AbstractAsyncContextManager[AuthDeps]]


class _CliEhr:
    """Just enough of the gateway's upstream client for the CLI (Patient/Practitioner/RelatedPerson)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                      content: bytes | None = None, headers: dict[str, str] | None = None,
                      request_id: str | None = None) -> httpx.Response:
        hdrs = {"Content-Type": "application/fhir+json", **(headers or {})} if json is not None else headers
        return await self.client.request(method, path.lstrip("/"), params=params, json=json, content=content,
                                         headers=hdrs)

    async def read(self, resource_type: str, resource_id: str, request_id: str | None = None) -> dict | None:
        response = await self.request("GET", f"{resource_type}/{resource_id}")
        if response.status_code in (404, 410):
            return None
        response.raise_for_status()
        return response.json()

    async def search(self, resource_type: str, params: Any, request_id: str | None = None) -> dict:
        response = await self.request("GET", resource_type, params=params)
        response.raise_for_status()
        return response.json()


class _FileAudit:
    """CLI-only audit sink: one JSON line per event in the state dir (the app uses the real audit sink)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __call__(self, kind: str, outcome: str, **fields: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"ts": time.time(), "kind": kind, "outcome": outcome, "source": "cli", **fields})
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class _NoGrants:
    async def revoke_for(self, account_id: str, patient_id: str | None = None, *,
                         keep_session: str | None = None) -> int:
        return 0


@asynccontextmanager
async def default_deps(settings: AccountSettings) -> AsyncIterator[AuthDeps]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    redis = aioredis.from_url(settings.redis_url, socket_connect_timeout=2.0)
    client = httpx.AsyncClient(base_url=settings.fhir_base_url.rstrip("/") + "/", timeout=15.0,
                               headers={"Accept": "application/fhir+json"})
    try:
        yield AuthDeps(
            redis=redis,
            keys=KeyStore.load_or_create(settings.state_dir / "signing-key.pem"),
            ehr=_CliEhr(client),
            audit=_FileAudit(settings.state_dir / "auth-cli-audit.jsonl"),
            public_url=settings.public_url,
            state_dir=settings.state_dir,
        )
    finally:
        await client.aclose()
        await redis.aclose()


def _print(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _run(coro: Any) -> int:
    try:
        return asyncio.run(coro)
    except (httpx.HTTPError, OSError, aioredis.RedisError) as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return 2


async def _with_ctx(args: argparse.Namespace, body: Callable[[Any], Any]) -> int:
    settings = AccountSettings()
    factory: DepsFactory = getattr(args, "deps_factory", None) or default_deps
    async with factory(settings) as deps:
        accounts = build_accounts(deps, settings)
        ctx = build_ctx(deps, settings, accounts.sessions, accounts.store, accounts.sender, _NoGrants())
        return await body(ctx)


async def _invite(args: argparse.Namespace) -> int:
    async def body(ctx: Any) -> int:
        try:
            invitation, code = await create_patient_invitation(
                ctx, None, patient_id=args.patient, created_by="cli", email=args.email, phone=args.phone
            )
        except LookupError:
            sys.stderr.write(f"error: Patient/{args.patient} is not known to the EHR\n")
            return 1
        _print(f"invitation: {invitation.id}")
        _print(f"code:       {code}")
        _print(f"link:       {ctx.deps.public_url.rstrip('/')}/auth/enroll?code={code}")
        _print(f"expires:    {time.strftime('%Y-%m-%d %H:%M', time.localtime(invitation.expires_at))}")
        return 0

    return await _with_ctx(args, body)


def _new_password() -> str:
    while True:
        candidate = f"{secrets.token_urlsafe(12)}-{secrets.randbelow(90) + 10}A!"
        if not password_problems(candidate):
            return candidate


async def _create_with_totp(ctx: Any, *, username: str, kind: str, fhir_user: str, password: str | None) -> int:
    password = password or _new_password()
    problems = password_problems(password, username)
    if problems:
        sys.stderr.write("error: " + " ".join(p.message for p in problems) + "\n")
        return 1
    if not await ctx.store.username_available(username):
        sys.stderr.write(f"error: username {username!r} is taken\n")
        return 1
    secret = new_totp_secret()
    await ctx.audit(None, "enrolment", "success", fhir_user=fhir_user, detail=f"kind={kind} via=cli")
    await ctx.audit(None, "mfa.setup", "success", fhir_user=fhir_user, detail="method=totp via=cli")
    record = await ctx.store.create(AccountRecord(
        id="", username=username, kind=kind, fhir_user=fhir_user, patient_id=None,
        password_hash=ctx.hashing.hash(password), mfa_method="totp", totp_secret_sealed=ctx.store.box.seal(secret),
    ))
    codes = new_recovery_codes(ctx.settings.recovery_code_count)
    await ctx.store.set_recovery_codes(record.id, codes)
    _print(f"account:     {record.id} ({kind}, {fhir_user})")
    _print(f"username:    {username}")
    _print(f"password:    {password}")
    _print(f"totp secret: {secret}")
    _print(f"otpauth uri: {provisioning_uri(secret, username, ctx.settings.totp_issuer)}")
    _print("recovery codes: " + " ".join(codes))
    return 0


async def _staff_add(args: argparse.Namespace) -> int:
    async def body(ctx: Any) -> int:
        practitioner = await ctx.deps.ehr.read("Practitioner", args.practitioner)
        if practitioner is None:
            sys.stderr.write(f"error: Practitioner/{args.practitioner} is not known to the EHR\n")
            return 1
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        return await _create_with_totp(ctx, username=args.username, kind="staff",
                                       fhir_user=f"Practitioner/{args.practitioner}", password=password)

    return await _with_ctx(args, body)


async def _proxy_link(args: argparse.Namespace) -> int:
    async def body(ctx: Any) -> int:
        resource = await ctx.deps.ehr.read("RelatedPerson", args.related_person)
        if resource is None or (resource.get("patient") or {}).get("reference") != f"Patient/{args.patient}":
            sys.stderr.write(
                f"error: RelatedPerson/{args.related_person} is not a caregiver of Patient/{args.patient}\n"
            )
            return 1
        record = await ctx.store.record_by_username(args.caregiver_username)
        if record is None:
            status = await _create_with_totp(ctx, username=args.caregiver_username, kind="caregiver",
                                             fhir_user=f"RelatedPerson/{args.related_person}", password=None)
            if status:
                return status
            record = await ctx.store.record_by_username(args.caregiver_username)
        if record is None or record.kind == "staff":
            sys.stderr.write("error: staff accounts cannot hold caregiver access\n")
            return 1
        name = human_name(resource)
        relationship = ((resource.get("relationship") or [{}])[0].get("coding") or [{}])[0].get("code", "O")
        await ctx.audit(None, "proxy.grant", "success", account_id=record.id, fhir_user=record.fhir_user,
                        patient_id=args.patient, detail=f"linked related_person={args.related_person} via=cli")
        link = ProxyLink(id=secrets.token_hex(16), patient_id=args.patient, related_person_id=args.related_person,
                         status="active", caregiver_name=name or "caregiver", relationship=relationship,
                         caregiver_account_id=record.id)
        await ctx.store.save_proxy(link)
        _print(f"linked {args.caregiver_username} → Patient/{args.patient} via RelatedPerson/{args.related_person}")
        return 0

    return await _with_ctx(args, body)


async def _encrypt_existing(args: argparse.Namespace) -> int:
    async def body(ctx: Any) -> int:
        counts = await ctx.store.encrypt_existing()
        _print("sealed: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()))
        return 0

    return await _with_ctx(args, body)


def register_cli(subparsers: Any, *, deps_factory: DepsFactory | None = None) -> None:
    """Add `invite`, `staff add`, `proxy link` and `accounts encrypt` to `portal-auth`."""
    invite = subparsers.add_parser("invite", help="invite a patient to enrol (prints the one-time link)")
    invite.add_argument("--patient", required=True, help="Patient id in the EHR, e.g. pt-0001")
    invite.add_argument("--email", help="also send the link to this address (outbox)")
    invite.add_argument("--phone", help="also send the link by SMS (outbox)")
    invite.set_defaults(func=lambda a: _run(_invite(a)), deps_factory=deps_factory)

    staff = subparsers.add_parser("staff", help="staff accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="create a staff account (prints password and TOTP set-up)")
    add.add_argument("--username", required=True)
    add.add_argument("--practitioner", required=True, help="Practitioner id in the EHR, e.g. prac-01")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (else generated)")
    add.set_defaults(func=lambda a: _run(_staff_add(a)), deps_factory=deps_factory)

    proxy = subparsers.add_parser("proxy", help="caregiver (proxy) access")
    proxy_sub = proxy.add_subparsers(dest="proxy_command", required=True)
    link = proxy_sub.add_parser("link", help="link an existing RelatedPerson to a caregiver account (demo data)")
    link.add_argument("--patient", required=True)
    link.add_argument("--related-person", required=True)
    link.add_argument("--caregiver-username", required=True, help="created (with TOTP) when it does not exist")
    link.set_defaults(func=lambda a: _run(_proxy_link(a)), deps_factory=deps_factory)

    accounts = subparsers.add_parser("accounts", help="account records")
    accounts_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    encrypt = accounts_sub.add_parser("encrypt", help="one-off: seal account records written in clear by older "
                                      "releases and re-key the username index (safe to repeat)")
    encrypt.set_defaults(func=lambda a: _run(_encrypt_existing(a)), deps_factory=deps_factory)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m smart_auth.accounts.cli`); `portal-auth` carries the same commands."""
    parser = argparse.ArgumentParser(prog="portal-auth")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
