"""The sandbox EHR under different JVM flags, each on a HAPI of its own started from nothing, as `./stack up`
starts it: seconds to answer on an empty database, seconds to load the fixture patients, seconds to answer
again on the loaded database (a second `./stack up`), then its steady state on the dashboard workload
straight to HAPI (throughput, p50, HAPI's CPU per request) and its heap and garbage collections afterwards.
The ratios are against the first variant given (by default 'now': the flags `./stack up` uses)."""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from devstack.procs import Started, free_port, require
from devstack.services import EHR_JVM_FLAGS, build_jar

from . import runner, workload
from .cpu import cpu_seconds
from .stack import fixture_patients, start_own_ehr

_HEAP = [f for f in EHR_JVM_FLAGS if f.startswith(("-Xms", "-Xmx"))]
VARIANTS: dict[str, list[str]] = {  # name: flags ("c1": C1 only; "c2": the default tiered JIT)
    "now": list(EHR_JVM_FLAGS),
    "c2-serial": [*_HEAP, "-XX:+UseSerialGC"],
    "c2-g1": [*_HEAP, "-XX:+UseG1GC"],
    "c1-g1": [*_HEAP, "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1"],
    # The heap sized from the start (the tenured generation of "now" sat 97 % full after the workload).
    "c1-serial-768m": ["-Xms768m", "-Xmx1536m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"],
    "c2-g1-768m": ["-Xms768m", "-Xmx1536m", "-XX:+UseG1GC"],
}


@dataclass
class Outcome:
    name: str
    flags: list[str]
    first_start: float = 0.0
    load: float = 0.0
    restart: float = 0.0
    runs: list[runner.Result] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    gc: str = ""
    heap: str = ""


def _jvm_report(pid: int) -> tuple[str, str]:
    """(collections and their seconds, heap in use / committed) of a running JVM, from jstat and jcmd."""
    gc = subprocess.run(["jstat", "-gcutil", str(pid)], capture_output=True, text=True, timeout=30).stdout.split("\n")
    names, values = gc[0].split(), gc[1].split()
    row = dict(zip(names, values, strict=False))
    gcs = f"young {row.get('YGC')} ({row.get('YGCT')} s), full {row.get('FGC')} ({row.get('FGCT')} s)"
    info = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=30).stdout
    heap = "; ".join(line.strip().split(" [")[0] for line in info.splitlines() if "total" in line and "used" in line)
    return gcs, heap


async def _measure(name: str, flags: list[str], args: argparse.Namespace) -> Outcome:
    from fixtures.generate import generate
    from fixtures.loader import load_dataset

    java = require("java", "Java 17 is needed: apt-get install openjdk-17-jdk-headless")
    out = Outcome(name, flags)
    state = Path(tempfile.mkdtemp(prefix="bench-ehr-jvm-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/fhir"
    try:
        started = Started()
        try:
            _pid, out.first_start = start_own_ehr(java, flags, state, port, started)
            begun = time.monotonic()
            with ThreadPoolExecutor(1) as loader:  # the loader runs a loop of its own
                loader.submit(asyncio.run, load_dataset(url, generate(patients=25), progress=False)).result()
            out.load = time.monotonic() - begun
        finally:
            started.stop()
        started = Started()
        try:
            pid, out.restart = start_own_ehr(java, flags, state, port, started)
            patients = fixture_patients(url, 25)
            active = random.Random(11).sample(patients, len(patients))
            # Steady state: every search once, then the warm-up, then the measured runs.
            await args.run("warm-up", workload.every_dashboard(url, active, None), concurrency=args.concurrency)
            await args.run("warm-up", workload.build(url, active, None, args.warmup, seed=3),
                           concurrency=args.concurrency)
            requests = workload.build(url, active, None, args.requests)
            for k in range(3):
                before = cpu_seconds(pid)
                result = await args.run(f"{name} #{k + 1}", requests, concurrency=args.concurrency)
                out.cpu_ms.append((cpu_seconds(pid) - before) * 1000 / len(result.latencies))
                out.runs.append(result)
            out.gc, out.heap = _jvm_report(pid)
        finally:
            started.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return out


async def main(args: argparse.Namespace) -> int:
    build_jar()
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    outcomes = []
    for name in names:
        print(f"{name}: {' '.join(VARIANTS[name])} ...", flush=True)
        outcomes.append(await _measure(name, VARIANTS[name], args))
    base = outcomes[0]
    base_rate = sum(r.throughput for r in base.runs) / len(base.runs)
    print(f"\nthe sandbox EHR, 25 fixture patients; {args.requests} dashboard requests per run, 3 runs after "
          f"{args.warmup} of warm-up, concurrency {args.concurrency}; ratios against '{base.name}'")
    print(f"{'flags':12} {'start s':>8} {'load s':>7} {'restart s':>9} {'req/s':>7} {'x':>5} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'CPU ms/req':>10}")
    for o in outcomes:
        rate = sum(r.throughput for r in o.runs) / len(o.runs)
        p50 = sum(r.p50 for r in o.runs) / len(o.runs)
        p99 = sum(r.p99 for r in o.runs) / len(o.runs)
        cpu = sum(o.cpu_ms) / len(o.cpu_ms)
        print(f"{o.name:12} {o.first_start:8.1f} {o.load:7.1f} {o.restart:9.1f} {rate:7.1f} {rate / base_rate:5.2f} "
              f"{p50:7.2f} {p99:7.1f} {cpu:10.2f}")
    print()
    for o in outcomes:
        print(f"{o.name}: {' '.join(o.flags)}\n  runs {', '.join(f'{r.throughput:.0f}' for r in o.runs)} req/s; "
              f"GC {o.gc}; heap {o.heap}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", default="", help="ehr bench: which flag sets, comma-separated (default all: "
                        + ",".join(VARIANTS) + "; 'now' is what ./stack up uses)")
    parser.add_argument("--warmup", type=int, default=3000, help="ehr bench: warm-up requests before measuring")
