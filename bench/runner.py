"""A bounded async load runner: a fixed number of requests at a fixed concurrency, with latency stats."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx


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


async def run(name: str, requests: Sequence[Request], *, concurrency: int, timeout: float = 60) -> Result:
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
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return Result(name, latencies, wall, errors, cache)


def report(results: Sequence[Result], baseline: Result) -> str:
    lines = [f"{'run':34} {'req':>6} {'err':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'thr x':>6} {'p50 x':>6} {'p99 x':>6}"]
    for r in results:
        lines.append(
            f"{r.name:34} {len(r.latencies):6d} {r.errors:4d} {r.throughput:8.1f} {r.p50:8.2f} {r.p99:8.2f} "
            f"{r.throughput / baseline.throughput:6.2f} {r.p50 / baseline.p50:6.2f} {r.p99 / baseline.p99:6.2f}"
        )
    return "\n".join(lines)
