"""Birth-date comparator over ``YYYYMMDD`` digits.

Levels: ``exact``; ``swap`` (day and month exchanged: 1990-03-05 / 1990-05-03, the classic
form-filling error); ``typo`` (exactly one digit differs, or two adjacent digits are
transposed); ``year`` (same year, nothing closer); ``different``.
"""

from __future__ import annotations

from huitong.mpi.record import IdentityRecord

__all__ = ["DATE_LEVELS", "compare_birth", "date_level"]

DATE_LEVELS = ("exact", "swap", "typo", "year", "different")


def _one_edit(a: str, b: str) -> bool:
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) == 1:
        return True
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[
        diff[1]
    ] == b[diff[0]]


def date_level(a: str, b: str) -> int | None:
    """Level of two ``YYYYMMDD`` strings; ``None`` when either is empty."""
    if not a or not b:
        return None
    if a == b:
        return 0
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return 1
    if _one_edit(a, b):
        return 2
    if a[:4] == b[:4]:
        return 3
    return 4


def compare_birth(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Birth-date level of two records."""
    return date_level(a.birth, b.birth)
