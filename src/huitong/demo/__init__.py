"""The synthetic region ``huitong demo`` loads: 安江省临江市's hospitals, community health
centres, staff and residents with five years of records, generated offline from a seed.

``generate_region`` is the entry point; ``systems`` names the identifier and code systems
the data uses; ``resident_id`` implements GB 11643-1999 resident ID numbers.
"""

from huitong.demo.generate import DEFAULT_RESIDENTS, DEFAULT_SEED, REFERENCE_DATE, generate_region

__all__ = ["DEFAULT_RESIDENTS", "DEFAULT_SEED", "REFERENCE_DATE", "generate_region"]
