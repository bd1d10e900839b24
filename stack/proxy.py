"""A loopback TCP proxy in front of the llm that can make it slow: `python -m stack.proxy`, a child process of
the launcher like the four services (its own session, dying with its parent), so the server's llm traffic never
passes through the campaign's measuring process.

The server reaches its llm through it; everyone else (verification, the campaign's process sampling by
port) reaches the llm itself, so the llm's port is still served by the llm's own process. The added delay is
read from a small file the launcher writes (`--delay-file`, seconds as text; absent: none), its one control
channel: each request passed on waits that long first (a request is the first bytes the client sends after an
answer, so a kept-alive connection is delayed once per request, not once per connection). When the llm does not
accept a connection, the client's connection is reset at once, as a refused one would be.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import sys
from pathlib import Path

CONNECT_TIMEOUT_S = 2.0
CHUNK = 65536


def read_delay(path: Path) -> float:
    """The delay the launcher asked for (0 when none, or unreadable: a proxy never breaks the llm's traffic)."""
    try:
        delay = float(path.read_text())
    except (OSError, ValueError):
        return 0.0
    return delay if delay > 0 else 0.0


class DelayProxy:
    def __init__(self, upstream_port: int, delay_file: Path) -> None:
        self.upstream_port = upstream_port
        self.delay_file = delay_file

    async def serve(self, port: int) -> None:
        """Listen on the loopback `port` until SIGTERM or SIGINT."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        stopped = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
        async with server:
            await stopped.wait()

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
                if answered and (delay := read_delay(self.delay_file)) > 0:
                    await asyncio.sleep(delay)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the loopback port the server connects to")
    parser.add_argument("--upstream-port", type=int, required=True, help="the llm's loopback port")
    parser.add_argument("--delay-file", type=Path, required=True, help="seconds to delay each request (absent: 0)")
    args = parser.parse_args(argv)
    asyncio.run(DelayProxy(args.upstream_port, args.delay_file).serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
