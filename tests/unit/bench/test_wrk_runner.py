"""The wrk load generator's report is read back as measured: wrk's made-up samples are taken out again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.runner import Request
from bench.wrk_runner import _lua_string, _parse, _script, _uncorrected


def wrk_correction(data: dict[int, int], expected: int) -> dict[int, int]:
    """What wrk's stats_correct does to a histogram (value in microseconds -> count), written out plainly."""
    out = dict(data)
    top = max(data, default=0)
    for n in range(expected * 2, top + 1):
        count, m = data.get(n, 0), n - expected
        while count and m > expected:
            out[m] = out.get(m, 0) + count
            m -= expected
    return out


histograms = st.dictionaries(st.integers(1, 3000), st.integers(1, 5), min_size=1, max_size=60)


@given(histograms, st.integers(1, 400))
def test_the_made_up_samples_are_taken_out_exactly(real: dict[int, int], expected: int) -> None:
    assert _uncorrected(wrk_correction(real, expected), expected) == real


def test_a_slow_answer_counts_once() -> None:
    # One 1 s answer among 100 fast ones, in a run where each connection answered every 50 ms: wrk would
    # report 18 more answers, from 950 ms down to 100 ms, and a p99 of 900 ms.
    real = {2_000: 100, 1_000_000: 1}
    corrected = wrk_correction(real, 50_000)
    assert sum(corrected.values()) == 119
    out = "summary 101 5050000 0 0\nfailed 0\n" + "".join(f"latency {v} {c}\n" for v, c in sorted(corrected.items()))
    result = _parse("run", out, 5.05, None, concurrency=1)
    assert len(result.latencies) == 101
    assert result.pct(99) == 2.0 and max(result.latencies) == 1.0


def test_answers_and_latencies_that_disagree_are_an_error() -> None:
    out = "summary 10 1000000 0 0\nfailed 0\nlatency 500 9\n"
    try:
        _parse("run", out, 1.0, None, concurrency=1)
    except RuntimeError as exc:
        assert "10 answers but 9 latencies" in str(exc)
    else:
        raise AssertionError("a short histogram was accepted")


def test_statuses_from_400_up_and_cache_labels_are_counted() -> None:
    out = "summary 3 1000 0 1\nfailed 1\ncache HIT 2\nlatency 100 3\n"
    result = _parse("run", out, 0.001, None, concurrency=1)
    assert result.errors == 2 and result.cache == {"HIT": 2}


def test_each_request_keeps_its_own_path_and_headers_in_the_script() -> None:
    origin, script = _script([
        Request("http://127.0.0.1:9/fhir/Patient/a?x=1&y=%22", {"Authorization": "Bearer t\"1"}),
        Request("http://127.0.0.1:9/fhir/Observation", {"If-None-Match": 'W/"s-1"'}),
    ])
    assert origin == "http://127.0.0.1:9"
    assert '{"/fhir/Patient/a?x=1&y=%22", {["Authorization"] = "Bearer t\\0341"}}' in script
    assert '["If-None-Match"] = "W/\\034s-1\\034"' in script
    assert _lua_string("é\\") == '"\\195\\169\\092"'
