"""A bounded async load runner: a fixed number of requests at a fixed concurrency, with latency stats."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from .cpu import load_average, tree_cpu_seconds


@dataclass
class Request:
    url: str
    headers: dict[str, str]


@dataclass
class Result:
    name: str
    latencies: list[float]
    wall: float
    errors: int
    cache: Counter[str] = field(default_factory=Counter)  # X-Cache answers (HIT/MISS/...), when given
    cpu: float | None = None  # CPU seconds the measured process (and its children) spent during the run
    load: str = ""  # the machine's load average when the run ended
    worker_cpu: float | None = None  # CPU seconds of the gateway's audit worker for this run (`stack.measured`)
    ehr_cores: float | None = None  # cores the EHR's process used during the run, where it was watched

    @property
    def cpu_ms(self) -> float | None:
        """The measured process's own CPU per request, in ms."""
        return self.cpu * 1000 / len(self.latencies) if self.cpu is not None and self.latencies else None

    @property
    def worker_cpu_ms(self) -> float | None:
        """The audit worker's CPU per request, in ms (None when the gateway moves its audit stream itself)."""
        return self.worker_cpu * 1000 / len(self.latencies) if self.worker_cpu is not None and self.latencies else None

    @property
    def hit_rate(self) -> float | None:
        total = sum(self.cache.values())
        return self.cache["HIT"] / total if total else None

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, round(q / 100 * (len(data) - 1)))] * 1000

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p99(self) -> float:
        return self.pct(99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")


async def run(name: str, requests: Sequence[Request], *, concurrency: int, timeout: float = 60,
              cpu_pid: int | None = None) -> Result:
    """Runs ``requests``; with ``cpu_pid``, also what that process (and its children) spent in CPU meanwhile."""
    latencies: list[float] = []
    errors = 0
    cache: Counter[str] = Counter()
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                req = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            start = time.perf_counter()
            try:
                response = await client.get(req.url, headers=req.headers)
                await response.aread()
                if response.status_code >= 400:
                    errors += 1
                if label := response.headers.get("x-cache"):
                    cache[label] += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        cpu_before = tree_cpu_seconds(cpu_pid) if cpu_pid is not None else 0.0
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        cpu = tree_cpu_seconds(cpu_pid) - cpu_before if cpu_pid is not None else None
    return Result(name, latencies, wall, errors, cache, cpu, load_average())


def report(results: Sequence[Result], baseline: Result) -> str:
    """One line per run: latency, ratios to ``baseline``, the measured process's CPU ms per request (own
    CPU; '-' where no process of ours was measured), the audit worker's where one ran beside the gateway,
    and the load average as the run ended."""
    worker = any(r.worker_cpu is not None for r in results)
    lines = [f"{'run':34} {'req':>6} {'err':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'thr x':>6} {'p50 x':>6} {'p99 x':>6} {'cpu ms/req':>10}" + (f" {'worker':>7}" if worker else "")
             + "  load 1/5 min"]
    for r in results:
        cpu = f"{r.cpu_ms:10.3f}" if r.cpu_ms is not None else f"{'-':>10}"
        if worker:
            cpu += f" {r.worker_cpu_ms:7.3f}" if r.worker_cpu_ms is not None else f" {'-':>7}"
        lines.append(
            f"{r.name:34} {len(r.latencies):6d} {r.errors:4d} {r.throughput:8.1f} {r.p50:8.2f} {r.p99:8.2f} "
            f"{r.throughput / baseline.throughput:6.2f} {r.p50 / baseline.p50:6.2f} {r.p99 / baseline.p99:6.2f} "
            f"{cpu}  {r.load.removeprefix('load ')}"
        )
    return "\n".join(lines)
