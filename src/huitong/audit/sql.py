"""The Merkle log's node hashes in SQL (table ``audit_nodes``, migration 0007).

:class:`SqlNodeStore` implements :class:`~huitong.audit.storage.NodeStore` over one
statement runner: ``Transaction.execute`` while sequencing (the nodes commit with the
positions they give the entries) or ``Repository.query`` for proofs. A proof is one batched
read of ``~2·log2(n)`` primary-key rows whatever the size of the log; reading a long run of
one level (verification reads every leaf) becomes range scans instead of a giant ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from huitong.audit.hashing import HASH_SIZE
from huitong.audit.tree import NodeId

__all__ = ["Runner", "SqlNodeStore"]

Runner = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

# Row-value IN lists up to this many nodes; larger requests on one level scan ranges.
_IN_LIMIT = 256
_RANGE_CHUNK = 50_000
_INSERT_CHUNK = 500


class SqlNodeStore:
    """Node hashes in ``audit_nodes (level, idx, hash)``, read and written through ``run``."""

    def __init__(self, run: Runner, dialect: str = "sqlite") -> None:
        self._run = run
        self._dialect = dialect

    def leaf_count(self) -> int:
        # MAX over the primary key is an index lookup; COUNT(*) would scan every leaf.
        rows = self._run("SELECT MAX(idx) FROM audit_nodes WHERE level = 0", ())
        top = rows[0][0] if rows else None
        return 0 if top is None else int(top) + 1

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        wanted = list(dict.fromkeys(NodeId(*i) for i in ids))
        out: dict[NodeId, bytes] = {}
        if len(wanted) <= _IN_LIMIT:
            self._read_in(wanted, out)
        else:
            by_level: dict[int, list[int]] = {}
            for node in wanted:
                by_level.setdefault(node.level, []).append(node.idx)
            for level, idxs in by_level.items():
                if len(idxs) <= _IN_LIMIT:
                    self._read_in([NodeId(level, i) for i in idxs], out)
                else:
                    self._read_ranges(level, idxs, out)
        for node in wanted:
            if node not in out:
                raise KeyError(node)
        return out

    def _read_in(self, nodes: Sequence[NodeId], out: dict[NodeId, bytes]) -> None:
        if not nodes:
            return
        if self._dialect == "postgresql":
            # One statement text whatever the proof (planned once, prepared by psycopg) and
            # a nested loop of primary-key probes: ~0.2 ms at 10^7 entries, where an IN list
            # of row values becomes a bitmap OR costing several milliseconds.
            rows = self._run(
                "SELECT n.level, n.idx, n.hash FROM unnest(?::int[], ?::bigint[]) AS w(l, i) "
                "JOIN audit_nodes n ON n.level = w.l AND n.idx = w.i",
                ([n.level for n in nodes], [n.idx for n in nodes]),
            )
        else:
            marks = ", ".join("(?, ?)" for _ in nodes)
            params: list[int] = []
            for level, idx in nodes:
                params += (level, idx)
            rows = self._run(
                f"SELECT level, idx, hash FROM audit_nodes WHERE (level, idx) IN ({marks})",
                params,
            )
        for level, idx, digest in rows:
            out[NodeId(int(level), int(idx))] = bytes(digest)

    def _read_ranges(self, level: int, idxs: list[int], out: dict[NodeId, bytes]) -> None:
        want = set(idxs)
        lo, hi = min(idxs), max(idxs)
        start = lo
        while start <= hi:
            end = min(start + _RANGE_CHUNK - 1, hi)
            rows = self._run(
                "SELECT idx, hash FROM audit_nodes WHERE level = ? AND idx BETWEEN ? AND ?",
                (level, start, end),
            )
            for idx, digest in rows:
                if int(idx) in want:
                    out[NodeId(level, int(idx))] = bytes(digest)
            start = end + 1

    def put_nodes(self, nodes: Iterable[tuple[NodeId, bytes]]) -> None:
        batch = list(nodes)
        for digest in (d for _, d in batch):
            if len(digest) != HASH_SIZE:
                raise ValueError("node hashes are 32 bytes")
        for at in range(0, len(batch), _INSERT_CHUNK):
            chunk = batch[at : at + _INSERT_CHUNK]
            marks = ", ".join("(?, ?, ?)" for _ in chunk)
            params: list[Any] = []
            for (level, idx), digest in chunk:
                params += (level, idx, digest)
            # A node is written once: the sequencer holds the log's lock, so a conflicting
            # row here means the table was changed behind the log's back (the insert fails).
            self._run(f"INSERT INTO audit_nodes (level, idx, hash) VALUES {marks}", params)
