"""Composition root: builds the one ASGI app from one `PortalSettings` and hands each part what it needs.

Nothing else in the project creates clients or reads settings globally. `create_app` takes the settings
whole; the parts a test may replace (the audit sink, the revocation look-up) are keyword arguments.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from audit.recorder import AuditRecorder
from audit.workers import AuditWorkers
from cache import ResponseCache, build_cache, build_change_feed
from cache.changefeed import ChangeFeed
from notifications import AccountRecipients, Notifications
from payments import PaymentProvider, load_provider
from portal import Portal, PortalDeps, build_portal_router
from smart_auth.accounts import Accounts, build_accounts
from smart_auth.accounts.staff_invitations import NoticeMailer
from smart_auth.deps import AuthDeps
from smart_auth.grants import GrantStore
from smart_auth.keys import KeyStore, derive_secret
from smart_auth.router import build_auth_router, build_auth_server
from smart_auth.scopes import Interaction
from smart_auth.server import AuthServer
from staff import StaffArea, StaffDeps, build_staff_router
from web import SecurityHeadersMiddleware, mount_static

from .access import AccessChecker
from .access_log_api import build_access_log_router
from .audit_binding import AuthAudit, GatewayAudit, background_audit, make_recorder
from .audit_metrics import AuditBacklog
from .caching import GatewayCache
from .caller import RevocationCheck, TokenVerifier, redis_revocation_check
from .capability import capability_statement
from .care_teams import CareTeams
from .client_address import SECRET_LABEL, ClientAddress
from .clients import audit_repository_of, ehr_upstream, make_redis
from .compartment import patients_of
from .fast_lane import FhirFastLane, LaneFirstApp
from .gateway import Gateway
from .idempotency import IdempotencyStore
from .links import LinkRewriter
from .metrics import PortalCollector
from .pipeline import AccessAudit
from .policy import CREATE, POLICIES, UPDATE
from .request_context import install_request_context
from .routes import build_fhir_router
from .search import SearchLimits
from .service_metrics import ServiceCollector, ServiceMetrics
from .settings import PortalSettings
from .upstream import Upstream
from .writes import Writes

log = logging.getLogger("fhir_gateway")
VERSION = "0.1.0"
# Swagger UI (development only) loads its script and styles from its own CDN and runs inline code.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "frame-ancestors 'none'")


async def _redis_ok(redis: aioredis.Redis) -> bool:
    try:
        return bool(await redis.ping())
    except Exception:  # any Redis failure means "not ready"; the reason is logged, not leaked
        log.warning("redis ping failed", exc_info=False)
        return False


@dataclass
class Parts:
    """The long-lived objects of one app, built once; the lifespan starts and closes them."""

    settings: PortalSettings
    keys: KeyStore
    redis: aioredis.Redis
    upstream: Upstream
    recorder: AuditRecorder
    audit_repository: Upstream | None  # the EHR's client, a separate repository's, or None (export off)
    audit_workers: AuditWorkers
    response_cache: ResponseCache | None
    change_feed: ChangeFeed | None
    payments: PaymentProvider

    @classmethod
    def build(cls, settings: PortalSettings) -> Parts:
        core, gw = settings.core, settings.gateway
        core.state_dir.mkdir(parents=True, exist_ok=True)
        upstream = ehr_upstream(settings)
        redis = make_redis(core.redis_url)
        # The cache has its own Redis (allkeys-lru), so eviction can never touch auth or audit data.
        response_cache = build_cache(settings.cache) if settings.cache.cache_enabled else None
        change_feed = (build_change_feed(settings.cache, upstream, response_cache, compartments_of=patients_of)
                       if response_cache is not None else None)
        recorder = make_recorder(redis, settings.audit)
        audit_repository = audit_repository_of(settings, upstream)
        audit_workers = AuditWorkers.build(redis, settings.audit, audit_repository)
        keys = KeyStore.load_or_create(core.state_dir / "signing-key.pem")
        return cls(settings, keys, redis, upstream, recorder, audit_repository, audit_workers, response_cache,
                   change_feed, load_provider(gw.payment_provider))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.upstream.client.aclose)
            stack.push_async_callback(self.redis.aclose)
            if self.audit_repository is not None and self.audit_repository is not self.upstream:
                stack.push_async_callback(self.audit_repository.client.aclose)
            await stack.enter_async_context(background_audit(
                self.recorder, self.audit_workers, self.settings.audit, move_stream=self.settings.gateway.audit_export))
            if self.response_cache is not None:
                stack.push_async_callback(self.response_cache.redis.aclose)
            if self.change_feed is not None:
                self.change_feed.start()
                stack.push_async_callback(self.change_feed.stop)
            yield


def _build_auth(parts: Parts) -> tuple[AuthServer, Accounts]:
    """smart_auth: one GrantStore shared by the OAuth server and the accounts (a session that ends
    revokes the grants made in it)."""
    settings = parts.settings
    deps = AuthDeps(redis=parts.redis, keys=parts.keys, ehr=parts.upstream,
                    audit=AuthAudit(parts.recorder, settings.audit.event_context()),
                    public_url=settings.core.public_url, state_dir=settings.core.state_dir)
    grants = GrantStore(parts.redis, access_token_ttl=settings.auth.access_token_ttl)
    accounts = build_accounts(deps, settings.accounts, on_session_end=grants.revoke_for_session)
    server = build_auth_server(deps, settings.auth, accounts.sessions, accounts.store, grants=grants,
                               patient_writes=patient_write_scopes())
    return server, accounts


def patient_write_scopes() -> dict[str, frozenset[Interaction]]:
    """The gateway's patient write rules as scope letters: patients are granted no more than these."""
    letters = {CREATE: Interaction.CREATE, UPDATE: Interaction.UPDATE}
    return {name: frozenset(letters[w] for w in policy.patient_writes)
            for name, policy in POLICIES.items() if policy.patient_writes}


