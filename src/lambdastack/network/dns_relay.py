"""A DNS relay on the host's loopback: environments' queries, passed to the host's resolver.

Under user-mode networking an environment reaches the host only at its gateway, which is the
host's 127.0.0.1; the host's resolver may listen elsewhere (127.0.0.53, say, or an address
an operator named with `--resolv-conf`). The environment's own rules send its port-53
traffic to this relay, which passes each UDP query, and each TCP connection, to the resolver
unchanged. Nothing is cached or rewritten: the answers are the host's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

log = logging.getLogger("lambdastack.network")

QUERY_TIMEOUT_S = 4.0
MAX_UDP_MESSAGE = 65535


class _Upstream(asyncio.DatagramProtocol):
    """One query's socket to the resolver: the first answer completes `answer`."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, relay: DnsRelay) -> None:
        self.relay = relay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self.relay.ask(data))
        self.relay.tasks.add(task)
        task.add_done_callback(lambda t: self._reply(t, addr))

    def _reply(self, task: asyncio.Future[bytes | None], addr: tuple[str, int]) -> None:
        self.relay.tasks.discard(task)
        if task.cancelled() or task.exception() is not None or self.transport is None:
            return
        answer = task.result()
        if answer is not None:
            self.transport.sendto(answer, addr)


class DnsRelay:
    """UDP and TCP on 127.0.0.1:`port` (0: any free port), relayed to `resolver`:53."""

    def __init__(self, resolver: str) -> None:
        self.resolver = resolver
        self.port = 0
        self.tasks: set[asyncio.Future[bytes | None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        self._tcp = await asyncio.start_server(self._relay_stream, "127.0.0.1", 0)
        self.port = self._tcp.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Listener(self), local_addr=("127.0.0.1", self.port))
        self._udp = transport

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
        for task in list(self.tasks):
            task.cancel()

    async def ask(self, query: bytes) -> bytes | None:
        """The resolver's answer to one UDP query (None: no answer in time)."""
        loop = asyncio.get_running_loop()
        transport, upstream = await loop.create_datagram_endpoint(_Upstream, remote_addr=(self.resolver, 53))
        try:
            transport.sendto(query)
            return await asyncio.wait_for(upstream.answer, QUERY_TIMEOUT_S)
        except (TimeoutError, OSError):
            return None
        finally:
            transport.close()

    async def _relay_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(self.resolver, 53), QUERY_TIMEOUT_S)
        except (TimeoutError, OSError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()
