"""Plausible measurement values for one person over time.

Each person gets fixed baselines when drawn; a chronic condition adds a trajectory that
starts high and approaches a treated target exponentially after treatment starts, so
readings trend down with treatment as they do in real follow-up records. Every reading
adds its own noise from the caller's generator, keeping the whole model deterministic.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import date


def _clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


@dataclass(frozen=True)
class Trajectory:
    """A level that decays from ``untreated`` towards ``target`` once treatment starts."""

    untreated: float
    target: float
    start: date
    tau_days: float

    def at(self, day: date) -> float:
        elapsed = (day - self.start).days
        if elapsed <= 0:
            return self.untreated
        return self.target + (self.untreated - self.target) * math.exp(-elapsed / self.tau_days)


# Fraction of adult height reached at a given age (years), roughly following Chinese growth
# charts; linear between the points.
_HEIGHT_FRACTION = ((0, 0.30), (1, 0.45), (2, 0.52), (4, 0.60), (6, 0.69), (8, 0.76),
                    (10, 0.82), (12, 0.89), (14, 0.95), (16, 0.98), (18, 1.0))  # fmt: skip
# Typical BMI by age for children; adults use their own baseline.
_CHILD_BMI = ((0, 16.5), (1, 17.0), (2, 16.3), (5, 15.4), (8, 16.0), (12, 18.0),
              (15, 19.5), (18, 21.0))  # fmt: skip


def _interpolate(table: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= table[0][0]:
        return table[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(table):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return table[-1][1]


@dataclass(frozen=True)
class Physiology:
    sex: str
    birth: date
    adult_height_cm: float
    bmi: float
    systolic: float  # usual level without hypertension
    bp: Trajectory | None  # systolic trajectory when hypertensive
    glucose: float  # usual fasting level without diabetes
    diabetes: Trajectory | None  # fasting-glucose trajectory when diabetic
    diabetes_onset: date | None
    cholesterol: float
    triglyceride: float
    hdl: float
    statin_from: date | None
    creatinine: float
    potassium: float
    thiazide_from: date | None
    alt: float
    ast: float

    def age_years(self, day: date) -> float:
        return (day - self.birth).days / 365.25

    # --- vital signs -----------------------------------------------------------------------

    def blood_pressure(
        self, day: date, rng: random.Random, *, home: bool = False
    ) -> tuple[int, int]:
        if self.bp and day >= self.bp.start:
            level = self.bp.at(day)
        elif self.bp:
            # Before diagnosis: high-normal readings, or the condition would have been caught.
            level = max(self.systolic, 128.0)
        else:
            level = self.systolic
        if home:
            level -= 5  # readings at home run lower than in the clinic (white-coat effect)
        systolic = _clip(level + rng.gauss(0, 6), 92, 198)
        if not self.bp or day < self.bp.start:
            systolic = min(systolic, 139)
        diastolic = _clip(0.55 * systolic + 5 + rng.gauss(0, 4), 55, 118)
        return round(systolic), round(diastolic)

    def height_cm(self, day: date) -> float:
        fraction = _interpolate(_HEIGHT_FRACTION, self.age_years(day))
        return round(self.adult_height_cm * fraction, 1)

    def weight_kg(self, day: date, rng: random.Random) -> float:
        age = self.age_years(day)
        bmi = _interpolate(_CHILD_BMI, age) * self.bmi / 23.0 if age < 18 else self.bmi
        metres = self.height_cm(day) / 100
        return round(bmi * metres * metres + rng.gauss(0, 0.6), 1)

    # --- laboratory ------------------------------------------------------------------------

    def lab_value(self, test: str, day: date, rng: random.Random) -> float:
        """Today's value of a test in ``_catalog.LAB_TESTS`` (unrounded)."""
        statin = 0.7 if self.statin_from and day >= self.statin_from else 1.0
        if test == "glucose":
            return self._glucose(day, rng)
        if test == "hba1c":
            # ADAG regression: estimated average glucose (mmol/L) = 1.59 × HbA1c − 2.59.
            mean_glucose = self._glucose(day, rng, noise=0.0)
            return _clip((mean_glucose + 2.59) / 1.59 + rng.gauss(0, 0.2), 4.2, 11.5)
        if test == "cholesterol":
            return _clip(self.cholesterol * statin + rng.gauss(0, 0.2), 2.8, 8.5)
        if test == "triglyceride":
            return _clip(self.triglyceride * math.exp(rng.gauss(0, 0.15)), 0.4, 6.0)
        if test == "hdl":
            return _clip(self.hdl + rng.gauss(0, 0.08), 0.6, 2.6)
        if test == "ldl":
            # Friedewald in mmol/L: LDL = TC − HDL − TG / 2.2.
            ldl = self.cholesterol * statin - self.hdl - self.triglyceride / 2.2
            return _clip(ldl + rng.gauss(0, 0.15), 0.9, 6.0)
        if test == "creatinine":
            return _clip(self.creatinine + rng.gauss(0, 4), 30, 200)
        if test == "potassium":
            thiazide = 0.3 if self.thiazide_from and day >= self.thiazide_from else 0.0
            return _clip(self.potassium - thiazide + rng.gauss(0, 0.15), 3.0, 5.8)
        if test == "alt":
            return _clip(self.alt * math.exp(rng.gauss(0, 0.15)), 5, 150)
        if test == "ast":
            return _clip(self.ast * math.exp(rng.gauss(0, 0.12)), 8, 120)
        raise ValueError(f"no model for lab test {test!r}")

    def _glucose(self, day: date, rng: random.Random, noise: float = 0.3) -> float:
        jitter = rng.gauss(0, noise) if noise else 0.0
        if self.diabetes and self.diabetes_onset and day >= self.diabetes_onset:
            return _clip(self.diabetes.at(day) + jitter, 6.5, 12.0)
        if self.diabetes:
            return _clip(6.4 + jitter, 6.0, 6.9)  # impaired fasting glucose before diagnosis
        return _clip(self.glucose + jitter, 3.9, 6.9)


