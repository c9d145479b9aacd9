"""Addressing complete subtrees, and which stored hashes a root or a proof needs.

A *node* ``NodeId(level, idx)`` is the complete subtree over leaves
``[idx·2^level, (idx+1)·2^level)``; level 0 nodes are leaf hashes. Complete nodes never
change once their last leaf is appended, so they are what a store keeps (one row per node:
``2n - popcount(n)`` rows for ``n`` leaves).

Every hash in an RFC 9162 root, inclusion proof or consistency proof is the Merkle Tree Hash
of a leaf range ``[start, end)`` whose start is aligned to the largest power of two not above
its length (https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1). Such a range is a
complete subtree, or the right edge of the tree: a few complete nodes of decreasing size
whose hashes fold right-to-left. The functions here are pure: they say *which* nodes are
needed (:attr:`ProofPlan.node_ids`, one batched store read, e.g. a single SQL ``IN`` list)
and how to combine them (:meth:`ProofPlan.assemble`). Nothing here reads a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from huitong.audit.hashing import EMPTY_ROOT, node_hash, split_point

__all__ = [
    "NodeId",
    "ProofPlan",
    "consistency_plan",
    "fold_range",
    "inclusion_plan",
    "range_nodes",
    "root_plan",
]


class NodeId(NamedTuple):
    """A complete subtree: leaves ``[idx << level, (idx + 1) << level)``."""

    level: int
    idx: int

    @property
    def start(self) -> int:
        return self.idx << self.level

    @property
    def end(self) -> int:
        return (self.idx + 1) << self.level


def range_nodes(start: int, end: int) -> tuple[NodeId, ...]:
    """The complete nodes covering ``[start, end)``, left to right, each the largest aligned
    block that fits. For a range that is a subtree of an RFC 9162 tree the blocks come in
    decreasing size, and :func:`fold_range` over their hashes is that subtree's hash."""
    if not 0 <= start <= end:
        raise ValueError(f"bad leaf range [{start}, {end})")
    out: list[NodeId] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length()
        while (1 << level) > end - start:
            level -= 1
        out.append(NodeId(level, start >> level))
        start += 1 << level
    return tuple(out)


def fold_range(hashes: Iterable[bytes]) -> bytes:
    """Combine the hashes of :func:`range_nodes` (left to right) into the range's Merkle
    Tree Hash: ``H(a, H(b, H(c, d)))``; the empty range hashes to :data:`EMPTY_ROOT`."""
    items = list(hashes)
    if not items:
        return EMPTY_ROOT
    acc = items[-1]
    for h in reversed(items[:-1]):
        acc = node_hash(h, acc)
    return acc


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """A list of leaf ranges whose hashes, in order, form a root or a proof."""

    ranges: tuple[tuple[int, int], ...]

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        """Every stored node the plan needs, without duplicates, in a stable order."""
        seen: dict[NodeId, None] = {}
        for start, end in self.ranges:
            for node in range_nodes(start, end):
                seen[node] = None
        return tuple(seen)

    def assemble(self, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
        """The hashes of the plan's ranges from the stored ``nodes``; raises ``KeyError``
        naming the first node missing from the store."""
        return [fold_range(nodes[n] for n in range_nodes(s, e)) for s, e in self.ranges]


def root_plan(size: int) -> ProofPlan:
    """The tree head over the first ``size`` leaves is the hash of ``[0, size)``."""
    if size < 0:
        raise ValueError("tree size cannot be negative")
    return ProofPlan(((0, size),))


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The audit path ``PATH(index, D[0:size])`` of RFC 9162 §2.1.3.1, leaf side first.

    https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.1; ``ValueError`` unless
    ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    offset, n, m = 0, size, index
    while n > 1:
        k = split_point(n)
        if m < k:
            ranges.append((offset + k, offset + n))
            n = k
        else:
            ranges.append((offset, offset + k))
            offset, m, n = offset + k, m - k, n - k
    ranges.reverse()
    return ProofPlan(tuple(ranges))


def consistency_plan(first: int, second: int) -> ProofPlan:
    """The consistency proof ``PROOF(first, D[0:second])`` of RFC 9162 §2.1.4.1.

    https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.1; empty when ``first`` is 0 or
    equals ``second`` (nothing to prove); ``ValueError`` unless ``0 <= first <= second``.
    """
    if not 0 <= first <= second:
        raise ValueError(f"cannot prove size {first} consistent with size {second}")
    if first in (0, second):
        return ProofPlan(())
    ranges: list[tuple[int, int]] = []
    offset, m, n, whole = 0, first, second, True
    while m != n:
        k = split_point(n)
        if m <= k:
            ranges.append((offset + k, offset + n))
            n = k
        else:
            ranges.append((offset, offset + k))
            offset, m, n, whole = offset + k, m - k, n - k, False
    if not whole:
        ranges.append((offset, offset + m))
    ranges.reverse()
    return ProofPlan(tuple(ranges))
