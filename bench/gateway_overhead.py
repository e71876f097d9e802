"""Added latency of the gateway (uncached) over going straight to HAPI, for the same dashboard requests."""

from __future__ import annotations

import argparse

from . import runner, workload
from .stack import ehr_and_redis, fixture_patients, gateway, patient_tokens


async def main(args: argparse.Namespace) -> int:
    with ehr_and_redis() as cfg:
        patients = fixture_patients(cfg.fhir_base_url, args.patients)
        with gateway(cfg, {"PORTAL_CACHE_ENABLED": "false"}) as (url, state):
            tokens = patient_tokens(url, state, patients)
            direct_reqs = workload.build(cfg.fhir_base_url, patients, None, args.requests)
            gw_reqs = workload.build(url + "/fhir", patients, tokens, args.requests)
            # Warm both paths (JIT, connection pools, HAPI's search cache) so we compare steady states.
            await runner.run("warm-up direct", direct_reqs[:200], concurrency=args.concurrency)
            await runner.run("warm-up gateway", gw_reqs[:200], concurrency=args.concurrency)
            results = []
            for round_ in range(2):  # interleave to spread drift (GC, disk) over both targets
                results.append(await runner.run(f"direct HAPI #{round_ + 1}", direct_reqs,
                                                concurrency=args.concurrency))
                results.append(await runner.run(f"gateway uncached #{round_ + 1}", gw_reqs,
                                                concurrency=args.concurrency))
    baseline = results[0]
    print(f"\n{args.requests} dashboard requests over {len(patients)} patients, concurrency {args.concurrency}; "
          f"ratios are against '{baseline.name}'.")
    print(runner.report(results, baseline))
    direct = [r for r in results if r.name.startswith("direct")]
    through = [r for r in results if r.name.startswith("gateway")]
    d50 = sum(r.p50 for r in direct) / len(direct)
    g50 = sum(r.p50 for r in through) / len(through)
    print(f"\nmean p50: direct {d50:.2f} ms, gateway {g50:.2f} ms -> added {g50 - d50:.2f} ms "
          f"({(g50 / d50 - 1) * 100:.1f} %)")
    return 0
