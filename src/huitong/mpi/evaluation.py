"""Pairwise precision, recall and F1 of a linkage against ground truth.

A predicted link is a pair of record indices whose match probability reaches a threshold;
recall counts every true pair, including those blocking never proposed, so blocking losses
show. Also the blocking measures: pair completeness (share of true pairs that blocking
keeps) and reduction ratio (share of all pairs it removes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

__all__ = ["BlockingQuality", "Quality", "blocking_quality", "quality_at", "true_pairs"]


@dataclass(frozen=True, slots=True)
class Quality:
    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class BlockingQuality:
    candidate_pairs: int
    total_pairs: int
    pair_completeness: float
    reduction_ratio: float


def true_pairs(
    entities: Sequence[Hashable], *, link_only: Sequence[int] | None = None
) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of records of the same entity."""
    by_entity: dict[Hashable, list[int]] = defaultdict(list)
    for i, entity in enumerate(entities):
        by_entity[entity].append(i)
    out = set()
    for members in by_entity.values():
        for i, j in combinations(members, 2):
            if link_only is None or link_only[i] != link_only[j]:
                out.add((i, j))
    return out


def quality_at(
    scored: Iterable[tuple[tuple[int, int], float]], truth: set[tuple[int, int]], threshold: float
) -> Quality:
    """Quality when every pair with probability ≥ ``threshold`` is linked."""
    tp = fp = 0
    for pair, probability in scored:
        if probability >= threshold:
            if pair in truth:
                tp += 1
            else:
                fp += 1
    return Quality(threshold, tp, fp, len(truth) - tp)


def blocking_quality(
    candidates: set[tuple[int, int]], truth: set[tuple[int, int]], total_pairs: int
) -> BlockingQuality:
    kept = len(candidates & truth)
    return BlockingQuality(
        len(candidates),
        total_pairs,
        kept / len(truth) if truth else 1.0,
        1.0 - len(candidates) / total_pairs if total_pairs else 0.0,
    )
