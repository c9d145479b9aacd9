"""``huitong demo``'s synthetic region: institutions, residents and their records, as data.

Pure generation: no I/O, no wall clock, no network. The same seed gives byte-identical
output on every machine (ids are uuid5 of the seed, randomness comes from generators
seeded with it, dates count back from :data:`REFERENCE_DATE`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from faker import Faker

from huitong.demo._population import assign_profiles
from huitong.demo.clinical import Numbering, resident_bundle
from huitong.demo.people import make_residents
from huitong.demo.region import build_region

__all__ = ["DEFAULT_RESIDENTS", "DEFAULT_SEED", "REFERENCE_DATE", "WINDOW_DAYS", "generate_region"]

DEFAULT_SEED = 20261122
DEFAULT_RESIDENTS = 300
# "Today" of the demo world. Fixed rather than read from the clock so output never drifts;
# every clinical date falls in the WINDOW_DAYS before it.
REFERENCE_DATE = date(2026, 11, 22)
WINDOW_DAYS = 5 * 365 + 1


def generate_region(
    *, seed: int = DEFAULT_SEED, residents: int = DEFAULT_RESIDENTS
) -> list[dict[str, Any]]:
    """Return FHIR R4 transaction Bundles (dicts): first one bundle with the region's
    Organizations, Locations and Practitioners (PractitionerRoles), then one bundle per resident.

    The region bundle also carries the formulary Medications that some MedicationRequests
    reference. Every entry is ``PUT <type>/<id>`` with a deterministic id, so loading the
    same seed twice updates rather than duplicates; load the region bundle first, since
    resident bundles refer to its resources as ``Organization/<id>`` and the like.
    Raises ``ValueError`` if ``residents`` is negative.
    """
    if residents < 0:
        raise ValueError(f"residents must be >= 0, got {residents}")
    fake = Faker("zh_CN")
    region = build_region(seed, fake)
    today = REFERENCE_DATE
    window_start = today - timedelta(days=WINDOW_DAYS)
    people = make_residents(seed, residents, region, fake, today)
    profiles = assign_profiles(seed, people, today)
    numbering = Numbering(seed, list(region.institutions))
    bundles = [region.bundle]
    for person, profile in zip(people, profiles, strict=True):
        bundles.append(
            resident_bundle(seed, person, profile, region, numbering, today, window_start)
        )
    return bundles
