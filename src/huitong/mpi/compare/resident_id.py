"""Resident-ID comparator (GB 11643 numbers).

Levels: ``exact`` (same canonical 18-character number, both entered as 18); ``upgraded``
(equal once a 15-digit number is upgraded: the same person's old and new card);
``typo`` (one character differs or two adjacent are transposed — the check character
makes such a number invalid, so it is a typing error, not a second person); ``invalid``
(either side failed validation and no typo explains it); ``different`` (two valid,
different numbers: strong evidence of two people, except for twins' near numbers which
the other fields separate).
"""

from __future__ import annotations

from huitong.mpi.compare.dates import date_level
from huitong.mpi.record import IdentityRecord

__all__ = ["RESIDENT_ID_LEVELS", "compare_resident_id", "resident_id_text"]

RESIDENT_ID_LEVELS = ("exact", "upgraded", "typo", "invalid", "different")


def resident_id_text(record: IdentityRecord) -> str:
    """The canonical number when valid, else the normalised text as entered, else ``""``."""
    return record.resident_id.number if record.resident_id else record.resident_id_text


def compare_resident_id(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Resident-ID level of two records; ``None`` when either has no number at all."""
    ta, tb = resident_id_text(a), resident_id_text(b)
    if not ta or not tb:
        return None
    ra, rb = a.resident_id, b.resident_id
    if ra and rb and ra.number == rb.number:
        return 1 if ra.upgraded_from_15 != rb.upgraded_from_15 else 0
    if len(ta) == len(tb) and date_level(ta, tb) == 2:
        return 2
    if ra is None or rb is None:
        return 3
    return 4
