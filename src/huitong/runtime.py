"""Process-wide settings of the Python runtime for a long-running Huitong process.

The write path allocates many short-lived objects per resource (parsed JSON, index rows,
findings), while a process also holds a large, long-lived heap (definitions, rule tables,
unit registries, caches). With the interpreter's default thresholds (a young collection
every 700 net allocations) the collector ran thousands of times per bundle and promoted
garbage into older generations that it then walked again: on a CSV feed of 5,000 rows,
15 % of the process's CPU (bench/feeds_end_to_end.py, 7.6-7.9 s -> 6.4-6.7 s).
"""

from __future__ import annotations

import ctypes
import gc
import signal
import sys

__all__ = ["die_with_parent", "tune_collector"]

# Looked up at import, not in a child between fork and exec, where only this call may run
# (no import, no lock another thread might have held at the fork).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1

# A young collection every 50,000 net allocations (a resource's worth of objects a few
# hundred times over); the older generations as often as by default relative to it.
_THRESHOLDS = (50_000, 20, 100)


def tune_collector(*, freeze: bool = True) -> None:
    """Collect less often; with ``freeze``, move everything allocated so far (start-up
    objects that live for the whole process) out of the collector's view, so that full
    collections during ingest do not walk them again and again."""
    gc.set_threshold(*_THRESHOLDS)
    if freeze:
        gc.freeze()


def die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when the process that started it dies (a no-op
    elsewhere). A server worker whose supervisor was killed, or a benchmark's server whose
    benchmark was interrupted, would otherwise keep running and keep its database
    connections; a few of those used up PostgreSQL's connection limit for everyone else.
    (Linux ties the signal to the thread that started the child.)"""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