def _build_gateway(parts: Parts, access_audit: AccessAudit, revocation: RevocationCheck) -> Gateway:
    core, gw = parts.settings.core, parts.settings.gateway
    public_base = core.fhir_public_base
    return Gateway(
        upstream=parts.upstream,
        verifier=TokenVerifier(parts.keys.verification_keys(), revocation, issuer=core.public_url,
                               audience=public_base),
        checker=AccessChecker(strict_search=gw.strict_search, ehr=parts.upstream,
                              limits=SearchLimits(gw.max_search_params, gw.max_search_values),
                              care_teams=CareTeams(parts.upstream, ttl=gw.care_team_ttl_seconds)),
        links=LinkRewriter(core.fhir_base_url, public_base, derive_secret(parts.keys, "page-links")),
        writes=Writes(parts.upstream, payments=parts.payments,
                      change_notice_hours=core.appointment_change_notice_hours),
        idempotency=IdempotencyStore(parts.redis),
        audit=access_audit,
        public_base=public_base,
        max_body_bytes=gw.max_body_bytes,
        max_message_body_bytes=gw.max_message_body_bytes,
        capability=lambda: capability_statement(core.public_url, VERSION),
        cache=GatewayCache(parts.response_cache, serve_stale=gw.cache_serve_stale),
    )


