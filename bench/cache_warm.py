"""The portal's dashboard workload three ways in one run: straight to HAPI, through the gateway without
its cache, and through the gateway with a warm cache. Prints throughput and p50/p99 as ratios to
direct HAPI, the warm run's hit rate, and the cache Redis memory per cached patient.

The workload spans ``--active`` patients drawn (seeded) from the first ``--patients`` of the EHR:
portal users who open their dashboard again and again. "Warm" means each of those dashboards went
through the gateway once before the measured runs (the warm-up pass is reported too: it is the cold cache).
The warm runs and their revalidations (304s) alternate with direct runs, three rounds, and each round's
ratio is to its own direct run; each of those runs starts once the EHR is quiet.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import Counter

import httpx

from cache.server import make_cache_redis, memory_report

from . import runner, token_cost, workload
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


async def _memory(url: str) -> dict[str, int]:
    redis = make_cache_redis(url, timeout=5)
    try:
        report = await memory_report(redis)
    finally:
        await redis.aclose()
    return {"used": int(report["used_memory"]), "keys": int(report["keys"]), "evicted": int(report["evicted_keys"])}


async def revalidations(requests: list[runner.Request]) -> list[runner.Request]:
    """The same requests with If-None-Match set to the ETag each one is answered with now."""
    out = []
    async with httpx.AsyncClient(timeout=60) as client:
        for r in requests:
            etag = (await client.get(r.url, headers=r.headers)).headers.get("etag")
            out.append(runner.Request(r.url, {**r.headers, "If-None-Match": etag} if etag else r.headers))
    return out


async def main(args: argparse.Namespace) -> int:
    with ehr_and_redis() as cfg:
        population = fixture_patients(cfg.fhir_base_url, args.patients)
        active = random.Random(11).sample(population, min(args.active, len(population)))
        print(f"EHR {cfg.fhir_base_url}: {len(population)} patients; workload over {len(active)} of them, "
              f"{args.requests} requests per run, concurrency {args.concurrency}, gateway workers {args.workers}.")
        results: list[runner.Result] = []
        direct = workload.build(cfg.fhir_base_url, active, None, args.requests)
        # Every search once first: a search the EHR has not run lately answers far more slowly the first
        # time, and otherwise the direct run would pay for that instead of the gateway's uncached run.
        await args.run("warm-up direct", workload.every_dashboard(cfg.fhir_base_url, active, None),
                         concurrency=args.concurrency)
        results.append(await args.run("direct HAPI", direct, concurrency=args.concurrency))

        with hello_world() as (hello_url, hello_pid):
            hello_reqs = workload.build(hello_url, active, None, args.requests * 4)  # enough clock ticks
            await args.run("warm-up hello", hello_reqs[:200], concurrency=args.concurrency)
            floor = await args.run("hello-world ASGI (floor)", hello_reqs, concurrency=args.concurrency,
                                     cpu_pid=hello_pid)

        with gateway(cfg, {"PORTAL_CACHE_ENABLED": "false"}, workers=args.workers, audit_worker=args.own_worker) as gw:
            reqs = workload.build(gw.url + "/fhir", active, patient_tokens(gw.url, gw.state, active), args.requests)
            await args.run("warm-up gateway", reqs[:200], concurrency=args.concurrency)
            results.append(await measured(args.run, "gateway, no cache", reqs, concurrency=args.concurrency, gw=gw))

        with private_cache_redis() as cache_url, \
                gateway(cfg, {"PORTAL_CACHE_REDIS_URL": cache_url}, workers=args.workers,
                        audit_worker=args.own_worker) as gw:
            tokens = patient_tokens(gw.url, gw.state, active)
            wait_for_change_feed(gw.url)  # its first round empties the cache: let it pass before warming
            before = await _memory(cache_url)
            every = workload.every_dashboard(gw.url + "/fhir", active, tokens)
            cold = await measured(args.run, "gateway, cold cache (warm-up)", every, concurrency=args.concurrency,
                                  gw=gw)
            after = await _memory(cache_url)
            results.append(cold)
            reqs = workload.build(gw.url + "/fhir", active, tokens, args.requests)
            revalidating = await revalidations(reqs)
            # Interleaved rounds, as `bench gateway` runs them: the EHR in each round is the EHR of that round
            # (its JIT, its collections, the audit export arriving in the background).
            rounds: list[tuple[runner.Result, runner.Result, runner.Result]] = []
            # The EHR's own CPU while the gateway answers from the cache: its background work (the audit
            # export, its JIT and collections after a direct run) shares the two cores with the gateway.
            ehr_pid = listener_of(httpx.URL(cfg.fhir_base_url).port or 80)

            # Every run of the rounds starts with the EHR quiet (`settle_ehr`).
            for round_ in range(ROUNDS):
                n = f" #{round_ + 1}"
                await settle_ehr(ehr_pid)
                first = await args.run("direct HAPI" + n, direct, concurrency=args.concurrency)
                await settle_ehr(ehr_pid)
                warm = await measured(args.run, "gateway, warm cache" + n, reqs, concurrency=args.concurrency, gw=gw,
                                      ehr_pid=ehr_pid)
                await settle_ehr(ehr_pid)
                rounds.append((first, warm, await measured(args.run, "gateway, warm cache, 304s" + n, revalidating,
                                                           concurrency=args.concurrency, gw=gw)))
                results += rounds[-1]
        results.append(floor)
        tokens_cost = await token_cost.measure(cfg.redis_url, active, args.requests, args.concurrency)

    baseline = results[0]
    print()
    print(runner.report(results, baseline))
    print(f"(ratios against '{baseline.name}'; the rounds' own ratios follow)")
    for index, label in ((1, "warm cache"), (2, "warm cache, 304s")):
        ratios = [r[index].throughput / r[0].throughput for r in rounds]
        p50s = [r[index].p50 / r[0].p50 for r in rounds]
        print(f"{label + ':':18} throughput {statistics.fmean(ratios):5.2f}x direct HAPI of the same round (rounds: "
              + ", ".join(f"{x:.2f}" for x in ratios) + f"); p50 {statistics.fmean(p50s):.2f}x")
    if rounds[0][1].ehr_cores is not None:
        print("the EHR's own CPU during the warm runs (cores; its background work on the same two cores): "
              + ", ".join(f"{r[1].ehr_cores or 0.0:.2f}" for r in rounds))
    for run in (results[1], cold):
        print(f"{run.name + ':':32} {own_cpu_summary([run], [floor])}")
    for index, label in ((1, "gateway, warm cache"), (2, "gateway, warm cache, 304s")):
        print(f"{label + ':':32} {own_cpu_summary([r[index] for r in rounds], [floor])}")
    served: Counter[str] = Counter()
    for r in rounds:
        served += r[1].cache
    total = sum(served.values())
    if total:
        print(f"\nwarm runs: {served['HIT'] / total * 100:.1f} % of answers from the cache ({dict(served)})")
    uncached = results[1]
    print(f"uncached gateway p50 overhead: {uncached.p50 - baseline.p50:+.2f} ms "
          f"({(uncached.p50 / baseline.p50 - 1) * 100:+.1f} %; one run each, direct first, not interleaved: "
          "`bench gateway` interleaves three rounds and is the measure of it)")
    grown = after["used"] - before["used"]
    print(f"cache Redis: {after['keys'] - before['keys']} keys, {grown / 1_048_576:.1f} MiB for {len(active)} "
          f"patients' dashboards = {grown / max(1, len(active)) / 1024:.1f} KiB per cached patient "
          f"({len(workload.dashboard_queries('x'))} answers each); evicted keys: {after['evicted']}")
    print()
    print(token_cost.report(tokens_cost))
    return 0
