"""The EHR client's lean HTTP/1.1 transport against a real local server whose every byte the test scripts:
keep-alive, chunked and gzipped answers, hang-ups, silence and a full pool, each showing up as the answer
or the httpx error the gateway maps (503 / 504) exactly as with httpx's own transport."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from fhir_gateway.errors import FHIRError
from fhir_gateway.http1 import Http1Transport
from fhir_gateway.upstream import Upstream, make_client
from web.tls import client_tls


@dataclass
class Exchange:
    """One request as the server read it, on the `connection`-th connection it accepted."""

    connection: int
    head: bytes
    body: bytes


@dataclass
class Server:
    url: str
    seen: list[Exchange] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0


# (exchange, writer, n-th request on this connection) -> keep the connection open?
Answer = Callable[[Exchange, asyncio.StreamWriter, int], Awaitable[bool]]


def reply(status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def ok(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
    writer.write(reply(body=json.dumps({"path": exchange.head.split(b" ")[1].decode()}).encode()))
    return True


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[Server]:
    state = Server("")
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        number, nth = accepted, 0
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                exchange = Exchange(number, head, await reader.readexactly(length) if length else b"")
                state.seen.append(exchange)
                nth += 1
                keep = await answer(exchange, writer, nth)
                await writer.drain()
                if not keep:
                    return
        finally:
            state.open_now -= 1
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/fhir/"
    try:
        yield state
    finally:
        srv.close()


def client(url: str, *, read_timeout: float = 2.0, max_connections: int = 10,
           fallback: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    transport = Http1Transport(max_connections=max_connections,
                               fallback=fallback or httpx.AsyncHTTPTransport(verify=client_tls()))
    return httpx.AsyncClient(base_url=url, transport=transport,
                             timeout=httpx.Timeout(read_timeout, connect=1.0, pool=read_timeout))


async def test_answers_come_back_whole_and_connections_are_kept_alive() -> None:
    async with server(ok) as srv, client(srv.url) as c:
        first = await c.get("Patient/p1", params={"a": "1 2"})
        second = await c.get("Observation", headers={"X-Request-Id": "r-1"})
    assert first.status_code == 200 and first.json() == {"path": "/fhir/Patient/p1?a=1+2"}
    assert second.json() == {"path": "/fhir/Observation"}
    assert [e.connection for e in srv.seen] == [1, 1]  # the second request reused the first connection
    assert b"\r\nx-request-id: r-1\r\n" in srv.seen[1].head.lower()
    assert b"host: 127.0.0.1:" in srv.seen[0].head.lower()


async def test_a_chunked_gzipped_answer_is_decoded_as_httpx_would() -> None:
    resource = {"resourceType": "Bundle", "entry": [{"n": i} for i in range(200)]}
    packed = gzip.compress(json.dumps(resource).encode())

    async def chunked(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/fhir+json\r\n\r\n")
        for start in range(0, len(packed), 100):  # many small chunks, as HAPI sends them
            part = packed[start:start + 100]
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    async with server(chunked) as srv, client(srv.url) as c:
        r = await c.get("Observation")
        again = await c.get("Observation")
    assert r.json() == resource and again.json() == resource
    assert r.headers["content-type"] == "application/fhir+json"
    assert [e.connection for e in srv.seen] == [1, 1]


async def test_a_body_is_sent_with_its_length() -> None:
    async def echo(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(reply(201, exchange.body, {"Location": "Communication/c1"}))
        return True

    async with server(echo) as srv, client(srv.url) as c:
        r = await c.post("Communication", json={"resourceType": "Communication", "text": "héllo"},
                         headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201 and r.headers["location"] == "Communication/c1"
    assert r.json() == {"resourceType": "Communication", "text": "héllo"}
    assert srv.seen[0].head.startswith(b"POST /fhir/Communication HTTP/1.1\r\n")
    assert b"content-type: application/fhir+json" in srv.seen[0].head.lower()


async def test_connection_close_and_a_server_that_hangs_up_between_requests() -> None:
    async def close_after_one(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(reply(headers={"Connection": "close"}) if exchange.connection == 1 else reply())
        return exchange.connection != 1

    async with server(close_after_one) as srv, client(srv.url) as c:
        assert (await c.get("a")).status_code == 200
        assert (await c.get("b")).status_code == 200
    assert [e.connection for e in srv.seen] == [1, 2]


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("PUT", True), ("POST", False)])
async def test_a_kept_alive_connection_closed_unanswered_is_retried_only_when_idempotent(method: str,
                                                                                       retried: bool) -> None:
    async def forget_second(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        if nth == 2:
            return False  # read the request, hang up without a word (a keep-alive the server had dropped)
        writer.write(reply())
        return True

    async with server(forget_second) as srv, client(srv.url) as c:
        await c.get("warm")
        if retried:
            assert (await c.request(method, "Observation/o1", content=b"{}")).status_code == 200
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.request(method, "Observation", content=b"{}")
    assert len(srv.seen) == (3 if retried else 2)


async def test_silence_is_a_read_timeout_but_a_slow_steady_answer_is_not() -> None:
    async def slow(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        if b"silent" in exchange.head:
            await asyncio.sleep(5)
            return False
        body = b'{"ok": true}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:  # 0.6 s in all, never 0.3 s without a byte
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(bytes([byte]))
        return True

    async with server(slow) as srv, client(srv.url, read_timeout=0.3) as c:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout):
            await c.get("silent")
        assert asyncio.get_running_loop().time() - started < 2
        assert (await c.get("steady")).json() == {"ok": True}


async def test_refused_connection_and_answers_the_server_cuts_short() -> None:
    async with server(ok) as srv:
        dead = srv.url
    async with client(dead) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("Patient/p1")

    async def cut(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"half")
        return False

    async def garbage(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        return True

    async with server(cut) as srv, client(srv.url) as c:
        with pytest.raises(httpx.ReadError):
            await c.get("Patient/p1")
    async with server(garbage) as srv, client(srv.url) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("Patient/p1")


async def test_answers_without_a_length_end_with_the_connection_and_empty_ones_at_once() -> None:
    async def until_close(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        if b"not-modified" in exchange.head:
            writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: W/"2"\r\n\r\n')
            return True
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"whole": "answer"}')
        return False

    async with server(until_close) as srv, client(srv.url) as c:
        assert (await c.get("not-modified")).status_code == 304
        assert (await c.get("x")).json() == {"whole": "answer"}
        assert (await c.get("not-modified")).headers["etag"] == 'W/"2"'


async def test_the_pool_never_opens_more_than_its_limit_and_waiting_too_long_is_a_pool_timeout() -> None:
    async def slow(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        await asyncio.sleep(0.2)
        writer.write(reply())
        return True

    async with server(slow) as srv, client(srv.url, max_connections=2) as c:
        answers = await asyncio.gather(*(c.get(f"Observation/o{i}") for i in range(6)))
        assert all(a.status_code == 200 for a in answers)
        assert srv.most_open == 2
    async with server(slow) as srv, client(srv.url, max_connections=1, read_timeout=0.3) as c:
        results = await asyncio.gather(*(c.get(f"Observation/o{i}") for i in range(3)), return_exceptions=True)
        assert any(isinstance(r, httpx.PoolTimeout) for r in results)
        assert (await c.get("after")).status_code == 200  # the pool is whole again


async def test_a_cancelled_request_gives_its_connection_back() -> None:
    async def slow(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        await asyncio.sleep(0.5 if b"slow" in exchange.head else 0)
        writer.write(reply())
        return True

    async with server(slow) as srv, client(srv.url, max_connections=1) as c:
        task = asyncio.create_task(c.get("slow"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await asyncio.wait_for(c.get("fast"), 2)).status_code == 200


async def test_https_and_streamed_bodies_go_to_httpx_own_transport() -> None:
    handed: list[str] = []

    def fallback(request: httpx.Request) -> httpx.Response:
        handed.append(f"{request.method} {request.url}")
        return httpx.Response(200, json={})

    async def chunks() -> AsyncIterator[bytes]:
        yield b"{}"

    async with client("https://ehr.example/fhir/", fallback=httpx.MockTransport(fallback)) as c:
        await c.get("Patient/p1")
    async with server(ok) as srv, client(srv.url, fallback=httpx.MockTransport(fallback)) as c:
        await c.post("Binary", content=chunks())
        await c.head("Patient/p1")
        await c.get("Patient/p1")
    assert handed == ["GET https://ehr.example/fhir/Patient/p1", f"POST {srv.url}Binary", f"HEAD {srv.url}Patient/p1"]


async def test_the_gateway_maps_its_failures_as_before() -> None:
    async def silent(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        await asyncio.sleep(5)
        return False

    async with server(ok) as srv:
        dead = srv.url
    http = make_client(dead, connect_timeout=1, read_timeout=0.3, max_connections=2)
    async with http:
        with pytest.raises(FHIRError) as down:
            await Upstream(http, dead, retries=1).read("Patient", "p1")
    assert down.value.status == 503
    async with server(silent) as srv:
        http = make_client(srv.url, connect_timeout=1, read_timeout=0.3, max_connections=2)
        async with http:
            with pytest.raises(FHIRError) as slow:
                await Upstream(http, srv.url, retries=1).read("Patient", "p1")
    assert slow.value.status == 504


async def test_the_ehr_client_sends_no_cookie_an_earlier_answer_set() -> None:
    async def sets_a_cookie(exchange: Exchange, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(reply(headers={"Set-Cookie": "session=first-callers; Path=/"}))
        return True

    async with server(sets_a_cookie) as srv:
        http = make_client(srv.url, connect_timeout=1, read_timeout=2, max_connections=2)
        async with http:
            upstream = Upstream(http, srv.url)
            await upstream.read("Patient", "p1")
            await upstream.read("Patient", "p2")  # another caller's request on the shared client
    assert len(srv.seen) == 2
    assert b"cookie" not in srv.seen[1].head.lower()
