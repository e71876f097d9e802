"""`./stack bench audit`: what the audit trail costs the EHR, and how fast the patient's access log answers.

Part 1 - the EHR's CPU (HAPI's process: utime + stime from /proc/<pid>/stat, before and after), per:
- uncached dashboard read straight to HAPI: the baseline;
- the same read through the gateway, whose audit events go into its own store (nothing to the EHR);
- AuditEvent exported to the EHR - the very events the gateway recorded for those reads, as the export
  sends them (transactions of idempotent PUTs) - for each of `--batch-sizes`;
- access-log search in the EHR (`AuditEvent?entity=Patient/x&_sort=-date`): what every look at the log
  costs a deployment without the store.
Printed as CPU ms per operation and as a ratio to the baseline read, with the export rate the EHR could
take and what a paced export (`PORTAL_AUDIT_EXPORT_RATE`) costs it.

Part 2 - the access log with `--stored` events (default 1,000,000) generated straight into an audit
store (never into the EHR): `/portal/api/access-log` through a gateway process on that store, first pages
and pages further back, p50/p95 with 1 and 4 clients at once (`--log-concurrency`); the store's query
alone (the floor); and, as the baseline, the same endpoint answered by the EHR's AuditEvent search
(without a store).

The EHR: by default a HAPI of the benchmark's own (a free port, a throw-away state directory, the fixture
patients loaded, the default JIT), stopped afterwards; `--ehr-url` reuses a running local one (its
process is found by its port) - it receives `--events` x len(--batch-sizes) AuditEvents, so do not point
it at a shared EHR. The generated store is kept under `<state dir>/bench/` and reused by the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from audit.access_log import patients_of
from audit.events import auth_event, rest_event
from audit.repository import FhirRepository
from audit.sqlite_store import SqliteAuditStore
from audit.store import StoredEvent, decode_event, encode_event
from devstack.procs import Started, free_port, require, spawn, wait_until
from devstack.services import StackConfig, build_jar, ehr_ready, redis_args, redis_ping
from fhir_gateway.upstream import Upstream, make_client

from . import runner, workload
from .cpu import cpu_seconds, listening_pid
from .stack import fixture_patients, gateway, patient_tokens, start_own_ehr

LOG_PATH = "/portal/api/access-log"


# -- the EHR and its CPU ----------------------------------------------------------------------------------
@contextmanager
def private_ehr(heap: str) -> Iterator[tuple[str, int]]:
    """A HAPI of the benchmark's own with the fixture patients, on a free port; removed afterwards."""
    from fixtures.generate import generate
    from fixtures.loader import load_dataset

    java = require("java", "Java 17 is needed: apt-get install openjdk-17-jdk-headless")
    build_jar()
    state = Path(tempfile.mkdtemp(prefix="bench-ehr-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/fhir"
    started = Started()
    try:
        print(f"starting a HAPI of our own on {url} (a few minutes on a busy machine) ...", flush=True)
        # The default JIT (C2) and G1: steady-state costs, not the quick-start flags of ./stack up.
        pid, _seconds = start_own_ehr(java, [f"-Xms{heap}", f"-Xmx{heap}"], state, port, started)
        # This runs inside the benchmark's own event loop: the loading gets a loop of its own, in a thread.
        with ThreadPoolExecutor(1) as loader:
            loader.submit(asyncio.run, load_dataset(url, generate(patients=25), progress=False)).result()
        yield url, pid
    finally:
        started.stop()
        shutil.rmtree(state, ignore_errors=True)


@contextmanager
def private_redis() -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    port = free_port()
    started = Started()
    proc = spawn(redis_args(port, data, persistent=True), data / "redis.log")
    started.add("redis", proc)
    try:
        wait_until(lambda: redis_ping("127.0.0.1", port), 15, "the benchmark's Redis", proc, data / "redis.log")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        started.stop()
        shutil.rmtree(data, ignore_errors=True)


class CpuMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rows: list[tuple[str, int, float, float]] = []  # (what, n, CPU ms per op, wall s)

    async def measure(self, what: str, n: int, work: Any) -> float:
        before, started = cpu_seconds(self.pid), time.perf_counter()
        await work
        per_op = (cpu_seconds(self.pid) - before) * 1000 / n
        self.rows.append((what, n, per_op, time.perf_counter() - started))
        return per_op


# -- part 1: the EHR's cost ---------------------------------------------------------------------------------
def gateway_events(state: Path, n: int) -> list[dict[str, Any]]:
    """The newest `n` events the gateway stored (read from its store file; WAL lets us read alongside)."""
    import sqlite3

    with sqlite3.connect(state / "audit.sqlite3") as db:
        rows = db.execute("SELECT body FROM audit_event ORDER BY seq DESC LIMIT ?", (n,)).fetchall()
    return [decode_event(row[0]) for row in rows]


async def wait_stored(state: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(await asyncio.to_thread(gateway_events, state, n)) >= n:
            return
        await asyncio.sleep(0.5)
    raise SystemExit("the gateway did not store its audit events in time; see its log")


@dataclass
class _Outgoing:
    event_id: str
    payload: str


class _Tally:
    def __init__(self) -> None:
        self.stored = 0

    async def accepted(self, done: Sequence[Any]) -> None:
        self.stored += len(done)

    async def refused(self, event: Any, status: int, reason: str) -> None:
        raise SystemExit(f"the EHR refused an AuditEvent ({status}: {reason})")


async def export(ehr: Upstream, events: list[dict[str, Any]], batch: int, own_cpu: list[float] | None = None) -> int:
    """Sends `events` (with fresh ids: new AuditEvents) as the export does; returns how many were stored.
    `own_cpu` gets this process's CPU seconds for the sending (the exporting side's own cost)."""
    outgoing = []
    for event in events:
        event_id = str(uuid.uuid4())
        outgoing.append(_Outgoing(event_id, json.dumps({**event, "id": event_id}, separators=(",", ":"))))
    repository = FhirRepository(ehr)
    tally = _Tally()
    started = time.process_time()
    for start in range(0, len(outgoing), batch):
        await repository.send(outgoing[start:start + batch], tally)
    if own_cpu is not None:
        own_cpu.append(time.process_time() - started)
    return tally.stored


async def log_searches_in_ehr(ehr: str, patients: list[str], n: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=60) as client:
        for k in range(n):
            started = time.perf_counter()
            r = await client.get(f"{ehr}/AuditEvent", params={"entity": f"Patient/{patients[k % len(patients)]}",
                                                               "_sort": "-date", "_count": "51"},
                                 headers={"Cache-Control": "no-cache"})
            r.raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


async def ehr_cost(args: argparse.Namespace, ehr: str, pid: int, redis_url: str) -> dict[str, float]:
    meter = CpuMeter(pid)
    patients = fixture_patients(ehr, args.patients)
    cfg = StackConfig(state_dir=Path(tempfile.gettempdir()), fhir_base_url=ehr, redis_url=redis_url,
                      cache_redis_url=redis_url.rsplit("/", 1)[0] + "/1")
    n = args.requests
    direct = workload.build(ehr, patients, None, n)
    with gateway(cfg, {"PORTAL_CACHE_ENABLED": "false", "PORTAL_AUDIT_REPOSITORY": "off",
                       "PORTAL_AUDIT_EXPORT_INTERVAL": "0.2"}, audit_worker=args.own_worker) as gw:
        url, state = gw.url, gw.state
        through = workload.build(url + "/fhir", patients, patient_tokens(url, state, patients), n)
        # Warm both paths (JIT, pools, HAPI's caches), and the export path, so we compare steady states.
        await args.run("warm-up direct", direct[:200], concurrency=args.concurrency)
        await args.run("warm-up gateway", through[:200], concurrency=args.concurrency)
        await wait_stored(state, 200)
        async with ehr_client(ehr) as client:
            await export(client, await asyncio.to_thread(gateway_events, state, 200), max(args.batch_sizes))
        results: dict[str, runner.Result] = {}

        async def run(name: str, reqs: list[runner.Request]) -> None:
            results[name] = await args.run(name, reqs, concurrency=args.concurrency)

        read_ms = await meter.measure("dashboard read, straight to HAPI (baseline)", n, run("direct", direct))
        await meter.measure("dashboard read through the gateway (audit to its store)", n, run("gateway", through))
        await wait_stored(state, n)
        recorded = await asyncio.to_thread(gateway_events, state, n)
    errors = sum(r.errors for r in results.values())
    out = {"read_ms": read_ms}
    async with ehr_client(ehr) as client:
        # Interleaved rounds: the EHR's drift (JIT, GC, a growing table) spreads over every batch size.
        per_batch: dict[int, list[float]] = {batch: [] for batch in args.batch_sizes}
        exporter_cpu: dict[int, list[float]] = {batch: [] for batch in args.batch_sizes}
        for round_ in range(2):
            for batch in args.batch_sizes:
                per_batch[batch].append(await meter.measure(
                    f"AuditEvent exported, transactions of {batch} (#{round_ + 1})", len(recorded),
                    export(client, recorded, batch, exporter_cpu[batch])))
        for batch, costs in per_batch.items():
            out[f"export_ms_{batch}"] = statistics.fmean(costs)
            out[f"exporter_ms_{batch}"] = statistics.fmean(exporter_cpu[batch]) * 1000 / len(recorded)
    searches: list[float] = []

    async def log_searches() -> None:
        searches.extend(await log_searches_in_ehr(ehr, patients, args.log_requests))

    await meter.measure("access-log search in the EHR (no store)", args.log_requests, log_searches())

    size = statistics.fmean(len(json.dumps(e)) for e in recorded)
    print(f"\nPart 1 - the EHR's CPU (HAPI pid {pid}); {n} dashboard reads over {len(patients)} patients, "
          f"concurrency {args.concurrency}, {errors} errors; exported: the {len(recorded)} events the gateway "
          f"recorded for those reads (mean {size:,.0f} bytes of JSON)")
    print(f"{'operation':62} {'n':>6} {'CPU ms/op':>10} {'vs read':>8} {'ops/s':>8}")
    for what, count, per_op, wall in meter.rows:
        print(f"{what:62} {count:6d} {per_op:10.2f} {per_op / read_ms:8.2f} {count / wall:8.1f}")
    for batch in args.batch_sizes:
        cost = out[f"export_ms_{batch}"]
        print(f"\nexporting every event to the EHR in transactions of {batch} costs it {cost:.1f} ms of CPU per "
              f"event, {cost / read_ms * 100:.0f} % of the CPU of the read it records (target <= 10 %); the "
              f"exporting process {out[f'exporter_ms_{batch}']:.3f} ms", end="")
    print()
    best = min(args.batch_sizes, key=lambda b: out[f"export_ms_{b}"])
    cost = out[f"export_ms_{best}"]
    print(f"a paced export costs the EHR {cost:.1f} ms of CPU per event: at PORTAL_AUDIT_EXPORT_RATE=r that is "
          f"r x {cost / 1000:.4f} CPU-seconds per second (r=10: {10 * cost / 10:.0f} % of one core; "
          f"r=50: {50 * cost / 10:.0f} %), and PORTAL_AUDIT_EXPORT_SHARE (0.05) rests the EHR 19 s for every second it "
          "takes to answer the export, whatever an event costs it")
    print(f"access log from the EHR: p50 {_pct(searches, 50):.0f} ms, p95 {_pct(searches, 95):.0f} ms with "
          f"{await _count(ehr)} AuditEvents stored; from the store: 0 EHR CPU")
    return out


@asynccontextmanager
async def ehr_client(base: str) -> AsyncIterator[Upstream]:
    upstream = Upstream(make_client(base, connect_timeout=5, read_timeout=300, max_connections=4), base, retries=0)
    try:
        yield upstream
    finally:
        await upstream.client.aclose()


async def _count(ehr: str) -> int:
    async with httpx.AsyncClient(timeout=60) as client:
        r = await client.get(f"{ehr}/AuditEvent", params={"_summary": "count"}, headers={"Cache-Control": "no-cache"})
        return int(r.json().get("total", 0))


def _pct(latencies: Sequence[float], q: float) -> float:
    data = sorted(latencies)
    return data[min(len(data) - 1, round(q / 100 * (len(data) - 1)))] * 1000 if data else float("nan")


# -- part 2: the access log over a big store ---------------------------------------------------------------
def _people(ehr: str, patients: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Practitioners, and each patient's caregivers (RelatedPerson), as the EHR knows them."""
    with httpx.Client(timeout=60) as client:
        practitioners = [e["resource"]["id"] for e in client.get(
            f"{ehr}/Practitioner", params={"_count": 50, "_elements": "id"}).json().get("entry", [])]
        caregivers = {p: [e["resource"]["id"] for e in client.get(
            f"{ehr}/RelatedPerson", params={"patient": f"Patient/{p}", "_elements": "id"}).json().get("entry", [])]
            for p in patients}
    return practitioners or ["prac-01"], caregivers


def _templates(patient: str, practitioners: list[str], caregivers: list[str]) -> list[tuple[float, dict[str, Any]]]:
    """(weight, event) kinds a patient's log holds: their own reads and searches, staff, caregivers, sign-ins."""
    ref = f"Patient/{patient}"
    common = dict(account_id="acct-bench", client_id="portal-web", source_ip="203.0.113.7", request_id="r")
    out: list[tuple[float, dict[str, Any]]] = []
    for rtype, category in (("Observation", "laboratory"), ("Observation", "vital-signs"), ("MedicationRequest", None),
                            ("Appointment", None), ("Communication", None), ("Condition", None)):
        query = f"patient={ref}" + (f"&category={category}" if category else "") + "&_count=10"
        refs = [f"{rtype}/{patient}-{rtype.lower()}-{k}" for k in range(10)]
        out.append((0.09, rest_event(interaction="search-type", outcome="0", action="E", entity_refs=refs,
                                     patient_refs=[ref], account_ref=ref, on_behalf_of=None, query=query, **common)))
    out.append((0.16, rest_event(interaction="read", outcome="0", action="R", entity_refs=[ref], patient_refs=[ref],
                                 account_ref=ref, on_behalf_of=None, query=None, **common)))
    for prac in practitioners[:5]:
        out.append((0.05, rest_event(interaction="read", outcome="0", action="R",
                                     entity_refs=[f"Observation/{patient}-observation-1"], patient_refs=[ref],
                                     account_ref=f"Practitioner/{prac}", on_behalf_of=None, query=None, **common)))
    for person in caregivers[:1]:
        out.append((0.05, rest_event(interaction="read", outcome="0", action="R",
                                     entity_refs=[f"MedicationRequest/{patient}-m-1"], patient_refs=[ref],
                                     account_ref=f"RelatedPerson/{person}", on_behalf_of=ref, query=None, **common)))
    out.append((0.05, auth_event("login", "success", account_id="acct-bench", fhir_user=ref, client_id="portal-web",
                                 patient_id=patient, source_ip="203.0.113.7", request_id="r")))
    return out


Template = tuple[str, tuple[str, ...]]  # (event JSON with @ID@ and @RECORDED@ to fill in, its patients)


def _as_template(event: dict[str, Any]) -> Template:
    text = json.dumps({**event, "id": "@ID@", "recorded": "@RECORDED@"}, separators=(",", ":"))
    return text, tuple(sorted(patients_of(event)))


def _generate_chunk(seed: int, count: int, kinds: dict[str, list[tuple[float, Template]]], start_ms: int,
                    end_ms: int) -> list[StoredEvent]:
    """`count` events from the templates, each with its own id and time; built as the feeder stores them."""
    rng = random.Random(seed)
    patients = list(kinds)
    choices = {p: tuple(zip(*kinds[p], strict=True)) for p in patients}
    out = []
    for _ in range(count):
        weights, templates = choices[rng.choice(patients)]
        text, involved = rng.choices(templates, weights)[0]
        recorded_ms = rng.randrange(start_ms, end_ms)
        recorded = datetime.fromtimestamp(recorded_ms / 1000, UTC).isoformat(timespec="milliseconds")
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        payload = text.replace("@ID@", event_id, 1).replace("@RECORDED@", recorded, 1)
        out.append(StoredEvent(event_id, recorded_ms, involved, encode_event(payload)))
    return out


async def big_store(path: Path, total: int, ehr: str, patients: list[str], days: int) -> SqliteAuditStore:
    store = SqliteAuditStore(path)
    await store.open()
    have = (await store.stats())["events"]
    if have >= total:
        print(f"reusing {path} ({have:,} events)")
        return store
    practitioners, caregivers = _people(ehr, patients)
    kinds = {p: [(w, _as_template(e)) for w, e in _templates(p, practitioners, caregivers[p])] for p in patients}
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - days * 86_400_000
    chunk = 20_000
    print(f"generating {total - have:,} events into {path} (once; later runs reuse it) ...", flush=True)
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    # As in real life the store receives events in the order they happen: each chunk is the next slice of
    # time, stored in order (the access log then finds a patient's latest events close together).
    bounds = list(range(have, total, chunk))
    span = (now_ms - start_ms) / max(1, len(bounds))
    with ProcessPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        pending = [loop.run_in_executor(pool, _generate_chunk, have + k, min(chunk, total - k), kinds,
                                        int(start_ms + n * span), int(start_ms + (n + 1) * span))
                   for n, k in enumerate(bounds)]
        done = 0
        for future in pending:
            rows = sorted(await future, key=lambda row: row.recorded_ms)
            await store.add(rows, export=False)
            done += len(rows)
            print(f"\r  {have + done:,} / {total:,} events ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()
    return store


async def store_floor(store: SqliteAuditStore, patients: list[str], n: int) -> list[float]:
    """The store's query alone: first pages, and pages further back (`before` a random point)."""
    rng = random.Random(3)
    latencies = []
    newest = (await store.stats())["newest_ms"]
    for k in range(n):
        patient = rng.choice(patients)
        before = None
        if k % 3 == 2:
            before = datetime.fromtimestamp((newest - rng.randrange(0, 300 * 86_400_000)) / 1000, UTC).isoformat()
        started = time.perf_counter()
        await store.page(patient, count=51, before=before)
        latencies.append(time.perf_counter() - started)
    return latencies


async def endpoint(url: str, tokens: dict[str, str], n: int, concurrency: int) -> tuple[list[float], int]:
    """`n` access-log requests: two in three a first page, one in three the page after an earlier answer."""
    rng = random.Random(5)
    patients = list(tokens)
    nexts: list[tuple[str, str]] = []
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for k in range(n):
        queue.put_nowait(k)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            k = queue.get_nowait()
            if k % 3 == 2 and nexts:
                patient, target = nexts.pop(rng.randrange(len(nexts)))
            else:
                patient = rng.choice(patients)
                target = f"{LOG_PATH}?count=50"
            started = time.perf_counter()
            r = await client.get(url + target, headers={"Authorization": f"Bearer {tokens[patient]}"})
            latencies.append(time.perf_counter() - started)
            if r.status_code != 200:
                errors += 1
            elif "next" in r.json():
                nexts.append((patient, r.json()["next"]))

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, errors


async def access_log_speed(args: argparse.Namespace, ehr: str, redis_url: str) -> None:
    patients = fixture_patients(ehr, args.patients)
    path = args.store or Path(os.environ.get("PORTAL_STATE_DIR", ".state")) / "bench" / f"audit-{args.stored}.sqlite3"
    store = await big_store(path, args.stored, ehr, patients, args.days)
    stats = await store.stats()
    rows: list[tuple[str, list[float], int]] = []
    concurrencies = sorted({int(c) for c in str(args.log_concurrency).split(",")})
    try:
        await store_floor(store, patients, 50)  # warm the page cache
        floor = await store_floor(store, patients, 600)
        rows.append(("the store's query alone (51 newest / before a point)", floor, 0))
    finally:
        await store.close()
    cfg = StackConfig(state_dir=Path(tempfile.gettempdir()), fhir_base_url=ehr, redis_url=redis_url,
                      cache_redis_url=redis_url.rsplit("/", 1)[0] + "/1")
    base_env = {"PORTAL_CACHE_ENABLED": "false", "PORTAL_AUDIT_REPOSITORY": "off"}
    for name, env in (("access log, EHR search (no store)", {"PORTAL_AUDIT_STORE": "none"}),
                      (f"access log, store of {stats['events']:,}",
                       {"PORTAL_AUDIT_STORE_PATH": str(path.resolve())})):
        with gateway(cfg, {**base_env, **env}, audit_worker=args.own_worker) as gw:
            url, state = gw.url, gw.state
            tokens = patient_tokens(url, state, patients)
            await endpoint(url, tokens, 40, max(concurrencies))  # warm-up
            for concurrency in concurrencies:
                latencies, errors = await endpoint(url, tokens, args.log_requests, concurrency)
                rows.append((f"{name}, {concurrency} at once", latencies, errors))
    baseline = rows[1][1]
    per_patient = stats["events"] // max(1, len(patients))
    print(f"\nPart 2 - the access log; the store holds {stats['events']:,} events over {len(patients)} patients "
          f"(~{per_patient:,} each, {args.days} days), file {path.stat().st_size / 1_048_576:,.0f} MiB; "
          f"the EHR holds {await _count(ehr):,} AuditEvents; /portal/api/access-log?count=50 (a third of them the "
          f"next page of an earlier answer) through one gateway process")
    print(f"{'target':62} {'n':>6} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} {'p95 x':>7}")
    for name, latencies, errors in rows:
        print(f"{name:62} {len(latencies):6d} {errors:4d} {_pct(latencies, 50):8.1f} {_pct(latencies, 95):8.1f} "
              f"{_pct(latencies, 95) / _pct(baseline, 95):7.2f}")
    print("(p95 x: against the EHR-searched log, one at a time, of this run; target: p95 <= 200 ms with 1,000,000 "
          "events stored)")


@contextmanager
def running_ehr(url: str) -> Iterator[tuple[str, int]]:
    if not ehr_ready(url):
        raise SystemExit(f"no EHR answers at {url}")
    yield url, listening_pid(httpx.URL(url).port or 80)


async def main(args: argparse.Namespace) -> int:
    args.batch_sizes = sorted({int(b) for b in str(args.batch_sizes).split(",")})
    with private_redis() as redis_url, \
            (running_ehr(args.ehr_url.rstrip("/")) if args.ehr_url else private_ehr(args.heap)) as (ehr, pid):
        if not args.skip_cost:
            await ehr_cost(args, ehr, pid, redis_url)
        if args.stored:
            await access_log_speed(args, ehr, redis_url)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ehr-url", help="audit bench: a running local EHR to load (default: start our own)")
    parser.add_argument("--heap", default="1536m", help="audit bench: heap of the benchmark's own HAPI")
    parser.add_argument("--batch-sizes", default="100,500", help="audit bench: export transaction sizes to measure")
    parser.add_argument("--stored", type=int, default=1_000_000, help="audit bench: events in the access-log store")
    parser.add_argument("--days", type=int, default=365, help="audit bench: the stored events span this many days")
    parser.add_argument("--store", type=Path, help="audit bench: the store file (default <state dir>/bench/...)")
    parser.add_argument("--log-requests", type=int, default=400, help="audit bench: access-log requests per target")
    parser.add_argument("--log-concurrency", default="1,4", help="audit bench: access-log clients at once (list)")
    parser.add_argument("--skip-cost", action="store_true", help="audit bench: only the access-log part")
