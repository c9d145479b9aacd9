"""The append-only Merkle log: entries in, tree heads and proofs out.

:class:`MerkleLog` is the one place that both computes and writes: it hashes an entry
(RFC 9162 §2.1.1), advances the :class:`~huitong.audit.frontier.Frontier` and hands the
completed nodes to its :class:`~huitong.audit.storage.NodeStore`. Roots for past sizes and
proofs are computed from stored nodes through the pure plans in :mod:`huitong.audit.tree`
(one batched read each), so they cost O(log n) reads however long the log grows.

A SQL-backed log does the same with its own executor: ``Frontier.append`` gives the rows to
insert in the transaction that writes the audited action; ``inclusion_plan(...).node_ids``
gives the rows to select for a proof.
"""

from __future__ import annotations

from huitong.audit.frontier import Frontier
from huitong.audit.hashing import leaf_hash
from huitong.audit.storage import NodeStore
from huitong.audit.tree import ProofPlan, consistency_plan, inclusion_plan, root_plan

__all__ = ["MerkleLog"]


class MerkleLog:
    """An append-only log over ``store`` (which may already hold nodes: the log resumes)."""

    def __init__(self, store: NodeStore) -> None:
        self._store = store
        self._frontier = Frontier.from_store(store)

    @property
    def size(self) -> int:
        return self._frontier.size

    @property
    def store(self) -> NodeStore:
        return self._store

    def append(self, entry: bytes) -> int:
        """Append one serialised entry; return its index (0-based)."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a precomputed leaf hash (``leaf_hash(entry)``); return its index."""
        index = self._frontier.size
        self._store.put_nodes(self._frontier.append(leaf))
        return index

    def root(self, size: int | None = None) -> bytes:
        """The tree head over the first ``size`` entries (default: all). The current root
        comes from the frontier without a store read."""
        if size is None or size == self.size:
            return self._frontier.root()
        self._check_size(size)
        return self._run(root_plan(size))[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of ``size`` entries (default: all);
        ``ValueError`` when the entry is not in that tree."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._run(inclusion_plan(index, size))

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """The proof that the tree of ``second`` entries (default: all) extends the tree of
        ``first`` entries; ``ValueError`` unless ``0 <= first <= second <= size``."""
        second = self.size if second is None else second
        self._check_size(second)
        return self._run(consistency_plan(first, second))

    def _run(self, plan: ProofPlan) -> list[bytes]:
        return plan.assemble(self._store.get_nodes(plan.node_ids))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"the log holds {self.size} entries, not {size}")