def draw_physiology(
    rng: random.Random,
    *,
    sex: str,
    birth: date,
    hypertension_start: date | None,
    diabetes_start: date | None,
    diabetes_onset: date | None,
    today: date,
) -> Physiology:
    """Baselines for one person; ``*_start`` are the dates treatment begins.

    Drug effects (``statin_from``, ``thiazide_from``) start unset: the caller decides the
    regimen from these baselines and sets them with ``dataclasses.replace``.
    """
    male = sex == "male"
    age = (today - birth).days / 365.25
    height = rng.gauss(169.5 if male else 158.0, 6 if male else 5)
    if birth.year < 1960:
        height -= 3  # older cohorts grew up shorter
    bmi = rng.gauss(23.3, 2.8) + (2.5 if diabetes_start else 0) + (1.0 if hypertension_start else 0)
    bp = None
    if hypertension_start:
        bp = Trajectory(
            untreated=rng.uniform(148, 175),
            target=rng.uniform(126, 142),
            start=hypertension_start,
            tau_days=rng.uniform(90, 300),
        )
    diabetes = None
    if diabetes_start:
        diabetes = Trajectory(
            untreated=rng.uniform(8.0, 11.8),
            target=rng.uniform(6.6, 8.0),
            start=diabetes_start,
            tau_days=rng.uniform(90, 365),
        )
    chronic = hypertension_start is not None or diabetes_start is not None
    cholesterol = rng.gauss(4.8 + (0.3 if chronic else 0), 0.75)
    return Physiology(
        sex=sex,
        birth=birth,
        adult_height_cm=height,
        bmi=_clip(bmi, 17.0, 36.0),
        systolic=rng.gauss(112 + 0.3 * max(0.0, age - 30), 8),
        bp=bp,
        glucose=rng.gauss(5.0, 0.35),
        diabetes=diabetes,
        diabetes_onset=diabetes_onset,
        cholesterol=_clip(cholesterol, 3.2, 7.8),
        triglyceride=math.exp(rng.gauss(math.log(1.3 if not diabetes_start else 1.8), 0.35)),
        hdl=_clip(
            rng.gauss(1.25 if male else 1.42, 0.22) - (0.1 if diabetes_start else 0), 0.7, 2.4
        ),
        statin_from=None,
        creatinine=rng.gauss(78 if male else 60, 10) + (8 if age >= 65 else 0),
        potassium=rng.gauss(4.2, 0.25),
        thiazide_from=None,
        alt=rng.gauss(26 if male else 19, 6),
        ast=rng.gauss(24 if male else 21, 5),
    )
