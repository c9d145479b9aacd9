"""Comparator for identifiers other than the resident ID (insurance card, health record, MRN).

Values are compared only within a system. Levels: ``exact`` (some system has the same value
on both records), ``different`` (a system appears on both, with different values, and none
agrees). ``None`` when the records share no system.
"""

from __future__ import annotations

from huitong.mpi.record import IdentityRecord

__all__ = ["IDENTIFIER_LEVELS", "compare_identifiers", "compare_sex"]

IDENTIFIER_LEVELS = ("exact", "different")


def compare_identifiers(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Identifier level of two records."""
    by_system: dict[str, set[str]] = {}
    for ident in a.identifiers:
        by_system.setdefault(ident.system, set()).add(ident.value)
    shared = False
    for ident in b.identifiers:
        values = by_system.get(ident.system)
        if values is None:
            continue
        if ident.value in values:
            return 0
        shared = True
    return 1 if shared else None


def compare_sex(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """``exact`` / ``different`` on administrative sex; ``None`` if either is unknown."""
    if a.sex is None or b.sex is None:
        return None
    return 0 if a.sex == b.sex else 1
