"""Composition root: builds the one ASGI app and hands each part what it needs.

Nothing else in the project creates clients or reads settings globally; everything lives on
`app.state` or is passed in from here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from smart_auth.keys import KeyStore, derive_secret

from .access import AccessChecker
from .caller import TokenVerifier, redis_revocation_check
from .capability import capability_statement
from .idempotency import IdempotencyStore
from .links import LinkRewriter
from .request_context import install_request_context
from .routes import AccessAudit, Gateway, build_fhir_router
from .settings import GatewaySettings
from .upstream import Upstream, make_client
from .writes import PatientWrites

log = logging.getLogger("fhir_gateway")


def make_redis(url: str) -> aioredis.Redis:
    # Short socket timeouts: a dead Redis must fail fast so the gateway can fall back, not hang.
    return aioredis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry_on_timeout=False,
        health_check_interval=10,
        decode_responses=False,
    )


async def _redis_ok(redis: aioredis.Redis) -> bool:
    try:
        return bool(await redis.ping())
    except Exception:  # any Redis failure means "not ready"; the reason is logged, not leaked
        log.warning("redis ping failed", exc_info=False)
        return False


def create_app(settings: GatewaySettings | None = None, *, access_audit: AccessAudit | None = None) -> FastAPI:
    """Build the app. `access_audit` replaces the audit recorder (unit tests only)."""
    settings = settings or GatewaySettings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyStore.load_or_create(settings.state_dir / "signing-key.pem")
    metrics = CollectorRegistry()
    http = make_client(
        settings.fhir_base_url,
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=settings.upstream_max_connections,
    )
    redis = make_redis(settings.redis_url)
    upstream = Upstream(http, settings.fhir_base_url, retries=settings.upstream_retries)
    public_base = settings.fhir_public_base
    if access_audit is None:
        from .audit_binding import GatewayAudit, make_recorder

        access_audit = GatewayAudit(make_recorder(redis, settings.state_dir))
    gateway = Gateway(
        upstream=upstream,
        verifier=TokenVerifier(
            keys.verification_keys(), redis_revocation_check(redis), issuer=settings.public_url, audience=public_base
        ),
        checker=AccessChecker(strict_search=settings.strict_search),
        links=LinkRewriter(settings.fhir_base_url, public_base, derive_secret(keys, "page-links")),
        writes=PatientWrites(upstream),
        idempotency=IdempotencyStore(redis),
        audit=access_audit,
        public_base=public_base,
        max_body_bytes=settings.max_body_bytes,
        capability=lambda: capability_statement(settings.public_url, "0.1.0"),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()
            await redis.aclose()

    app = FastAPI(
        title="SMART-on-FHIR patient portal gateway",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.metrics = metrics
    app.state.upstream = upstream
    app.state.redis = redis
    app.state.gateway = gateway
    install_request_context(app, settings.cors_allow_origins)

    app.include_router(build_fhir_router(gateway))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        ehr = await request.app.state.upstream.ping()
        redis = await _redis_ok(request.app.state.redis)
        body = {
            "status": "ready" if ehr and redis else "unavailable",
            "checks": {"ehr": "up" if ehr else "down", "redis": "up" if redis else "down"},
        }
        return JSONResponse(body, status_code=200 if ehr and redis else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics_endpoint() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return app
