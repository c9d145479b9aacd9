"""Field comparators: each returns an agreement level for a pair of records."""

from huitong.mpi.compare.comparison import Comparison
from huitong.mpi.compare.contact import (
    ADDRESS_LEVELS,
    PHONE_LEVELS,
    address_level,
    compare_address,
    compare_phone,
)
from huitong.mpi.compare.dates import DATE_LEVELS, compare_birth, date_level
from huitong.mpi.compare.identifiers import IDENTIFIER_LEVELS, compare_identifiers, compare_sex
from huitong.mpi.compare.names import (
    NAME_LEVELS,
    best_name_pair,
    compare_family,
    compare_given,
    name_part_level,
)
from huitong.mpi.compare.resident_id import RESIDENT_ID_LEVELS, compare_resident_id

__all__ = [
    "ADDRESS_LEVELS",
    "DATE_LEVELS",
    "IDENTIFIER_LEVELS",
    "NAME_LEVELS",
    "PHONE_LEVELS",
    "RESIDENT_ID_LEVELS",
    "Comparison",
    "address_level",
    "best_name_pair",
    "compare_address",
    "compare_birth",
    "compare_family",
    "compare_given",
    "compare_identifiers",
    "compare_phone",
    "compare_resident_id",
    "compare_sex",
    "date_level",
    "name_part_level",
]
