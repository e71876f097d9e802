"""Added latency and own CPU of the gateway (uncached) over going straight to HAPI, for the same dashboard
requests; a hello-world ASGI app's CPU per request in the same run is the floor, and the token check is
measured alone."""

from __future__ import annotations

import argparse

from . import runner, token_cost, workload
from .stack import ehr_and_redis, fixture_patients, gateway, hello_world, measured, patient_tokens

ROUNDS = 3  # interleaved, to spread drift (GC, disk, other load) over every target


async def main(args: argparse.Namespace) -> int:
    with ehr_and_redis() as cfg:
        patients = fixture_patients(cfg.fhir_base_url, args.patients)
        with gateway(cfg, {"PORTAL_CACHE_ENABLED": "false"}, workers=args.workers,
                     audit_worker=args.own_worker) as gw, \
                hello_world() as (hello_url, hello_pid):
            tokens = patient_tokens(gw.url, gw.state, patients)
            direct_reqs = workload.build(cfg.fhir_base_url, patients, None, args.requests)
            gw_reqs = workload.build(gw.url + "/fhir", patients, tokens, args.requests)
            # Same URLs and headers; more of them, so its small CPU time spans enough clock ticks.
            hello_reqs = workload.build(hello_url, patients, tokens, args.requests * 4)
            # Warm every path (JIT, connection pools, the EHR's database) so we compare steady states. A
            # search the EHR has not run lately answers far more slowly the first time, so every search of the
            # workload goes once before the measured runs, or the first direct run would pay for all of them.
            await args.run("warm-up direct", workload.every_dashboard(cfg.fhir_base_url, patients, None),
                             concurrency=args.concurrency)
            await args.run("warm-up gateway", gw_reqs[:200], concurrency=args.concurrency)
            await args.run("warm-up hello", hello_reqs[:200], concurrency=args.concurrency)
            results = []
            for round_ in range(ROUNDS):
                results.append(await args.run(f"direct HAPI #{round_ + 1}", direct_reqs,
                                                concurrency=args.concurrency))
                results.append(await measured(args.run, f"gateway uncached #{round_ + 1}", gw_reqs,
                                              concurrency=args.concurrency, gw=gw))
                results.append(await args.run(f"hello-world ASGI #{round_ + 1}", hello_reqs,
                                                concurrency=args.concurrency, cpu_pid=hello_pid))
        tokens_cost = await token_cost.measure(cfg.redis_url, patients, args.requests, args.concurrency)
    baseline = results[0]
    print(f"\n{args.requests} dashboard requests over {len(patients)} patients, concurrency {args.concurrency}, "
          f"gateway workers {args.workers}; ratios are against '{baseline.name}'; cpu ms/req is the gateway's "
          "(or the hello-world app's) own CPU, utime + stime of its processes; worker is the audit worker's, "
          "from the start of a run until it has moved that run's audit events on.")
    print(runner.report(results, baseline))
    direct = [r for r in results if r.name.startswith("direct")]
    through = [r for r in results if r.name.startswith("gateway")]
    hello = [r for r in results if r.name.startswith("hello")]
    d50 = sum(r.p50 for r in direct) / len(direct)
    g50 = sum(r.p50 for r in through) / len(through)
    print(f"\nmean p50: direct {d50:.2f} ms, gateway {g50:.2f} ms -> added {g50 - d50:.2f} ms "
          f"({(g50 / d50 - 1) * 100:.1f} %)")
    print(own_cpu_summary(through, hello))
    print()
    print(token_cost.report(tokens_cost))
    return 0


def own_cpu_summary(runs: list[runner.Result], floor: list[runner.Result]) -> str:
    """The measured runs' mean CPU per request (the gateway's, and its audit worker's where one ran), against
    the hello-world floor's."""
    mean = sum(r.cpu_ms or 0.0 for r in runs) / len(runs)
    low = sum(r.cpu_ms or 0.0 for r in floor) / len(floor)
    line = (f"own CPU per request: {mean:.3f} ms (runs: {', '.join(f'{r.cpu_ms:.3f}' for r in runs)}); "
            f"hello-world ASGI floor {low:.3f} ms -> {mean / low:.1f}x the floor")
    workers = [r.worker_cpu_ms for r in runs if r.worker_cpu_ms is not None]
    if workers:
        worker = sum(workers) / len(workers)
        line += f"; audit worker {worker:.3f} ms more (together {mean + worker:.3f} ms)"
    return line
