"""The loader against a mocked FHIR server: ordering, retries, errors, files and the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from fixtures.files import DirSource, write_dataset
from fixtures.generate import generate
from fixtures.loader import load_dataset, main, prune_dataset, server_counts
from fixtures.validate import FixtureError

BASE = "http://fhir.test/fhir"
TODAY = date(2025, 11, 24)


def transaction_response(request: httpx.Request) -> httpx.Response:
    bundle = json.loads(request.content)
    entries = [{"response": {"status": "201 Created", "location": f"{e['request']['url']}/_history/1"}}
               for e in bundle["entry"]]
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": entries})


def no_bookings(router: respx.MockRouter) -> respx.Route:
    """The server's booked appointments (none): the loader asks before sending the slots."""
    return router.get(f"{BASE}/Appointment").mock(
        return_value=httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []}))


def first_resource_ids(calls: Any) -> list[str]:
    return [json.loads(call.request.content)["entry"][0]["resource"]["id"] for call in calls]


@pytest.fixture()
def small_dir(tmp_path: Path) -> Path:
    write_dataset(generate(42, 3, TODAY), tmp_path)
    return tmp_path


async def test_practice_goes_first_then_every_patient_once() -> None:
    dataset = generate(42, 6, TODAY)
    with respx.mock() as router:
        no_bookings(router)
        route = router.post(BASE).mock(side_effect=transaction_response)
        report = await load_dataset(BASE, dataset, concurrency=3, progress=False)
    ids = first_resource_ids(route.calls)
    assert ids[0] == "org-clinic"
    assert sorted(ids[1:]) == [f"pt-{n:04d}" for n in range(1, 7)]
    assert report.bundles == 7
    assert report.resources == sum(dataset.counts().values()) == report.created
    assert dict(report.by_type) == dataset.counts()
    for call in route.calls:
        assert call.request.headers["content-type"] == "application/fhir+json"


async def test_slots_booked_on_the_server_stay_busy_on_reload() -> None:
    dataset = generate(42, 2, TODAY)
    free = [e["resource"]["id"] for e in dataset.practice["entry"]
            if e["resource"]["resourceType"] == "Slot" and e["resource"]["status"] == "free"]
    mine, fixtures_own = free[3], free[4]
    same_time = next(e["resource"] for e in dataset.practice["entry"] if e["resource"]["id"] == free[5])
    booked = {"resourceType": "Bundle", "type": "searchset", "entry": [
        # Booked through the portal: holds its slot.
        {"resource": {"resourceType": "Appointment", "id": "a1", "slot": [{"reference": f"Slot/{mine}"}]}},
        # A fixture appointment from an earlier load: the data set decides where it goes.
        {"resource": {"resourceType": "Appointment", "id": "appt-0001-0009", "meta": {"tag": [dataset.tag]},
                      "slot": [{"reference": f"Slot/{fixtures_own}"}]}},
        # Another server's slot id: not ours to touch.
        {"resource": {"resourceType": "Appointment", "id": "a2", "slot": [{"reference": "Slot/elsewhere"}]}},
        # A booking of a slot written under an older id for the same schedule and time (included by the search).
        {"resource": {"resourceType": "Appointment", "id": "a3", "slot": [{"reference": "Slot/slot-01-0007"}]}},
        {"resource": {"resourceType": "Slot", "id": "slot-01-0007", "schedule": same_time["schedule"],
                      "start": same_time["start"]}, "search": {"mode": "include"}}]}
    with respx.mock() as router:
        search = router.get(f"{BASE}/Appointment").mock(return_value=httpx.Response(200, json=booked))
        route = router.post(BASE).mock(side_effect=transaction_response)
        report = await load_dataset(BASE, dataset, concurrency=1, progress=False)
    params = search.calls[0].request.url.params
    assert "booked" in params["status"].split(",") and params["date"].startswith("ge")
    assert params["_include"] == "Appointment:slot"
    sent = {e["resource"]["id"]: e["resource"]["status"] for e in json.loads(route.calls[0].request.content)["entry"]
            if e["resource"]["resourceType"] == "Slot"}
    assert sent[mine] == "busy" and sent[free[5]] == "busy" and sent[fixtures_own] == "free"
    assert sum(status == "busy" for status in sent.values()) == len(dataset.plan.busy) + 2
    assert report.held_slots == 2 and "2 slots kept busy" in report.summary()


async def test_transient_connection_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fixtures.loader.asyncio.sleep", _no_sleep)
    failures = iter([httpx.ConnectError("refused"), None, httpx.ReadTimeout("slow")])

    def flaky(request: httpx.Request) -> httpx.Response:
        error = next(failures, None)
        if error is not None:
            raise error
        return transaction_response(request)

    with respx.mock() as router:
        no_bookings(router)
        router.post(BASE).mock(side_effect=flaky)
        report = await load_dataset(BASE, generate(42, 2, TODAY), concurrency=1, progress=False)
    assert report.bundles == 3