def create_app(settings: PortalSettings | None = None, *, access_audit: AccessAudit | None = None,
               revocation_check: RevocationCheck | None = None) -> FastAPI:
    """Build the app. ``access_audit`` and ``revocation_check`` replace the real audit sink and
    revocation look-up (unit tests only)."""
    settings = settings or PortalSettings.load()
    parts = Parts.build(settings)
    auth_server, accounts = _build_auth(parts)
    gateway = _build_gateway(
        parts,
        access_audit or GatewayAudit(parts.recorder, settings.audit.event_context()),
        revocation_check or redis_revocation_check(parts.redis),
    )

    # Notices are addressed to accounts and patients, whose addresses and choices the account store keeps; a
    # patient's language, when they never chose one, is the one their record prefers.
    notifications = Notifications(parts.redis, settings.notifications,
                                  AccountRecipients(accounts.store, ehr=parts.upstream), ehr=parts.upstream)
    accounts.notices = notifications
    if parts.change_feed is not None:  # results made final in the EHR are announced (no cache: no feed, no notice)
        parts.change_feed.subscribe(notifications.results_released)
    portal: Portal | None = None
    staff: StaffArea | None = None
    service_metrics = ServiceMetrics(parts.upstream, parts.audit_workers.store, ZoneInfo(settings.portal.timezone),
                                     max_age=settings.gateway.service_figures_max_age)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with parts.running(), notifications.running():
            if portal is not None:
                await portal.start()
            if staff is not None:
                await staff.start()
            try:
                yield
            finally:
                await service_metrics.close()
                if portal is not None:
                    await portal.close()
                if staff is not None:
                    await staff.close()

    docs = settings.gateway.api_docs
    # FastAPI's own OpenTelemetry is off: its spans would carry request URLs (patient ids, search terms)
    # to whatever provider a host process configured, and checking for one costs every request.
    app = LaneFirstApp(title="SMART-on-FHIR patient portal gateway", version=VERSION, lifespan=lifespan,
                       docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json",
                       telemetry={"tracing": False, "metrics": False, "logs": False})
    # Innermost: the dashboard's searches and reads skip the route table (see fast_lane.py).
    app.add_middleware(FhirFastLane, gateway=gateway)
    install_request_context(app, settings.gateway.cors_allow_origins)
    app.add_middleware(SecurityHeadersMiddleware, https=settings.core.public_url.startswith("https://"),
                       csp_overrides={"/docs": DOCS_CSP} if docs else None)
    # Outermost: scheme and client address as the trusted TLS-terminating proxy saw them.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.core.trusted_proxies)
    mount_static(app)
    app.include_router(build_auth_router(auth_server))
    app.include_router(accounts.router(auth_server.grants))
    app.include_router(build_fhir_router(gateway))
    app.include_router(build_access_log_router(verifier=gateway.verifier, checker=gateway.checker,
                                               ehr=parts.upstream, audit=gateway.audit,
                                               clients=auth_server.clients,
                                               source=parts.audit_workers.access_log(parts.upstream)))
    # The portal vouches for its users' browser addresses; the gateway believes only what it signed.
    client_address = ClientAddress(derive_secret(parts.keys, SECRET_LABEL))
    app.state.client_address = client_address
    portal = Portal(PortalDeps(settings=settings.portal, redis=parts.redis, clients=auth_server.clients,
                               signins=accounts.sessions, accounts=accounts.store,
                               sign_address=client_address.signer(), app=app, payments=parts.payments,
                               notices=notifications))
    # The staff area (before the portal's routes: /portal/staff/... is its own, never a patient page).
    staff = StaffArea(StaffDeps(settings=settings.staff, redis=parts.redis, clients=auth_server.clients,
                                signins=accounts.sessions, sign_address=client_address.signer(), app=app,
                                notices=notifications,
                                extra={"invitations": accounts.staff_invitations(
                                           auth_server.grants, mailer=NoticeMailer(notifications)),
                                       "service_metrics": service_metrics}))
    app.include_router(build_staff_router(staff))
    app.state.staff = staff
    app.include_router(build_portal_router(portal))
    app.state.portal = portal  # for `./stack bench portal`, which times pages in-process
    app.state.service_metrics = service_metrics
    app.state.notifications = notifications  # `await app.state.notifications.notify(to, kind, link, key=...)`
    _add_ops_routes(app, parts, service_metrics, notifications)
    return app


def _add_ops_routes(app: FastAPI, parts: Parts, service_metrics: ServiceMetrics,
                    notifications: Notifications | None = None) -> None:
    metrics = CollectorRegistry()
    metrics.register(PortalCollector(parts.response_cache, parts.change_feed, parts.recorder, notifications))
    metrics.register(ServiceCollector(service_metrics))
    audit_backlog = AuditBacklog(parts.redis, parts.settings.audit.audit_stream, parts.audit_workers.store)
    metrics.register(audit_backlog)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        ehr = await parts.upstream.ping()
        redis_up = await _redis_ok(parts.redis)
        cache = parts.response_cache
        body: dict[str, Any] = {
            "status": "ready" if ehr and redis_up else "unavailable",
            "checks": {"ehr": "up" if ehr else "down", "redis": "up" if redis_up else "down",
                       # The cache is optional: without it we serve uncached, so it never fails readiness.
                       "cache": "disabled" if cache is None else ("up" if await _redis_ok(cache.redis) else "down")},
        }
        if parts.change_feed is not None:
            body["change_feed"] = parts.change_feed.status()
        return JSONResponse(body, status_code=200 if ehr and redis_up else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics_endpoint() -> PlainTextResponse:
        service_metrics.refresh_soon()  # the figures of the last round; a stale one is redone meanwhile
        await audit_backlog.read()  # the backlog as it is now
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)
