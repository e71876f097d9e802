"""Composition root: builds the one ASGI app and hands each part what it needs.

Nothing else in the project creates clients or reads settings globally; everything lives on
`app.state` or is passed in from here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from audit.exporter import AuditExporter
from audit.settings import AuditSettings
from cache import CacheSettings, ResponseCache, build_cache, build_change_feed
from smart_auth.accounts import AccountSettings, build_accounts
from smart_auth.deps import AuthDeps
from smart_auth.keys import KeyStore, derive_secret
from smart_auth.router import build_auth_router, build_auth_server
from smart_auth.settings import AuthSettings

from .access import AccessChecker
from .access_log_api import build_access_log_router
from .audit_binding import AuthAudit, GatewayAudit, background_audit, make_recorder
from .caching import GatewayCache
from .caller import TokenVerifier, redis_revocation_check
from .capability import capability_statement
from .compartment import patients_of
from .idempotency import IdempotencyStore
from .links import LinkRewriter
from .metrics import PortalCollector
from .request_context import install_request_context
from .routes import AccessAudit, Gateway, build_fhir_router
from .settings import GatewaySettings
from .upstream import Upstream, make_client
from .writes import PatientWrites

log = logging.getLogger("fhir_gateway")
VERSION = "0.1.0"


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


async def _cache_state(cache: ResponseCache | None) -> str:
    if cache is None:
        return "disabled"
    return "up" if await _redis_ok(cache.redis) else "down"


def create_app(settings: GatewaySettings | None = None, *, access_audit: AccessAudit | None = None) -> FastAPI:
    """Build the app. `access_audit` replaces the audit recorder (unit tests only)."""
    settings = settings or GatewaySettings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    audit_settings = AuditSettings()
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

    # Cache: its own Redis (allkeys-lru), so eviction can never touch auth or audit data.
    cache_settings = CacheSettings()
    response_cache = build_cache(cache_settings) if cache_settings.cache_enabled else None
    change_feed = (
        build_change_feed(cache_settings, upstream, response_cache, compartments_of=patients_of)
        if response_cache is not None
        else None
    )

    # Audit: one recorder (Redis stream, spool fallback) behind both the FHIR and the auth hooks.
    event_context = audit_settings.event_context()
    recorder = make_recorder(redis, audit_settings)
    access_audit = access_audit or GatewayAudit(recorder, event_context)
    exporter = (
        AuditExporter(
            redis, upstream, stream=audit_settings.audit_stream, group=audit_settings.audit_export_group,
            consumer=audit_settings.audit_export_consumer, batch_size=audit_settings.audit_export_batch_size,
            idle_interval=audit_settings.audit_export_interval, backoff_max=audit_settings.audit_export_backoff_max,
            claim_idle=audit_settings.audit_export_claim_idle, context=event_context,
        )
        if settings.audit_export
        else None
    )

    # smart_auth: the OAuth server first, because accounts revoke grants through its GrantStore.
    deps = AuthDeps(redis=redis, keys=keys, ehr=upstream, audit=AuthAudit(recorder, event_context),
                    public_url=settings.public_url, state_dir=settings.state_dir)
    auth_settings = AuthSettings()
    accounts = build_accounts(deps, AccountSettings())
    auth_server = build_auth_server(deps, auth_settings, accounts.sessions, accounts.store)
    accounts.sessions.on_end = auth_server.grants.revoke_for_session

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
        capability=lambda: capability_statement(settings.public_url, VERSION),
        cache=GatewayCache(response_cache, serve_stale=settings.cache_serve_stale),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(http.aclose)
            stack.push_async_callback(redis.aclose)
            await stack.enter_async_context(background_audit(recorder, exporter, audit_settings))
            if response_cache is not None:
                stack.push_async_callback(response_cache.redis.aclose)
            if change_feed is not None:
                change_feed.start()
                stack.push_async_callback(change_feed.stop)
            yield

    app = FastAPI(
        title="SMART-on-FHIR patient portal gateway",
        version=VERSION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.metrics = metrics
    metrics.register(PortalCollector(response_cache, change_feed, recorder))
    app.state.upstream = upstream
    app.state.redis = redis
    app.state.gateway = gateway
    app.state.response_cache = response_cache
    app.state.change_feed = change_feed
    app.state.audit_recorder = recorder
    app.state.auth_server = auth_server
    app.state.accounts = accounts
    install_request_context(app, settings.cors_allow_origins)

    app.include_router(build_auth_router(deps, auth_settings, accounts.sessions, accounts.store, server=auth_server))
    app.include_router(accounts.router(auth_server.grants))
    app.include_router(build_fhir_router(gateway))
    app.include_router(build_access_log_router(verifier=gateway.verifier, checker=gateway.checker, ehr=upstream,
                                               audit=gateway.audit, clients=auth_server.clients))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        ehr = await upstream.ping()
        redis_up = await _redis_ok(redis)
        body: dict[str, Any] = {
            "status": "ready" if ehr and redis_up else "unavailable",
            "checks": {"ehr": "up" if ehr else "down", "redis": "up" if redis_up else "down",
                       # The cache is optional: without it we serve uncached, so it never fails readiness.
                       "cache": await _cache_state(response_cache)},
        }
        if change_feed is not None:
            body["change_feed"] = change_feed.status()
        return JSONResponse(body, status_code=200 if ehr and redis_up else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics_endpoint() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return app
