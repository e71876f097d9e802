"""The EHR-outage proxy the audit tests rely on: once `stop()` returns, the EHR does no more work, so a test
can count what reached the EHR "at the outage" and expect it to stay put."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devstack.procs import free_port
from tests.tcp_proxy import FaultyProxy

pytestmark = pytest.mark.integration


async def test_stop_returns_only_once_the_ehr_finished_what_it_already_had() -> None:
    finished: list[bool] = []

    async def slow_ehr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.3)  # a transaction being applied
        finished.append(True)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(slow_ehr, "127.0.0.1", port)
    proxy = FaultyProxy("127.0.0.1", port, "/fhir")
    await proxy.start()
    try:
        async with httpx.AsyncClient() as client:
            sent = asyncio.create_task(client.post(f"{proxy.base_url}/x", content=b"{}"))
            await asyncio.sleep(0.1)
            await proxy.stop()
            assert finished == [True], "stop() returned while the EHR was still applying a request"
            with pytest.raises(httpx.HTTPError):
                await sent  # ... and the caller never hears how it went
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()
