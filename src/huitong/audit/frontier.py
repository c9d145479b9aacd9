"""The log's right edge ("compact range"): what appending and the current root need.

The tree over ``n`` leaves is covered by at most ``log2(n) + 1`` complete subtrees, one per
set bit of ``n`` (:func:`~huitong.audit.tree.range_nodes` of ``[0, n)``). Keeping only their
hashes makes an append O(log n) amortised O(1) hashes, and the root is a fold over them —
https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1 computed incrementally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from huitong.audit.hashing import HASH_SIZE, node_hash
from huitong.audit.storage import NodeReader
from huitong.audit.tree import NodeId, fold_range, range_nodes

__all__ = ["Frontier"]


@dataclass(slots=True)
class Frontier:
    """The hashes of the complete subtrees covering ``[0, size)``, largest first."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def from_store(cls, store: NodeReader, size: int | None = None) -> Frontier:
        """Rebuild the frontier of the first ``size`` leaves (default: all stored)."""
        size = store.leaf_count() if size is None else size
        ids = range_nodes(0, size)
        nodes = store.get_nodes(ids)
        return cls(size, [nodes[i] for i in ids])

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one leaf hash; return the nodes this append completed (the new leaf, then each
        parent it closed), which a store persists. Pure apart from updating ``self``."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hashes are 32 bytes")
        index = self.size
        done = [(NodeId(0, index), leaf)]
        acc, level = leaf, 0
        while index & 1:
            acc = node_hash(self.hashes.pop(), acc)
            index >>= 1
            level += 1
            done.append((NodeId(level, index), acc))
        self.hashes.append(acc)
        self.size += 1
        return done

    def root(self) -> bytes:
        """The tree head over all ``size`` leaves."""
        return fold_range(self.hashes)

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))
