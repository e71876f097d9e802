"""`portal-auth`: register SMART clients and create EHR launch contexts from the command line.

    portal-auth client add --name "My app" --redirect-uri http://127.0.0.1:9000/cb [--confidential | --jwks FILE]
                           [--jwks-uri URL] [--scope "patient/*.rs openid fhirUser"] [--post]
    portal-auth client list
    portal-auth client remove CLIENT_ID
    portal-auth launch create --patient pt-0001 [--encounter enc-1] [--fhir-user Practitioner/prac-01]
    portal-auth invite --patient pt-0001 [--email ...]      (enrolment link for a patient)
    portal-auth staff add --username ... --practitioner prac-01
    portal-auth proxy link --patient pt-0001 --related-person ID --caregiver-username ...
    portal-auth keys list | rotate [--keep SECONDS] [--alg ES256|RS256]   (token signing keys)

Connects to Redis at PORTAL_REDIS_URL; keys live in PORTAL_STATE_DIR. A client secret is printed once and
never stored in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from .clients import NONE_AUTH, PRIVATE_KEY_JWT, SECRET_BASIC, SECRET_POST, ClientStore
from .keys import ACCESS_TOKEN_ALG, ID_TOKEN_ALG, KeyStore, SigningKey
from .launch import LaunchContext, LaunchStore
from .settings import AuthSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="portal-auth", description="Manage SMART clients and launch contexts")
    sub = p.add_subparsers(dest="area", required=True)

    client = sub.add_parser("client", help="client registrations").add_subparsers(dest="action", required=True)
    add = client.add_parser("add", help="register a client")
    add.add_argument("--name", required=True)
    add.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris")
    kind = add.add_mutually_exclusive_group()
    kind.add_argument("--confidential", action="store_true", help="symmetric client with a generated secret")
    kind.add_argument("--jwks", type=Path, help="file with the client's public JWK Set (private_key_jwt)")
    kind.add_argument("--jwks-uri", help="URL of the client's JWK Set (private_key_jwt)")
    add.add_argument("--post", action="store_true", help="secret sent as client_secret_post instead of basic")
    add.add_argument("--scope", help="space-separated scopes the client may ask for (default: any)")
    add.add_argument("--client-id", help="choose the client_id instead of a random one")
    client.add_parser("list", help="list registered clients")
    rm = client.add_parser("remove", help="remove a client")
    rm.add_argument("client_id")

    launch = sub.add_parser("launch", help="EHR launch contexts").add_subparsers(dest="action", required=True)
    create = launch.add_parser("create", help="create a launch context and print its id")
    create.add_argument("--patient", required=True)
    create.add_argument("--encounter")
    create.add_argument("--fhir-user")
    keys = sub.add_parser("keys", help="token signing keys").add_subparsers(dest="action", required=True)
    keys.add_parser("list", help="the published keys (active and retired)")
    rotate = keys.add_parser("rotate", help="new active keys; the old ones stay published until their tokens expire")
    rotate.add_argument("--keep", type=int, help="seconds the old keys stay published (default: token lifetime + 300)")
    rotate.add_argument("--alg", choices=[ACCESS_TOKEN_ALG, ID_TOKEN_ALG], action="append",
                        help="rotate only this algorithm's key (default: both)")
    # Accounts: invite, staff add, proxy link (each subcommand carries its own `func`).
    from .accounts.cli import register_cli

    register_cli(sub)
    return p


async def _run(args: argparse.Namespace, settings: AuthSettings) -> dict[str, Any] | list[Any]:
    redis = aioredis.from_url(settings.redis_url, socket_connect_timeout=3.0)
    try:
        clients = ClientStore(redis, jwks_uri_allow_remote=settings.jwks_uri_allow_remote)
        if args.area == "client" and args.action == "add":
            jwks = json.loads(args.jwks.read_text()) if args.jwks else None
            if jwks or args.jwks_uri:
                method = PRIVATE_KEY_JWT
            elif args.confidential:
                method = SECRET_POST if args.post else SECRET_BASIC
            else:
                method = NONE_AUTH
            grant_types = ["authorization_code", "refresh_token"] if args.redirect_uris else ["client_credentials"]
            if method == PRIVATE_KEY_JWT and args.redirect_uris:
                grant_types.append("client_credentials")
            if not args.redirect_uris and method != PRIVATE_KEY_JWT:
                raise ValueError("a client without --redirect-uri is a backend service and needs --jwks/--jwks-uri")
            client, secret = await clients.create(
                client_name=args.name, redirect_uris=args.redirect_uris, token_endpoint_auth_method=method,
                grant_types=grant_types, scope=args.scope, jwks=jwks, jwks_uri=args.jwks_uri,
                client_id=args.client_id,
            )
            out = client.public_metadata()
            if secret:
                out["client_secret"] = secret
            return out
        if args.area == "client" and args.action == "list":
            return [c.public_metadata() for c in await clients.list()]
        if args.area == "client" and args.action == "remove":
            return {"removed": await clients.remove(args.client_id), "client_id": args.client_id}
        if args.area == "launch" and args.action == "create":
            store = LaunchStore(redis, ttl=settings.launch_ttl)
            launch_id = await store.create(
                LaunchContext(patient=args.patient, encounter=args.encounter, fhir_user=args.fhir_user,
                              created_by="cli")
            )
            return {"launch": launch_id, "expires_in": settings.launch_ttl}
        raise ValueError("unknown command")
    finally:
        await redis.aclose()


def _key_info(key: SigningKey) -> dict[str, Any]:
    return {"kid": key.kid, "alg": key.alg, "status": "active" if key.drop_at is None else "retired",
            **({"published_until": int(key.drop_at)} if key.drop_at is not None else {})}


def _keys(args: argparse.Namespace, settings: AuthSettings) -> list[dict[str, Any]]:
    store = KeyStore.load_or_create(settings.state_dir / "signing-key.pem")
    if args.action == "rotate":
        keep = args.keep if args.keep is not None else settings.access_token_ttl + 300
        if keep < settings.access_token_ttl:
            raise ValueError(f"--keep must be at least the token lifetime ({settings.access_token_ttl} s)")
        store.rotate(keep, tuple(args.alg or (ACCESS_TOKEN_ALG, ID_TOKEN_ALG)))
    store.public_jwks()
    return [_key_info(k) for k in store.published()]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "func", None) is not None:
        return int(args.func(args) or 0)
    try:
        settings = AuthSettings()
        result = _keys(args, settings) if args.area == "keys" else asyncio.run(_run(args, settings))
    except (ValueError, OSError) as exc:
        print(f"portal-auth: {exc}", file=sys.stderr)
        return 2
    except aioredis.RedisError as exc:
        print(f"portal-auth: Redis is not reachable ({type(exc).__name__})", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
