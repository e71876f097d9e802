"""`./stack bench peer`: our gateway against google's FHIR Information Gateway (`fhir-gateway`, Java, its
patient access checker) on the same dashboard work, in one run, on the same EHR and the same machine.

The issue's targets for our own CPU per request (2.0 ms uncached, "at or below the peer") came from that
peer measured on some other machine; per-request times change with the machine, so this measures the
peer here, beside us, in interleaved rounds: direct HAPI, the peer, our gateway with the cache off, our
gateway answering from a warm cache, and the hello-world floor. Each row's `cpu ms/req` is that process's
own CPU (utime + stime from /proc; for the peer, its JVM with every thread, JIT and collector included).

The peer is built from its published `server` and `plugins` artifacts (Maven Central) by `bench/peer/pom.xml`
into `bench/peer/target/` the first time (under a minute; Java 17 and Maven, as for the EHR sandbox). It
runs with the default JIT and gets at least 3,000 requests of warm-up before the rounds, so its compiler
has mostly settled. It checks tokens we mint for it (RS256, `patient_id` and `scope` claims) against
a public key it fetches from a small issuer document served here; it keeps no audit trail
(`AUDIT_EVENT_ACTIONS_CONFIG` unset), while ours records one audit event per request: that difference is
in our column, not taken out.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from devstack.procs import StackError, Started, free_port, require, spawn, wait_until

from . import runner, workload
from .cpu import listener_of
from .gateway_overhead import ROUNDS, own_cpu_summary
from .stack import (
    ehr_and_redis,
    fixture_patients,
    gateway,
    hello_world,
    measured,
    patient_tokens,
    private_cache_redis,
    settle_ehr,
    wait_for_change_feed,
)

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / "peer"
# The peer's patient checker takes a patient only from the search parameters it knows per type: two of the
# dashboard's eight queries name the patient by a parameter it refuses (400), so every target, direct HAPI
# included, gets those two in the form it accepts (the same answers on HAPI).
SAME_WORK = (("MedicationRequest?patient=", "MedicationRequest?subject="),
             ("Appointment?patient=", "Appointment?actor="))
# The patient access checker's scope grammar: SMART v1 `patient/<Type>.read` (wildcards allowed).
PEER_SCOPE = "patient/*.read"
TOKEN_LIFETIME = 6 * 3600
PEER_WARM_UP = 3000


def peer_jar() -> Path:
    """The peer's runnable jar, built by Maven the first time."""
    jar = PEER_DIR / "target" / "bench-peer.jar"
    if jar.exists():
        return jar
    mvn = require("mvn", "Maven and Java 17 build the peer: apt-get install maven openjdk-17-jdk-headless")
    print("building the peer (google fhir-gateway server + plugins from Maven Central) ...", flush=True)
    done = subprocess.run([mvn, "-q", "-B", "-f", str(PEER_DIR / "pom.xml"), "package", "-DskipTests"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not jar.exists():
        raise StackError("building the peer failed:\n" + (done.stdout + done.stderr)[-3000:])
    return jar


class _IssuerHandler(BaseHTTPRequestHandler):
    document = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def token_issuer() -> Iterator[tuple[str, RSAKey]]:
    """An issuer document of the kind the peer reads its key from (`{"public_key": <base64 DER>}`; it also asks
    for `<issuer>/.well-known/openid-configuration`, which gets the same), served on a free local port, and the
    private key that signs the peer's tokens. The peer fetches it on its first request, not at start-up."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    handler = type("Issuer", (_IssuerHandler,), {"document": json.dumps(
        {"realm": "bench", "public_key": base64.b64encode(der).decode()}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/realms/bench", RSAKey.import_key(pem)
    finally:
        server.shutdown()
        server.server_close()


def same_work(requests: list[runner.Request]) -> list[runner.Request]:
    """Dashboard requests in the query forms both gateways accept."""
    out = []
    for req in requests:
        url = req.url
        for old, new in SAME_WORK:
            url = url.replace(old, new)
        out.append(runner.Request(url, req.headers))
    return out


def peer_tokens(issuer: str, key: RSAKey, patients: list[str]) -> dict[str, str]:
    now = int(time.time())
    return {p: jwt.encode({"alg": "RS256", "typ": "JWT"},
                          {"iss": issuer, "iat": now, "exp": now + TOKEN_LIFETIME, "patient_id": p,
                           "scope": PEER_SCOPE, "sub": f"bench-{p}"}, key)
            for p in patients}


@contextmanager
def peer_gateway(ehr: str, issuer: str) -> Iterator[tuple[str, int]]:
    """The peer in a JVM of its own on a free port, proxying to `ehr`: its base URL and pid."""
    java = require("java", "Java 17 runs the peer: apt-get install openjdk-17-jdk-headless")
    jar = peer_jar()
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "peer.log"
    # Its tokens carry `iss` = TOKEN_ISSUER exactly (its development mode, which skips that check, is not
    # needed). Its own logging (three INFO lines per request) is turned down to warnings: ours logs no line
    # per answered request either.
    env = {"PROXY_TO": ehr.rstrip("/"), "TOKEN_ISSUER": issuer, "ACCESS_CHECKER": "patient",
           "BACKEND_TYPE": "HAPI", "AUDIT_EVENT_ACTIONS_CONFIG": ""}
    started = Started()
    proc = spawn([java, "-Xms256m", "-Xmx1g", "-jar", str(jar), f"--server.port={port}",
                  "--server.address=127.0.0.1", "--logging.level.com.google.fhir.gateway=WARN"],
                 log, env=env, cwd=work)
    started.add("peer", proc)

    def up() -> bool:
        try:
            return httpx.get(url + "/fhir/metadata", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 240, "the peer (google fhir-gateway)", proc, log)
        yield url + "/fhir", proc.pid
    finally:
        started.stop()
        shutil.rmtree(work, ignore_errors=True)


async def main(args: argparse.Namespace) -> int:
    with ehr_and_redis() as cfg, token_issuer() as (issuer, key):
        patients = fixture_patients(cfg.fhir_base_url, args.patients)
        direct = same_work(workload.build(cfg.fhir_base_url, patients, None, args.requests))
        # Every search once first (a search the EHR has not run lately answers far more slowly the first time).
        await args.run("warm-up direct", same_work(workload.every_dashboard(cfg.fhir_base_url, patients, None)),
                       concurrency=args.concurrency)
        with peer_gateway(cfg.fhir_base_url, issuer) as (peer_url, peer_pid), \
                private_cache_redis() as cache_url, \
                gateway(cfg, {"PORTAL_CACHE_ENABLED": "false"}, workers=args.workers,
                        audit_worker=args.own_worker) as uncached, \
                gateway(cfg, {"PORTAL_CACHE_REDIS_URL": cache_url}, workers=args.workers,
                        audit_worker=args.own_worker) as cached, \
                hello_world() as (hello_url, hello_pid):
            peer_token = peer_tokens(issuer, key, patients)
            peer_reqs = same_work(workload.build(peer_url, patients, peer_token, args.requests))
            ours_tokens = patient_tokens(uncached.url, uncached.state, patients)
            ours = same_work(workload.build(uncached.url + "/fhir", patients, ours_tokens, args.requests))
            warm_tokens = patient_tokens(cached.url, cached.state, patients)
            warm = same_work(workload.build(cached.url + "/fhir", patients, warm_tokens, args.requests))
            hello = same_work(workload.build(hello_url, patients, None, args.requests * 4))
            one_each = len(workload.dashboard_queries("x")) * 3  # the first dashboards: every kind of query
            refused = await _refusals(peer_reqs[:one_each]) + await _refusals(ours[:one_each])
            if refused:
                raise SystemExit("a gateway refused part of the workload, so the work would differ:\n  "
                                 + "\n  ".join(refused))
            wait_for_change_feed(cached.url)
            # The peer's JIT compiles for a while: it gets at least 3,000 requests of warm-up (its first measured
            # run still costs it more than the next two), the others enough to fill pools, caches and the
            # cached gateway's entries.
            peer_warm_up = workload.build(peer_url, patients, peer_token, max(args.requests, PEER_WARM_UP), seed=3)
            await args.run("warm-up peer", same_work(peer_warm_up), concurrency=args.concurrency)
            await args.run("warm-up gateway", ours[:200], concurrency=args.concurrency)
            fill = same_work(workload.every_dashboard(cached.url + "/fhir", patients, warm_tokens))
            await args.run("warm-up cache", fill, concurrency=args.concurrency)
            await args.run("warm-up hello", hello[:200], concurrency=args.concurrency)
            results: dict[str, list[runner.Result]] = {k: [] for k in ("direct", "peer", "ours", "warm", "hello")}
            ehr_pid = listener_of(httpx.URL(cfg.fhir_base_url).port or 80)
            # Each run starts with the EHR quiet (`settle_ehr`), as in `bench cache`.
            for round_ in range(ROUNDS):
                n = f" #{round_ + 1}"
                await settle_ehr(ehr_pid)
                results["direct"].append(await args.run("direct HAPI" + n, direct, concurrency=args.concurrency))
                await settle_ehr(ehr_pid)
                results["peer"].append(await args.run("google fhir-gateway" + n, peer_reqs,
                                                      concurrency=args.concurrency, cpu_pid=peer_pid))
                await settle_ehr(ehr_pid)
                results["ours"].append(await measured(args.run, "ours, cache off" + n, ours,
                                                      concurrency=args.concurrency, gw=uncached))
                await settle_ehr(ehr_pid)
                results["warm"].append(await measured(args.run, "ours, warm cache" + n, warm,
                                                      concurrency=args.concurrency, gw=cached))
                results["hello"].append(await args.run("hello-world ASGI" + n, hello, concurrency=args.concurrency,
                                                       cpu_pid=hello_pid))
    every = [r for runs in results.values() for r in runs]
    print(f"\n{args.requests} dashboard requests over {len(patients)} patients, concurrency {args.concurrency}, "
          f"{ROUNDS} interleaved rounds; ratios against the first direct run; cpu ms/req is each target's own "
          "process (the peer's JVM whole; ours with its audit worker's in its own column)")
    print(runner.report(every, results["direct"][0]))
    print()
    print(summary(results))
    return 0


def summary(results: dict[str, list[runner.Result]]) -> str:
    """The issue's table: throughput and p50 against direct HAPI of the same round, and own CPU per request."""
    lines = [f"{'target':22} {'throughput vs direct':>22} {'p50 vs direct':>15} {'own CPU ms/req':>16}  rounds"]
    for key, label in (("peer", "google fhir-gateway"), ("ours", "ours, cache off"), ("warm", "ours, warm cache")):
        runs = results[key]
        thr = [r.throughput / d.throughput for r, d in zip(runs, results["direct"], strict=True)]
        p50 = [r.p50 / d.p50 for r, d in zip(runs, results["direct"], strict=True)]
        cpu = [(r.cpu_ms or 0.0) + (r.worker_cpu_ms or 0.0) for r in runs]
        lines.append(f"{label:22} {statistics.fmean(thr):21.2f}x {statistics.fmean(p50):14.2f}x "
                     f"{statistics.fmean(cpu):16.3f}  " + ", ".join(f"{c:.3f}" for c in cpu))
    peer_cpu = statistics.fmean(r.cpu_ms or 0.0 for r in results["peer"])
    for key, label in (("ours", "cache off"), ("warm", "warm cache")):
        mine = statistics.fmean((r.cpu_ms or 0.0) + (r.worker_cpu_ms or 0.0) for r in results[key])
        lines.append(f"ours, {label}: {mine / peer_cpu:.2f}x the peer's own CPU per request (with the audit worker)")
    lines.append("ours alone (gateway process): " + own_cpu_summary(results["ours"], results["hello"]))
    lines.append("the peer against the same floor: "
                 + f"{peer_cpu / statistics.fmean(r.cpu_ms or 0.0 for r in results['hello']):.1f}x")
    return "\n".join(lines)


async def _refusals(requests: list[runner.Request]) -> list[str]:
    """The requests a gateway does not answer with 200 (what it refuses or cannot do)."""
    out = []
    async with httpx.AsyncClient(timeout=60) as client:
        for req in requests:
            r = await client.get(req.url, headers=req.headers)
            if r.status_code != 200:
                out.append(f"{r.status_code} {req.url}")
    return out
