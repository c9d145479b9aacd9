"""Compiled indexes, cached per CodeSystem version.

The key is ``(url, version, meta.versionId, meta.lastUpdated)``: a stored CodeSystem that is
updated in place gets a new ``versionId`` and so a fresh index, while each loaded release of
a system (a new ``version``) keeps its own entry. Bounded LRU, safe across server threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from huitong.terminology.index import CodeSystemIndex, build_index

__all__ = ["IndexCache"]

Key = tuple[str, str | None, str | None, str | None, int]


def _key(code_system: dict[str, Any]) -> Key:
    meta = code_system.get("meta") or {}
    return (
        code_system.get("url", ""), code_system.get("version"),
        meta.get("versionId"), meta.get("lastUpdated"),
        # Resources without meta (in memory, from a loader) are told apart by size at least.
        len(code_system.get("concept") or ()),
    )


class IndexCache:
    def __init__(self, max_entries: int = 16) -> None:
        self._max = max_entries
        self._entries: OrderedDict[Key, CodeSystemIndex] = OrderedDict()
        self._lock = threading.Lock()

    def index(self, code_system: dict[str, Any]) -> CodeSystemIndex:
        key = _key(code_system)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        built = build_index(code_system)  # outside the lock: a 100k-concept build takes a while
        with self._lock:
            self._entries[key] = built
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return built

    def __len__(self) -> int:
        return len(self._entries)
