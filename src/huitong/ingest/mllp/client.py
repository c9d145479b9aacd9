"""A small asyncio MLLP client: send a message, wait for the answering frame.

For tests, benchmarks and ``huitong`` tooling; one request in flight per client (MLLP is a
strict request/response exchange on a connection). A timeout raises ``TimeoutError`` and
leaves the connection unusable (a late ACK could otherwise be taken for the next
message's), so the client closes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from huitong.ingest.mllp.framing import DEFAULT_MAX_FRAME_BYTES, MllpDecoder, frame

__all__ = ["MllpClient"]


class MllpClient:
    """One MLLP connection. Create with :meth:`connect`; use as an async context manager."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = MllpDecoder(max_frame_bytes)
        self._frames: deque[bytes] = deque()
        self.timeout = timeout

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = 10.0) -> MllpClient:
        """Open a connection (within ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, timeout=timeout)

    async def send(self, payload: bytes, *, timeout: float | None = None) -> bytes:
        """Send one framed message and return the payload of the next frame received.

        Raises ``TimeoutError`` (and closes the client) when no frame arrives in time, and
        ``ConnectionError`` when the server closes the connection first.
        """
        await self.send_only(payload)
        return await self.receive(timeout=timeout)

    async def send_only(self, payload: bytes) -> None:
        """Send one framed message without waiting for an answer."""
        self._writer.write(frame(payload))
        await self._writer.drain()

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (for tests of broken framing)."""
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self, *, timeout: float | None = None) -> bytes:
        """The next frame's payload."""
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                while not self._frames:
                    data = await self._reader.read(64 * 1024)
                    if not data:
                        raise ConnectionError("connection closed by the MLLP server")
                    self._frames.extend(self._decoder.feed(data))
        except TimeoutError:
            await self.close()
            raise
        return self._frames.popleft()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def __aenter__(self) -> MllpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
