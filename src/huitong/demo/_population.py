"""Who in the population has which chronic condition, allergy or home monitor.

Prevalences are fixed counts, not per-person coin flips, so a 300-person region always has
27-28% hypertension and 11% type 2 diabetes whatever the seed; who gets them is drawn with
age-dependent weights, so the old carry most of the burden as they do in China.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from huitong.demo._catalog import ALLERGENS, Allergen
from huitong.demo.people import Resident

HYPERTENSION_SHARE = 0.275
DIABETES_SHARE = 0.11
ALLERGY_SHARE = 0.10
HOME_MONITOR_SHARE = 0.4  # of hypertensives, who are then sent home readings


@dataclass(frozen=True)
class Profile:
    hypertension_onset: date | None
    diabetes_onset: date | None
    allergen: Allergen | None
    home_monitor: bool


def _hypertension_weight(age: int) -> float:
    # Roughly the age gradient of China's national hypertension survey (2012-2015).
    if age < 25:
        return 0.0
    if age < 45:
        return 1.0
    if age < 60:
        return 4.0
    if age < 75:
        return 8.0
    return 10.0


def _diabetes_weight(age: int) -> float:
    if age < 30:
        return 0.0
    if age < 45:
        return 1.0
    if age < 60:
        return 3.0
    return 5.0


def _weighted_sample(
    rng: random.Random, people: Sequence[Resident], weight: Callable[[Resident], float], k: int
) -> set[int]:
    """Indexes of ``k`` people drawn without replacement, chance proportional to weight.

    Efraimidis-Spirakis: each person gets key u**(1/w) and the k largest keys win. People
    of weight 0 are never drawn, so fewer than ``k`` come back if too few are eligible.
    """
    keyed = []
    for person in people:
        u = rng.random()  # drawn for everyone, so one person's weight never shifts another's draw
        w = weight(person)
        if w > 0:
            keyed.append((u ** (1 / w), person.index))
    keyed.sort(reverse=True)
    return {index for _, index in keyed[:k]}


def _onset(
    rng: random.Random, birth: date, today: date, earliest_age: int, years_back: int
) -> date:
    start = max(_add_years(birth, earliest_age), _add_years(today, -years_back))
    end = today - timedelta(days=120)
    start = min(start, end)
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


def assign_profiles(seed: int, residents: Sequence[Resident], today: date) -> list[Profile]:
    """One :class:`Profile` per resident, in the same order."""
    rng = random.Random(f"{seed}/population")
    n = len(residents)
    hypertensive = _weighted_sample(
        rng,
        residents,
        lambda r: _hypertension_weight(r.age_on(today)),
        round(HYPERTENSION_SHARE * n),
    )
    # Diabetes and hypertension travel together (metabolic syndrome).
    diabetic = _weighted_sample(
        rng,
        residents,
        lambda r: _diabetes_weight(r.age_on(today)) * (2.5 if r.index in hypertensive else 1.0),
        round(DIABETES_SHARE * n),
    )
    allergic = set(rng.sample(range(n), round(ALLERGY_SHARE * n)))
    profiles = []
    for resident in residents:
        prng = random.Random(f"{seed}/profile/{resident.index}")
        ht_onset = dm_onset = None
        if resident.index in hypertensive:
            ht_onset = _onset(prng, resident.birth, today, earliest_age=28, years_back=25)
        if resident.index in diabetic:
            dm_onset = _onset(prng, resident.birth, today, earliest_age=32, years_back=18)
        allergen = None
        if resident.index in allergic:
            allergen = prng.choices(ALLERGENS, [a.weight for a in ALLERGENS])[0]
        home_monitor = (
            ht_onset is not None
            and resident.age_on(today) <= 85
            and prng.random() < HOME_MONITOR_SHARE
        )
        profiles.append(Profile(ht_onset, dm_onset, allergen, home_monitor))
    return profiles
