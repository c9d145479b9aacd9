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


_RANDOM_BLOCK = 4096  # random bytes drawn per system call: 256 ids
_random = threading.local()


def _forget_random() -> None:
    # A forked child must not hand out the ids its parent's buffer still holds.
    _random.__dict__.clear()


os.register_at_fork(after_in_child=_forget_random)


def new_uuid() -> str:
    """A random (version 4) UUID as a FHIR id (36 characters, within the 64-character
    limit): the same bits ``uuid.uuid4()`` sets, formatted without building a ``UUID``
    object, which cost six times as much as the 16 random bytes themselves (every written
    resource and audit entry takes one).

    The bytes come from ``os.urandom`` 4 KiB at a time, per thread: that call releases the
    GIL, and in a server where another thread is busy in Python each release could wait up
    to the interpreter's switch interval (5 ms) to get it back; py-spy showed one per
    resource costing 3 % of a Synthea load."""
    buf: bytes = getattr(_random, "buf", b"")
    at: int = getattr(_random, "at", _RANDOM_BLOCK)
    if at + 16 > len(buf):
        buf = _random.buf = os.urandom(_RANDOM_BLOCK)
        at = 0
    _random.at = at + 16
    b = bytearray(buf[at : at + 16])
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