async def _no_sleep(_: float) -> None:
    return None


async def test_server_rejection_names_the_bundle() -> None:
    def reject_patient_two(request: httpx.Request) -> httpx.Response:
        if b'"pt-0002"' in request.content:
            return httpx.Response(400, json={"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "processing", "diagnostics": "HAPI-0000: something is wrong"}]})
        return transaction_response(request)

    with respx.mock() as router:
        no_bookings(router)
        router.post(BASE).mock(side_effect=reject_patient_two)
        with pytest.raises(FixtureError, match=r"bundle patient-0002 rejected by the server: HTTP 400: "
                                               r"HAPI-0000: something is wrong"):
            await load_dataset(BASE, generate(42, 3, TODAY), concurrency=2, progress=False)


async def test_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fixtures.loader.asyncio.sleep", _no_sleep)
    with respx.mock() as router:
        # The first thing the loader does is ask for the server's booked appointments.
        router.get(url__startswith=BASE).mock(side_effect=httpx.ConnectError("connection refused"))
        with pytest.raises(FixtureError, match=r"bundle practice: .*cannot reach FHIR server"):
            await load_dataset(BASE, generate(42, 1, TODAY), progress=False)


async def test_invalid_bundle_is_never_sent(small_dir: Path) -> None:
    path = small_dir / "patient-0002.json"
    bundle = json.loads(path.read_text())
    bundle["entry"][4]["resource"]["status"] = {"not": "a code"}
    path.write_text(json.dumps(bundle))
    with respx.mock() as router:
        no_bookings(router)
        route = router.post(BASE).mock(side_effect=transaction_response)
        with pytest.raises(FixtureError) as err:
            await load_dataset(BASE, small_dir, concurrency=1, progress=False)
    message = str(err.value)
    resource = bundle["entry"][4]["resource"]
    assert str(path) in message and "entry 4" in message
    assert f"({resource['resourceType']}/{resource['id']})" in message
    assert "pt-0002" not in first_resource_ids(route.calls)


def test_write_and_read_back_a_directory(small_dir: Path) -> None:
    manifest = json.loads((small_dir / "manifest.json").read_text())
    assert manifest["bundles"] == ["practice.json", "patient-0001.json", "patient-0002.json", "patient-0003.json"]
    source = DirSource.open(small_dir)
    assert [Path(name).name for name, _ in source] == manifest["bundles"]
    again = source.dataset()
    assert again is not None and dict(again.bundles())["patient-0002"] == json.loads(
        (small_dir / "patient-0002.json").read_text())


def test_cli_reports_a_malformed_file_in_one_line(small_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_dir / "practice.json").write_text('{"resourceType": "Bundle", "type": "transaction", "entry": [')
    code = main(["load", "--dir", str(small_dir), "--base-url", "http://127.0.0.1:9/fhir", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("portal-fixtures: error: ") and "practice.json: not valid JSON" in err


def test_cli_write_and_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["write", "--dir", str(tmp_path), "--patients", "2", "--today", "2025-11-24"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "patient-0001.json",
                                                         "patient-0002.json", "practice.json"]
    assert main(["demo", "--patients", "3", "--today", "2025-11-24"]) == 0
    out = capsys.readouterr().out
    dataset = generate(42, 3, TODAY)
    for profile in dataset.profiles:
        assert profile.name in out and profile.mrn in out and profile.birth.isoformat() in out
        if profile.ssn:
            assert profile.ssn[-4:] in out


async def test_server_counts_filters_by_fixture_tag() -> None:
    seen: list[httpx.Request] = []

    def count(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "total": 3})

    with respx.mock() as router:
        router.get(url__startswith=BASE).mock(side_effect=count)
        counts = await server_counts(BASE, namespace="zt", types=("Patient", "Slot"))
    assert counts == {"Patient": 3, "Slot": 3}
    assert all(r.url.params["_tag"].endswith("|portal-fixtures-zt") for r in seen)
    assert all(r.headers["cache-control"] == "no-cache" for r in seen)


async def test_prune_deletes_only_tagged_resources_missing_from_the_data_set() -> None:
    dataset = generate(42, 1, TODAY)
    deleted: list[str] = []

    def search(request: httpx.Request) -> httpx.Response:
        resource_type = request.url.path.rsplit("/", 1)[-1]
        ids = ["pt-0001", "pt-0099"] if resource_type == "Patient" else []
        entries = [{"resource": {"resourceType": resource_type, "id": i}} for i in ids]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries})

    def batch(request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        assert bundle["type"] == "batch"
        deleted.extend(e["request"]["url"] for e in bundle["entry"])
        entries = [{"response": {"status": "204 No Content"}} for _ in bundle["entry"]]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries})

    with respx.mock() as router:
        router.get(url__startswith=BASE).mock(side_effect=search)
        router.post(BASE).mock(side_effect=batch)
        assert await prune_dataset(BASE, dataset) == 1
    assert deleted == ["Patient/pt-0099"]
