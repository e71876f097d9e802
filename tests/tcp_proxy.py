"""A loopback TCP proxy the tests put in front of HAPI, to make "the EHR" go down and come back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Self

import httpx

from devstack.procs import free_port

_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ")


class TcpProxy:
    """Loopback TCP proxy to HAPI: `stop()` makes the EHR unreachable (refused connections), `start()` heals."""

    def __init__(self, target_host: str, target_port: int, path: str = "/fhir") -> None:
        self.target = (target_host, target_port)
        self.path = path
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = False
        self._in_flight = 0  # requests the EHR has (some of) and has not begun to answer
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def in_front_of(cls, base_url: str) -> Self:
        """A proxy for the server at ``base_url`` (start it with ``async with``)."""
        url = httpx.URL(base_url)
        return cls(url.host, url.port or 80, url.path)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        """The EHR becomes unreachable. A request it already has is finished there whatever happens to the
        connection, so this waits for its answer (and drops it): after `stop()` the EHR does no more work."""
        if self._server is None:
            return
        self._server.close()
        self._stopping = True
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await self._idle.wait()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
        finally:
            self._server = None
            self._stopping = False

    def _sent(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def _answered(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, upstream_writer}
        asked = [b""]  # the request line of the last request sent on this connection
        pending = [False]  # whether that request awaits the EHR's first answer bytes

        def answer_begins() -> None:
            if pending[0]:
                pending[0] = False
                self._answered()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(65536):
                    if not answers:
                        if self._stopping:
                            break
                        if data.startswith(_METHODS):
                            asked[0] = data.split(b"\r\n", 1)[0]
                            if not pending[0]:
                                pending[0] = True
                                self._sent()
                    if answers:
                        answer_begins()
                        if self._stopping:
                            break
                        await self.before_answer()
                        if not self.keep_answer(asked[0]):
                            break
                    writer.write(data)
                    await writer.drain()
            if answers:  # the EHR side ended (or its answer was dropped): the client's connection goes too
                answer_begins()
                client_writer.close()
                upstream_writer.close()
            elif not pending[0]:  # a request the EHR is working on keeps its connection until answered
                writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer, False), pipe(upstream_reader, client_writer, True))
        self._writers -= {client_writer, upstream_writer}

    async def before_answer(self) -> None:
        """Runs before the EHR's next bytes are passed on; a subclass may hold them back."""

    def keep_answer(self, request_line: bytes) -> bool:
        """Whether to pass on the EHR's next bytes (answering ``request_line``); a subclass may drop answers
        to fake a lost reply."""
        return True


class FaultyProxy(TcpProxy):
    """A proxy that can lose the EHR's answers and hold them back.

    - ``lose(request_line)``: answers to the requests it picks are dropped and the connection cut (the EHR
      did the work, the caller cannot know); ``lost`` counts them.
    - ``answer_delay``: every answer waits this long first (a slow EHR: time to break something else while
      a request is in flight).
    """

    def __init__(self, target_host: str, target_port: int, path: str = "/fhir") -> None:
        super().__init__(target_host, target_port, path)
        self.lose: Callable[[bytes], bool] | None = None
        self.answer_delay = 0.0
        self.lost = 0

    async def before_answer(self) -> None:
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)

    def keep_answer(self, request_line: bytes) -> bool:
        if self.lose is not None and self.lose(request_line):
            self.lost += 1
            return False
        return True
