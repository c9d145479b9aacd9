"""A comparison: one field's comparator, its named agreement levels, and its TF value.

A comparator answers, for a pair of records, the index of the level the pair reaches
(``0`` is the strongest agreement, the last is "different") or ``None`` when either side
lacks the data ("missing": the Fellegi–Sunter model gives it weight 0). Levels are names,
not numbers, so the evidence a reviewer sees reads ``given_name: homophone``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Comparison", "R"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Comparison(Generic[R]):
    """``compare(a, b)`` → level index or ``None``; ``tf_value(r)`` → the value whose
    frequency adjusts the weight of the first (exact) level, or ``None`` for no adjustment.
    """

    name: str
    levels: tuple[str, ...]
    compare: Callable[[R, R], int | None]
    tf_value: Callable[[R], str | None] | None = None

    def level_of(self, a: R, b: R) -> int | None:
        level = self.compare(a, b)
        if level is not None and not 0 <= level < len(self.levels):
            raise ValueError(f"{self.name}: level {level} out of range")
        return level
