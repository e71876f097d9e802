"""The benchmark table shows the audit worker's CPU only when one ran beside the gateway."""

from __future__ import annotations

from bench.runner import Result, report


def _result(name: str, cpu: float | None, worker: float | None) -> Result:
    return Result(name, [0.01] * 100, 1.0, 0, cpu=cpu, load="load 1.0/0.5", worker_cpu=worker)


def test_the_worker_column_appears_only_with_a_worker() -> None:
    direct = _result("direct", None, None)
    alone = report([direct, _result("gateway", 0.03, None)], direct)
    assert "worker" not in alone
    beside = report([direct, _result("gateway", 0.03, 0.005)], direct).splitlines()
    assert beside[0].split()[-5:-3] == ["ms/req", "worker"]
    assert beside[2].split()[-3:-1] == ["0.300", "0.050"]  # ms per request: 30 ms and 5 ms over 100 requests
    assert beside[1].split()[-3:-1] == ["-", "-"]
