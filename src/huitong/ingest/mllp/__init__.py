"""MLLP transport: framing, the asyncio listener and a small client."""

from huitong.ingest.mllp.client import MllpClient
from huitong.ingest.mllp.framing import (
    DEFAULT_MAX_FRAME_BYTES,
    FramingError,
    FramingErrorKind,
    MllpDecoder,
    frame,
)
from huitong.ingest.mllp.server import Handler, MllpServer, Peer, ServerStats, start_mllp_server

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "FramingError",
    "FramingErrorKind",
    "Handler",
    "MllpClient",
    "MllpDecoder",
    "MllpServer",
    "Peer",
    "ServerStats",
    "frame",
    "start_mllp_server",
]
