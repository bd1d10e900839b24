"""A loopback TCP proxy in front of the llm, owned by the launcher, that can make the llm slow.

The server reaches its llm through it; everyone else (verification, the campaign's process sampling by
port) reaches the llm itself, so the llm's port is still served by the llm's own process. With a delay
set, each request passed on waits that long first (a request is the first bytes the client sends after
an answer, so a kept-alive connection is delayed once per request, not once per connection). When the
llm does not accept a connection, the client's connection is reset at once, as a refused one would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading

CONNECT_TIMEOUT_S = 2.0
START_TIMEOUT_S = 5.0
CHUNK = 65536


class DelayProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay_s = 0.0
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.start()}"

    def start(self) -> int:
        """Listen (once) on a free loopback port, served by a thread of its own; returns the port."""
        if self._thread is not None and self._thread.is_alive():
            return self.port
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                self._loop.run_forever()
            finally:
                server.close()
                for task in asyncio.all_tasks(self._loop):
                    task.cancel()
                self._loop.run_until_complete(asyncio.sleep(0))
                self._loop.close()

        self._thread = threading.Thread(target=serve, name="llm-delay-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the llm proxy did not start within {START_TIMEOUT_S:g} s")
        return self.port

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self._thread = None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.upstream_port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            _reset(client_writer)
            return
        answered = True  # the next bytes from the client start a new request

        async def requests() -> None:
            nonlocal answered
            while data := await client_reader.read(CHUNK):
                if answered and self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                answered = False
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def answers() -> None:
            nonlocal answered
            while data := await upstream_reader.read(CHUNK):
                answered = True
                client_writer.write(data)
                await client_writer.drain()

        pumps = [asyncio.create_task(requests()), asyncio.create_task(answers())]
        try:
            # either side closing (or failing) ends the connection on both sides
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_writer, upstream_writer):
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (linger 0), so the client sees the connection refused, not an empty answer."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
