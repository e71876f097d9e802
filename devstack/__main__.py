"""`./stack up` runs the whole stack on local defaults; `./stack services` runs only HAPI + Redis (and the mail
catch-all); `python -m devstack ehr` runs only HAPI with the fixtures (the test run shares one between suites)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

from .procs import StackError, Started
from .services import (
    StackConfig,
    ensure_ehr,
    ensure_mail,
    ensure_redis,
    patient_count,
    start_audit_worker,
    start_gateway,
)
from .tls import development_certificate


def load_fixtures_if_empty(cfg: StackConfig, patients: int) -> None:
    if patient_count(cfg.fhir_base_url) > 0:
        return
    from fixtures.generate import generate
    from fixtures.loader import load_dataset

    print(f"The EHR is empty: loading {patients} synthetic patients...", flush=True)
    asyncio.run(load_dataset(cfg.fhir_base_url, generate(patients=patients), progress=sys.stdout.isatty()))


def services(cfg: StackConfig, started: Started, patients: int) -> None:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_redis(cfg.redis_url, cfg.state_dir, started, name="PORTAL_REDIS_URL", persistent=True)
    ensure_redis(cfg.cache_redis_url, cfg.state_dir, started, name="PORTAL_CACHE_REDIS_URL", persistent=False,
                 maxmemory=cfg.cache_maxmemory)
    ensure_mail(cfg.smtp_host, cfg.smtp_port, cfg.state_dir, started)
    ensure_ehr(cfg.fhir_base_url, cfg.state_dir, started, jvm_flags=cfg.ehr_jvm_flags)
    load_fixtures_if_empty(cfg, patients)


def ehr_only(cfg: StackConfig, started: Started, patients: int) -> None:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_ehr(cfg.fhir_base_url, cfg.state_dir, started, jvm_flags=cfg.ehr_jvm_flags)
    load_fixtures_if_empty(cfg, patients)


def print_urls(cfg: StackConfig, tls_ca: str | None = None) -> None:
    base = f"{'https' if tls_ca else 'http'}://{cfg.gateway_host}:{cfg.gateway_port}"
    print(f"""
Portal gateway is running.
  Patient portal      {base}/portal/
  FHIR API            {base}/fhir   (metadata: {base}/fhir/metadata)
  SMART configuration {base}/.well-known/smart-configuration
  Sign in / enrol     {base}/auth/login
  Health / readiness  {base}/healthz  {base}/readyz
  Metrics             {base}/metrics
  Mail (SMTP catch-all) {cfg.smtp_host}:{cfg.smtp_port}   read it with: ./stack mail
  EHR (HAPI FHIR)     {cfg.fhir_base_url}
  Audit worker        log {cfg.state_dir / "logs" / "audit-worker.log"}; backlog: .venv/bin/portal-audit status
Demo patients: .venv/bin/portal-fixtures demo      Press Ctrl-C to stop.""", flush=True)
    if tls_ca:
        print(f"TLS with a local development CA: trust {tls_ca} (e.g. SSL_CERT_FILE={tls_ca} for Python clients, "
              "or import it into the browser).", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("command", nargs="?", default="up", choices=["up", "services", "ehr"])
    parser.add_argument("--patients", type=int, default=25, help="patients to load into an empty EHR")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--tls", action="store_true",
                        help="serve https with a local development certificate (made with trustme)")
    args = parser.parse_args(argv)
    cfg = StackConfig.from_env()
    started = Started()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if args.command == "ehr":
            ehr_only(cfg, started, args.patients)
            print(f"EHR {cfg.fhir_base_url} is up. Press Ctrl-C to stop it if it was started here.", flush=True)
        else:
            services(cfg, started, args.patients)
        if args.command == "up":
            env = {"PORTAL_STATE_DIR": str(cfg.state_dir), "PORTAL_FHIR_BASE_URL": cfg.fhir_base_url,
                   "PORTAL_REDIS_URL": cfg.redis_url, "PORTAL_CACHE_REDIS_URL": cfg.cache_redis_url}
            tls = development_certificate(cfg.state_dir) if args.tls else None
            if tls is not None:
                env |= tls.env() | {"PORTAL_PUBLIC_URL": f"https://{cfg.gateway_host}:{cfg.gateway_port}"}
            logs = cfg.state_dir / "logs"
            # The audit trail's background work runs in a process of its own; the gateway only records.
            start_audit_worker(env, logs / "audit-worker.log", started)
            start_gateway(cfg.gateway_host, cfg.gateway_port, env | {"PORTAL_AUDIT_EXPORT": "false"},
                          logs / "gateway.log", started, args.workers, ca=tls.ca if tls else None)
            print_urls(cfg, str(tls.ca) if tls else None)
        elif args.command == "services":
            print(f"EHR {cfg.fhir_base_url}, Redis and the SMTP catch-all ({cfg.smtp_host}:{cfg.smtp_port}; "
                  "./stack mail reads it) are up. Press Ctrl-C to stop what was started.", flush=True)
        while all(p.poll() is None for _, p in started.procs):
            time.sleep(0.5)
        dead = [name for name, p in started.procs if p.poll() is not None]
        raise StackError(f"{', '.join(dead)} stopped unexpectedly; see {cfg.state_dir / 'logs'}")
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        started.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
