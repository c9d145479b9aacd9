"""The injected clock and id generator.

Everything that stamps a time or mints an id takes these as parameters, so tests can fix
them and ``meta.lastUpdated``, generated ids and (later) audit hashes are reproducible.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "IdFactory", "MonotonicClock", "new_uuid"]

Clock = Callable[[], int]  # microseconds since the epoch, UTC
IdFactory = Callable[[], str]


class MonotonicClock:
    """Wall-clock microseconds that never repeat or go backwards within one process, so
    versions written in the same microsecond still order by ``lastUpdated``."""

    def __init__(self, source: Callable[[], int] | None = None) -> None:
        self._source = source or (lambda: time.time_ns() // 1000)
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            now = max(self._source(), self._last + 1)
            self._last = now
            return now


def new_uuid() -> str:
    """A random (version 4) UUID as a FHIR id (36 characters, within the 64-character
    limit): the same bits ``uuid.uuid4()`` sets, formatted without building a ``UUID``
    object, which cost six times as much as the 16 random bytes themselves (every written
    resource and audit entry takes one)."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
