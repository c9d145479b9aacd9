"""Where the log's node hashes live: a narrow protocol, and an in-memory implementation.

A store keeps complete nodes (:class:`~huitong.audit.tree.NodeId`), written once and never
changed. Everything the log needs is a batched read of known node ids, so a SQL store is one
table ``(level, idx, hash)`` with primary key ``(level, idx)``: writes are the rows
:meth:`Frontier.append` returns, reads are one ``WHERE (level, idx) IN (...)`` per proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from huitong.audit.hashing import HASH_SIZE
from huitong.audit.tree import NodeId

__all__ = ["MemoryNodeStore", "NodeReader", "NodeStore"]


class NodeReader(Protocol):
    """Reads stored node hashes. ``get_nodes`` raises ``KeyError`` naming a node it does not
    hold; ``leaf_count`` is the number of level-0 nodes stored."""

    def get_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]: ...

    def leaf_count(self) -> int: ...


class NodeStore(NodeReader, Protocol):
    """A :class:`NodeReader` that also appends nodes. A node written twice must carry the
    same hash (appending is idempotent, rewriting is refused with ``ValueError``)."""

    def put_nodes(self, nodes: Iterable[tuple[NodeId, bytes]]) -> None: ...


class MemoryNodeStore:
    """Node hashes in memory, one contiguous ``bytearray`` per level (32 bytes a node), so a
    million-leaf log costs ~64 MB and a lookup is a slice."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    def leaf_count(self) -> int:
        return len(self._levels[0]) // HASH_SIZE if self._levels else 0

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        out: dict[NodeId, bytes] = {}
        for node in ids:
            out[node] = self._get(node)
        return out

    def _get(self, node: NodeId) -> bytes:
        level, index = node
        if level >= len(self._levels) or index < 0:
            raise KeyError(node)
        row = self._levels[level]
        at = index * HASH_SIZE
        if at + HASH_SIZE > len(row):
            raise KeyError(node)
        return bytes(row[at : at + HASH_SIZE])

    def put_nodes(self, nodes: Iterable[tuple[NodeId, bytes]]) -> None:
        for (level, index), digest in nodes:
            if len(digest) != HASH_SIZE:
                raise ValueError("node hashes are 32 bytes")
            while len(self._levels) <= level:
                self._levels.append(bytearray())
            row = self._levels[level]
            at = index * HASH_SIZE
            if at == len(row):
                row += digest
            elif at < len(row) and row[at : at + HASH_SIZE] == digest:
                continue
            elif at < len(row):
                raise ValueError(f"node {(level, index)} is already stored with another hash")
            else:
                raise ValueError(f"node {(level, index)} would leave a gap in level {level}")
