"""The same bounded runs as `runner.run`, driven by wrk (C, one thread, one connection per concurrent request).

The httpx runner costs about as much CPU per request as a cache hit, and on a small machine that CPU is
taken from the gateway and the EHR it measures; wrk costs a small fraction of it, so throughput and latency
ratios show the gateway and the EHR rather than the load generator. wrk sends exactly the runner's request
list (every request's own path and headers, in order) and stops after as many answers; its latency
histogram comes back whole, so the percentiles are the same computation as the httpx runner's.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .cpu import load_average, tree_cpu_seconds
from .runner import Request, Result

# One thread: at the rates measured here wrk's thread is mostly idle, and a second would only compete for
# the two cores the gateway and the EHR share.
_SCRIPT = """
local raw = {%(requests)s}
local total = %(total)d
local reqs, i, answered = {}, 0, 0
failed, cache = 0, {}  -- globals: done() reads them from the thread

function init(args)
  for k, r in ipairs(raw) do reqs[k] = wrk.format("GET", r[1], r[2]) end
  io.stderr:write("ready\\n"); io.stderr:flush()
end

function request()
  i = i %% #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 400 then failed = failed + 1 end
  local label = headers["x-cache"] or headers["X-Cache"]
  if label then cache[label] = (cache[label] or 0) + 1 end
  if answered == total then
    wrk.thread:stop()
    io.stderr:write("finished\\n"); io.stderr:flush()
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("summary %%d %%d %%d %%d\\n", summary.requests, summary.duration, e.timeout,
    e.connect + e.read + e.write + e.timeout))
  for _, t in ipairs(threads) do
    io.write(string.format("failed %%d\\n", t:get("failed")))
    for label, n in pairs(t:get("cache")) do io.write(string.format("cache %%s %%d\\n", label, n)) end
  end
  -- latency(k) is the k-th distinct value and its count; past the last one it gives (0, how many there are)
  local _, distinct = latency(2^52)
  for k = 1, distinct do
    local value, count = latency(k)
    io.write(string.format("latency %%d %%d\\n", value, count))
  end
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    """A Lua string literal of `text` (every byte that is not plain printable ASCII as a decimal escape)."""
    out = []
    for byte in text.encode():
        out.append(chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _script(requests: Sequence[Request]) -> tuple[str, str]:
    """(the base URL wrk connects to, the Lua script sending `requests`)."""
    first = urlsplit(requests[0].url)
    origin = f"{first.scheme}://{first.netloc}"
    entries = []
    for r in requests:
        parts = urlsplit(r.url)
        if f"{parts.scheme}://{parts.netloc}" != origin:
            raise ValueError("one wrk run goes to one origin")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in r.headers.items())
        entries.append(f"{{{_lua_string(target)}, {{{headers}}}}}")
    return origin, _SCRIPT % {"requests": ",\n".join(entries), "total": len(requests)}


def _uncorrected(final: dict[int, int], expected: int) -> dict[int, int]:
    """wrk's latency histogram as measured, before its correction for coordinated omission.

    At the end of a run wrk adds, for every latency n >= 2e (e = run time / (answers per connection)), one
    made-up sample at each of n - e, n - 2e, ... while above e: the requests a fixed-rate client would have
    sent meanwhile. Ours is a closed loop like the httpx runner, and ratios between runs of different speeds
    would move with e, so the made-up samples are taken out again: going down each residue class mod e, a
    value's made-up samples are exactly the sum of the real samples above it in the class.
    """
    if expected <= 0:
        return dict(final)
    real: dict[int, int] = {}
    by_class: dict[int, list[int]] = {}
    for value in final:
        by_class.setdefault(value % expected, []).append(value)
    for values in by_class.values():
        above = 0
        for value in sorted(values, reverse=True):
            count = final[value] - above if value > expected else final[value]
            if count:
                real[value] = count
            above += count
    return real


def _parse(name: str, out: str, wall: float, cpu: float | None, concurrency: int) -> Result:
    final: dict[int, int] = {}
    cache: Counter[str] = Counter()
    answered, micros, timeouts, errors = 0, 0, 0, 0
    for line in out[out.find("summary "):].splitlines():
        if not line.strip():
            continue
        word, *rest = line.split()
        if word == "summary":
            answered, micros, timeouts, errors = (int(x) for x in rest)
        elif word == "failed":
            errors += int(rest[0])
        elif word == "cache":
            cache[rest[0]] += int(rest[1])
        elif word == "latency":
            final[int(rest[0])] = int(rest[1])
    per_connection = answered // concurrency
    real = _uncorrected(final, micros // per_connection if per_connection else 0)
    if not answered or sum(real.values()) != answered - timeouts:
        raise RuntimeError(f"wrk run {name!r}: {answered} answers but {sum(real.values())} latencies:\n{out}")
    latencies = [value / 1e6 for value, count in sorted(real.items()) for _ in range(count)]
    return Result(name, latencies, wall, errors, cache, cpu, load_average())


async def run(name: str, requests: Sequence[Request], *, concurrency: int, timeout: float = 60,
              cpu_pid: int | None = None) -> Result:
    """Runs ``requests`` through wrk; with ``cpu_pid``, also that process's (and its children's) CPU meanwhile."""
    origin, script = _script(requests)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        path = Path(tmp) / "run.lua"
        path.write_text(script)
        # wrk runs for a fixed time; the script says on stderr when its thread is ready and when the last
        # answer is in, and an interrupt then ends the run early (wrk reports on SIGINT as at the end).
        cmd = ["wrk", "-t1", f"-c{concurrency}", "-d3600s", f"--timeout={int(timeout)}s", "-s", str(path), origin]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        try:
            wall, cpu, said = await asyncio.wait_for(_measure(proc.stderr, cpu_pid), timeout=max(600, len(requests)))
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            out, err = await proc.communicate()
    if wall is None:
        raise RuntimeError(f"wrk stopped before the run was over: {(said + err.decode())[-2000:]}")
    return _parse(name, out.decode(), wall, cpu, concurrency)


async def _measure(stderr: asyncio.StreamReader, cpu_pid: int | None) -> tuple[float | None, float | None, str]:
    """(wall seconds, CPU seconds of `cpu_pid`) from wrk's "ready" to its "finished", or (None, None, what wrk
    said) as soon as it says anything else: a script error, after which wrk would go on for its whole time."""
    started = cpu_before = 0.0
    async for raw in stderr:
        line = raw.decode(errors="replace").strip()
        if line == "ready":
            cpu_before = tree_cpu_seconds(cpu_pid) if cpu_pid is not None else 0.0
            started = time.perf_counter()
        elif line == "finished":
            wall = time.perf_counter() - started
            return wall, (tree_cpu_seconds(cpu_pid) - cpu_before if cpu_pid is not None else None), ""
        elif line:
            return None, None, line + "\n"
    return None, None, ""
