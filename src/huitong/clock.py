"""The injected clock and id generator.

Everything that stamps a time or mints an id takes these as parameters, so tests can fix
them and ``meta.lastUpdated``, generated ids and (later) audit hashes are reproducible.
"""

from __future__ import annotations

import threading
import time
import uuid
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
    """A random UUID as a FHIR id (36 characters, within the 64-character limit)."""
    return str(uuid.uuid4())
