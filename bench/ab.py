"""`./stack bench ab --against REF`: this checkout's gateway against the gateway of an earlier commit, side
by side on the same EHR, the same requests alternating between them round after round.

On a shared machine one run's CPU per request moves by more than a change of a few per cent; two
gateways measured in turn, in the same minutes, share whatever the machine is doing. Each round runs the
dashboard workload once through each (the older one first in odd rounds, second in even ones), each with
its own cache Redis. Printed: the gateway's own CPU per request for every round (with its audit worker's
where each runs one), the mean and median of each side, their ratio, and in how many rounds this checkout
used less CPU than the other.

`REF` is checked out into a temporary worktree (`git worktree add --detach`) and run with this checkout's
Python environment, so it must not need other dependencies. `--cache off` measures uncached pass-through.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import runner, workload
from .cpu import wait_quiet
from .stack import (
    ehr_and_redis,
    fixture_patients,
    gateway,
    measured,
    patient_tokens,
    private_cache_redis,
    wait_for_change_feed,
)

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[tuple[Path, str]]:
    """`ref` in a temporary worktree: its directory and the commit it resolved to."""
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=ROOT,
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"bench ab: {ref!r} is not a commit of this repository")
    commit = found.stdout.strip()
    where = Path(tempfile.mkdtemp(prefix="bench-ab-")) / "code"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(where), commit], cwd=ROOT, check=True)
    try:
        yield where, commit
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, check=False)
        shutil.rmtree(where.parent, ignore_errors=True)


def _summary(name: str, cpu: list[float]) -> str:
    return (f"{name:28} mean {statistics.fmean(cpu):.3f}  median {statistics.median(cpu):.3f} ms/req   rounds: "
            + " ".join(f"{c:.3f}" for c in cpu))


async def main(args: argparse.Namespace) -> int:
    if not args.against:
        raise SystemExit("bench ab needs --against <commit or branch> to compare this checkout with")
    cache = args.cache == "warm"
    with checkout(args.against) as (other_code, commit), ehr_and_redis() as cfg:
        population = fixture_patients(cfg.fhir_base_url, args.patients)
        active = random.Random(11).sample(population, min(args.active, len(population)))
        env = {"PORTAL_CACHE_ENABLED": str(cache).lower()}
        # Both the same way: an audit worker beside each, unless the other commit has none.
        worker = args.own_worker and (other_code / "fhir_gateway" / "audit_worker.py").exists()
        if args.own_worker and not worker:
            print(f"{commit[:10]} has no audit worker: both gateways move their audit streams themselves")
        with private_cache_redis() as cache_a, private_cache_redis() as cache_b, \
                gateway(cfg, {**env, "PORTAL_CACHE_REDIS_URL": cache_a}, args.workers, code=other_code,
                        audit_worker=worker) as older, \
                gateway(cfg, {**env, "PORTAL_CACHE_REDIS_URL": cache_b}, args.workers, audit_worker=worker) as this:
            sides = {f"at {commit[:10]}": older, "this checkout": this}
            print(f"EHR {cfg.fhir_base_url}: {len(active)} patients; {args.requests} requests per run, concurrency "
                  f"{args.concurrency}, cache {args.cache}, {args.ab_rounds} rounds; gateway workers {args.workers}.")
            requests: dict[str, list[runner.Request]] = {}
            for name, gw in sides.items():
                tokens = patient_tokens(gw.url, gw.state, active)
                every = workload.every_dashboard(gw.url + "/fhir", active, tokens)
                if cache:
                    wait_for_change_feed(gw.url)
                await args.run("warm-up", every, concurrency=args.concurrency)  # the cache, pools, the EHR
                requests[name] = workload.build(gw.url + "/fhir", active, tokens, args.requests)
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            rate: dict[str, list[float]] = {name: [] for name in sides}
            for round_ in range(args.ab_rounds):
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for name in order:
                    await wait_quiet([pid for gw in sides.values() for pid in gw.pids])
                    result = await measured(args.run, name, requests[name], concurrency=args.concurrency,
                                            gw=sides[name])
                    if result.errors or result.cpu_ms is None:
                        raise SystemExit(f"{name}: {result.errors} errors in round {round_ + 1}; see "
                                         f"{sides[name].state / 'gateway.log'}")
                    cpu[name].append(result.cpu_ms + (result.worker_cpu_ms or 0.0))
                    rate[name].append(result.throughput)
                print(f"round {round_ + 1}: " + "  ".join(f"{n} {cpu[n][-1]:.3f} ms/req {rate[n][-1]:.0f} req/s"
                                                          for n in sides) + f"  ({result.load})")
    mine, theirs = cpu["this checkout"], cpu[f"at {commit[:10]}"]
    print()
    print(_summary(f"at {commit[:10]}", theirs))
    print(_summary("this checkout", mine))
    ratio = statistics.fmean(mine) / statistics.fmean(theirs)
    lower = sum(m < t for m, t in zip(mine, theirs, strict=True))
    print(f"this checkout / {commit[:10]}: {ratio:.3f}x CPU per request (means); less CPU in {lower} of "
          f"{len(mine)} rounds")
    faster = statistics.fmean(rate["this checkout"]) / statistics.fmean(rate[f"at {commit[:10]}"])
    print(f"throughput (requests a second; at concurrency {args.concurrency} it is also latency): this checkout / "
          f"{commit[:10]} {faster:.3f}x (means)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--against", help="ab bench: the commit or branch to compare this checkout with")
    parser.add_argument("--cache", choices=["warm", "off"], default="warm", help="ab bench: warm cache or none")
    parser.add_argument("--ab-rounds", type=int, default=9, help="ab bench: rounds (each runs both gateways)")
