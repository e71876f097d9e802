"""`./stack bench [gateway|cache|peer|portal|audit|ab|ehr] ...`: run a benchmark and print ratios against a baseline
measured in the same run (direct HAPI; for the audit: a direct read and the EHR-searched access log; for ab: the
gateway of an earlier commit; for ehr: the sandbox EHR's JVM flags of now; for peer: direct HAPI, with google's
fhir-gateway measured beside us)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import runner, wrk_runner
from .ab import add_arguments as ab_arguments
from .audit_cost import add_arguments as audit_arguments
from .ehr_jvm import add_arguments as ehr_arguments


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("which", choices=["gateway", "cache", "peer", "portal", "audit", "ab", "ehr"], nargs="?",
                        default="gateway")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=25, help="how many of the fixture set's patients to draw from")
    parser.add_argument("--active", type=int, default=400, help="cache bench: patients whose dashboards are used")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--rounds", type=int, default=4, help="portal bench: warm loads of each patient's page")
    audit_arguments(parser)
    ab_arguments(parser)
    ehr_arguments(parser)
    parser.add_argument("--messages", type=int, default=0,
                        help="portal bench: also time N messaging round trips (WRITES 2N messages to the EHR)")
    parser.add_argument("--bookings", type=int, default=0,
                        help="portal bench: also time N booking + cancelling round trips (WRITES 2N appointments "
                             "to the EHR, all cancelled again)")
    parser.add_argument("--load", choices=["wrk", "httpx"], default="wrk" if wrk_runner.available() else "httpx",
                        help="load generator: wrk (the default where it is installed; it takes little of the CPU the "
                             "gateway and the EHR share) or the Python httpx runner")
    parser.add_argument("--audit-worker", choices=["process", "in-gateway"], default="process",
                        help="where the audit stream is moved on: an audit worker process beside the gateway (as "
                             "./stack up runs it; its CPU is reported beside the gateway's), or the gateway process")
    args = parser.parse_args()
    if args.load == "wrk" and not wrk_runner.available():
        parser.error("--load wrk needs wrk on the PATH (Debian: apt-get install wrk)")
    args.run = wrk_runner.run if args.load == "wrk" else runner.run
    args.own_worker = args.audit_worker == "process"
    print(f"load generator: {args.load}; audit stream moved on by "
          + ("an audit worker process" if args.own_worker else "the gateway process"))
    if args.which == "gateway":
        from .gateway_overhead import main as run
    elif args.which == "portal":
        from .portal_pages import main as run
    elif args.which == "audit":
        from .audit_cost import main as run
    elif args.which == "ab":
        from .ab import main as run
    elif args.which == "ehr":
        from .ehr_jvm import main as run
    elif args.which == "peer":
        from .peer import main as run
    else:
        from .cache_warm import main as run
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
