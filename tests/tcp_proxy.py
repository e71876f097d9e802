"""A loopback TCP proxy the tests put in front of HAPI, to make "the EHR" go down and come back."""

from __future__ import annotations

import asyncio
import contextlib

from devstack.procs import free_port


class TcpProxy:
    """Loopback TCP proxy to HAPI: `stop()` makes the EHR unreachable (refused connections), `start()` heals."""

    def __init__(self, target_host: str, target_port: int, path: str = "/fhir") -> None:
        self.target = (target_host, target_port)
        self.path = path
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, upstream_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(65536):
                    if answers and not self.keep_answer():
                        break
                    writer.write(data)
                    await writer.drain()
            writer.close()
            if answers:  # the EHR side ended (or its answer was dropped): the client's connection goes too
                client_writer.close()
                upstream_writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer, False), pipe(upstream_reader, client_writer, True))
        self._writers -= {client_writer, upstream_writer}

    def keep_answer(self) -> bool:
        """Whether to pass on the EHR's next bytes; a subclass may drop answers to fake a lost reply."""
        return True
