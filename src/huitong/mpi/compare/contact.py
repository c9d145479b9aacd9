"""Phone and address comparators.

Phones: ``exact`` (a number in common), ``subscriber`` (same landline subscriber number
under a different or missing area code, or the same last 8 digits), ``different``.

Addresses: ``exact`` (same district and a street part at Jaro–Winkler ≥ 0.9, or the same
unparsed text), ``district`` (same county-level division), ``city``, ``different``
(a city or province that differs, or unrelated text). Addresses change when people move, so
their weights are learnt, not assumed.
"""

from __future__ import annotations

from rapidfuzz.distance import JaroWinkler

from huitong.mpi.normalize.addresses import Address
from huitong.mpi.record import IdentityRecord

__all__ = ["ADDRESS_LEVELS", "PHONE_LEVELS", "address_level", "compare_address", "compare_phone"]

PHONE_LEVELS = ("exact", "subscriber", "different")
ADDRESS_LEVELS = ("exact", "district", "city", "different")


def compare_phone(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Best phone level over all number pairs; ``None`` if either has no phone."""
    if not a.phones or not b.phones:
        return None
    numbers_a = {p.number for p in a.phones}
    if any(p.number in numbers_a for p in b.phones):
        return 0
    tails_a = {p.subscriber[-8:] for p in a.phones if len(p.subscriber) >= 7}
    if any(len(p.subscriber) >= 7 and p.subscriber[-8:] in tails_a for p in b.phones):
        return 1
    return 2


def address_level(a: Address, b: Address) -> int:
    """Level of two parsed addresses."""
    rest_close = bool(a.rest and b.rest) and JaroWinkler.similarity(a.rest, b.rest) >= 0.9
    if a.district_code and a.district_code == b.district_code:
        return 0 if rest_close or a.rest == b.rest else 1
    if not a.district_code and not b.district_code and a.city_code == b.city_code and rest_close:
        return 0
    if a.city_code and a.city_code == b.city_code:
        return 2
    return 3


def compare_address(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Best address level over all address pairs; ``None`` if either has none."""
    if not a.addresses or not b.addresses:
        return None
    return min(address_level(x, y) for x in a.addresses for y in b.addresses)
