"""The gateway's token check, measured alone in this process: signature + claims (`TokenVerifier.authenticate`)
and the revocation look-up in the state Redis (`check_revocation`), as CPU ms per verification.

- first use of a token: the ES256 signature and the claims checked (what every new token costs once);
- again: a token seen before (the verifier remembers verified tokens; `exp` is checked again);
- revocation look-up: the Redis read every request makes (this process's CPU only; the round trip's wait
  is not CPU);
- amortised over the dashboard workload: the workload's own sequence of tokens, each request paying its
  share of first uses, plus the look-up.

Each of the last two one at a time (every look-up pays a round trip of its own, the event loop idle while it
waits) and, as the gateway meets them under the benchmark's load, `concurrency` at a time (their look-ups
share a round trip, as the gateway's Redis client sends the commands of one turn of its loop together).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fhir_gateway.caller import TokenVerifier, redis_revocation_check
from fhir_gateway.clients import make_redis
from smart_auth.keys import KeyStore

from . import workload
from .stack import patient_tokens


async def _cpu_ms_per(n: int, step: Callable[[int], Awaitable[None]], at_once: int = 1) -> float:
    started = time.process_time()
    for first in range(0, n, at_once):
        if at_once == 1:
            await step(first)  # awaited as it is: a task around each would be counted too
        else:
            await asyncio.gather(*(step(i) for i in range(first, min(n, first + at_once))))
    return (time.process_time() - started) * 1000 / n


async def measure(redis_url: str, patients: list[str], requests: int,
                  concurrency: int = 8) -> list[tuple[str, float]]:
    """(what, CPU ms per verification) rows; only reads the revocation set."""
    url = "http://127.0.0.1:9"  # the issuer and audience the tokens name; nothing listens there
    state = Path(tempfile.mkdtemp(prefix="bench-tokens-"))
    keys = KeyStore.load_or_create(state / "signing-key.pem")
    redis = make_redis(redis_url)

    def new_verifier() -> TokenVerifier:  # one that has seen no token yet
        return TokenVerifier(keys.verification_keys(), redis_revocation_check(redis), issuer=url,
                             audience=url + "/fhir")

    try:
        verifier = new_verifier()
        fresh = [patient_tokens(url, state, patients) for _ in range(4)]  # new jti each: never seen before
        cold = [f"Bearer {t}" for batch in fresh for t in batch.values()]

        async def first_use(i: int) -> None:
            verifier.authenticate(cold[i])

        first = await _cpu_ms_per(len(cold), first_use)
        seen = cold[: len(patients)]

        async def again(i: int) -> None:
            verifier.authenticate(seen[i % len(seen)])

        repeat = await _cpu_ms_per(5000, again)
        caller = verifier.authenticate(seen[0])

        async def look_up(i: int) -> None:
            await verifier.check_revocation(caller)

        await _cpu_ms_per(50, look_up)  # connection made, script cache warm
        revocation = await _cpu_ms_per(2000, look_up)
        shared_look_up = await _cpu_ms_per(2000, look_up, concurrency)

        # The workload's sequence of tokens, with a verifier that has seen none of them yet.
        verifier = new_verifier()
        tokens = patient_tokens(url, state, patients)
        sequence = [r.headers["Authorization"] for r in workload.build(url, patients, tokens, requests)]

        async def verify(i: int) -> None:
            await verifier.verify(sequence[i])

        amortised = await _cpu_ms_per(len(sequence), verify)
        verifier = new_verifier()
        shared = await _cpu_ms_per(len(sequence), verify, concurrency)
    finally:
        await redis.aclose()
    return [("first use of a token (ES256 signature + claims)", first),
            ("a token seen before (exp checked again)", repeat),
            ("revocation look-up (one Redis read), one at a time", revocation),
            (f"revocation look-up, {concurrency} at a time", shared_look_up),
            (f"amortised over the workload ({requests} requests, {len(patients)} tokens), one at a time", amortised),
            (f"amortised over the workload, {concurrency} at a time (as under the benchmark's load)", shared)]


def report(rows: list[tuple[str, float]]) -> str:
    lines = [f"{'token verification, CPU of this process':80} {'ms/verify':>9}"]
    lines += [f"{what:80} {ms:9.3f}" for what, ms in rows]
    return "\n".join(lines)
