"""The asyncio MLLP listener: frames in, handler, ACK frames out.

Each connection is served by one task that reads, decodes frames and awaits the handler for
each frame in turn, writing (and draining) its answer before the next frame is looked at, so
a sender's messages are handled strictly in order and a sender that waits for each ACK is
never overtaken by its own next message. Connections are served concurrently.

Failure contract: a handler exception closes *that* connection without an answer (the
sender will resend; the handler should normally turn failures into an AE itself) and is
counted; it never stops the server. A connection that sends nothing for ``idle_timeout``
seconds is closed. Oversized frames are skipped and counted (the sender gets no answer for
them and will time out). Log lines carry peers and counts, never payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from huitong.ingest.mllp.framing import (
    DEFAULT_MAX_FRAME_BYTES,
    FramingError,
    FramingErrorKind,
    MllpDecoder,
    frame,
)
from huitong.ingest.redact import safe_exception

__all__ = ["Handler", "MllpServer", "Peer", "ServerStats", "start_mllp_server"]

log = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Peer:
    """The remote end of a connection."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


# The handler answers one frame with an ACK payload, several (sent in order), or None.
Handler = Callable[[bytes, Peer], Awaitable[bytes | Sequence[bytes] | None]]


@dataclass(slots=True)
class ServerStats:
    """Counters since the server started (read them, do not write them)."""

    connections_opened: int = 0
    connections_active: int = 0
    frames_received: int = 0
    acks_sent: int = 0
    handler_errors: int = 0
    idle_timeouts: int = 0
    framing_errors: dict[FramingErrorKind, int] = field(
        default_factory=lambda: dict.fromkeys(FramingErrorKind, 0)
    )


class MllpServer:
    """A running listener; create it with :func:`start_mllp_server`."""

    def __init__(self, handler: Handler, *, max_frame_bytes: int, idle_timeout: float | None
                 ) -> None:
        self._handler = handler
        self._max_frame_bytes = max_frame_bytes
        self._idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.stats = ServerStats()

    @property
    def host(self) -> str:
        return str(self._sockname()[0])

    @property
    def port(self) -> int:
        return int(self._sockname()[1])

    def _sockname(self) -> tuple[str, int]:
        assert self._server is not None and self._server.sockets
        return self._server.sockets[0].getsockname()[:2]  # type: ignore[no-any-return]

    async def _start(self, host: str, port: int, reuse_port: bool) -> None:
        self._server = await asyncio.start_server(
            self._accept, host, port, reuse_port=reuse_port or None
        )

    def close(self) -> None:
        """Stop listening and close every open connection (their unfinished frames are
        dropped; their senders will resend what was not acknowledged)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()

    async def wait_closed(self) -> None:
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> MllpServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        name = writer.get_extra_info("peername") or ("?", 0)
        peer = Peer(str(name[0]), int(name[1]))
        self.stats.connections_opened += 1
        self.stats.connections_active += 1
        try:
            await self._serve(reader, writer, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("mllp connection %s reset by peer", peer)
        except asyncio.CancelledError:
            pass  # server closing
        finally:
            self.stats.connections_active -= 1
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next chunk; ``b""`` at end of stream, ``None`` after the idle timeout."""
        if self._idle_timeout is None:
            return await reader.read(_READ_SIZE)
        try:
            async with asyncio.timeout(self._idle_timeout):
                return await reader.read(_READ_SIZE)
        except TimeoutError:
            return None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        decoder = MllpDecoder(self._max_frame_bytes)
        while True:
            data = await self._read(reader)
            if data is None:
                self.stats.idle_timeouts += 1
                log.info("mllp connection %s idle for %ss, closing", peer, self._idle_timeout)
                return
            if not data:
                self._count(decoder.close(), peer)
                return
            for event in decoder.feed_events(data):
                if isinstance(event, FramingError):
                    self._count([event], peer)
                    continue
                self.stats.frames_received += 1
                try:
                    answer = await self._handler(event, peer)
                except Exception as exc:
                    self.stats.handler_errors += 1
                    # Type and frames, not the message: it may quote the payload.
                    log.error("mllp handler failed for a frame from %s (%s); closing", peer,
                              safe_exception(exc))
                    return
                # One ACK, or several in order (enhanced mode: accept, then application).
                answers = [answer] if isinstance(answer, bytes) else list(answer or ())
                for payload in answers:
                    writer.write(frame(payload))
                    self.stats.acks_sent += 1
                if answers:
                    await writer.drain()

    def _count(self, events: list[FramingError], peer: Peer) -> None:
        for event in events:
            self.stats.framing_errors[event.kind] += 1
            if event.kind is not FramingErrorKind.GARBAGE:
                log.warning("mllp %s from %s (%d bytes discarded)", event.kind.value, peer,
                            event.size)


async def start_mllp_server(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    idle_timeout: float | None = 300.0,
    reuse_port: bool = False,
) -> MllpServer:
    """Listen for MLLP on ``host:port`` (port 0: any free port, see ``server.port``).

    ``handler(payload, peer)`` returns the ACK payload to frame and send, or ``None`` to
    send nothing. ``idle_timeout=None`` keeps silent connections open forever.
    ``reuse_port=True`` (SO_REUSEPORT) lets several worker processes share one port, the
    kernel spreading connections between them.
    """
    server = MllpServer(handler, max_frame_bytes=max_frame_bytes, idle_timeout=idle_timeout)
    await server._start(host, port, reuse_port)
    return server
