"""A resident's care over the demo window, as plain data: which visits where, and which drugs.

The visit pattern follows how care is organised in a Chinese city: the community health
centre (CHC) does the yearly health check (free from age 65 under the national basic
public-health service) and the chronic-disease follow-ups; hospitals see acute complaints,
specialist reviews, children and pregnancies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from huitong.demo._catalog import ACUTE_REASONS, TCM_REASONS
from huitong.demo._population import Profile
from huitong.demo.people import Resident
from huitong.demo.region import Institution, Region

# Encounter types of CS_ENCOUNTER_TYPE → Chinese display.
ENCOUNTER_TYPES = {
    "health-check": "健康体检",
    "chronic-follow-up": "慢病随访",
    "outpatient": "门诊",
    "emergency": "急诊",
    "inpatient": "住院",
    "child-health": "儿童保健",
    "prenatal": "产前检查",
}


@dataclass(frozen=True)
class Visit:
    day: date
    institution: Institution
    kind: str  # ENCOUNTER_TYPES code
    department: str
    reason: str | None = None  # ICD-10 code of a complaint, for Encounter.reasonCode
    chronic: bool = False  # about the person's chronic conditions: cite them, prescribe
    labs: tuple[str, ...] = ()  # LAB_PANELS keys
    body: bool = False  # height, weight, BMI
    bp: bool = False
    days: int = 0  # length of stay for inpatients
    gestation_weeks: int = 0  # prenatal visits: weeks of pregnancy


@dataclass(frozen=True)
class Prescription:
    drug: str
    start: date
    condition: str | None  # "hypertension" / "diabetes", or None (statin)


@dataclass
class Plan:
    visits: list[Visit] = field(default_factory=list)
    regimen: list[Prescription] = field(default_factory=list)


def treatment_start(onset: date | None, window_start: date) -> date | None:
    """When treatment visible in the window starts: the diagnosis, or the window's opening."""
    if onset is None:
        return None
    return max(onset, window_start)


def plan_care(
    resident: Resident,
    profile: Profile,
    region: Region,
    rng: random.Random,
    window_start: date,
    today: date,
    *,
    high_ldl: bool,
    severe_bp: bool,
    severe_glucose: bool,
) -> Plan:
    """Visits sorted by day, all in ``[window_start, today)``, and the drug regimen."""
    plan = Plan()
    planner = _Planner(resident, profile, region, rng, window_start, today, plan)
    planner.health_checks()
    planner.chronic_care()
    planner.acute()
    planner.children()
    planner.pregnancy()
    planner.guarantee_coverage()
    plan.visits.sort(key=lambda v: (v.day, v.kind))
    plan.regimen = _regimen(profile, rng, window_start, high_ldl, severe_bp, severe_glucose)
    return plan


class _Planner:
    def __init__(
        self,
        resident: Resident,
        profile: Profile,
        region: Region,
        rng: random.Random,
        window_start: date,
        today: date,
        plan: Plan,
    ) -> None:
        self.r = resident
        self.p = profile
        self.rng = rng
        self.start = max(window_start, resident.birth + timedelta(days=30))
        self.end = today - timedelta(days=1)
        self.plan = plan
        self.chc = resident.chc
        self.hospital = region.institutions[resident.district.general_hospital]
        self.mch = region.institutions["ljmch"]
        self.tcm = region.institutions["ljtcm"]
        self.emergency = region.institutions["ljh1"]
        self.ht_start = treatment_start(profile.hypertension_onset, window_start)
        self.dm_start = treatment_start(profile.diabetes_onset, window_start)
        starts = [d for d in (self.ht_start, self.dm_start) if d]
        self.chronic_start = min(starts) if starts else None

    def add(self, visit: Visit) -> None:
        if self.start <= visit.day <= self.end:
            self.plan.visits.append(visit)

    def random_day(self, start: date | None = None, end: date | None = None) -> date:
        lo, hi = start or self.start, end or self.end
        return lo + timedelta(days=self.rng.randrange(max(1, (hi - lo).days + 1)))

    def glucose_panel(self, day: date) -> str:
        onset = self.p.diabetes_onset
        return "diabetes" if onset and day >= onset else "glucose"

    def department(self, institution: Institution, *preferred: str) -> str:
        for name in preferred:
            if institution.clinicians(name):
                return name
        return "internal-medicine"

    def health_checks(self) -> None:
        age = self.r.age_on(self.end)
        if age < 18:
            return
        chance = 0.85 if age >= 65 else 0.5 if self.chronic_start else 0.25
        for year in range(5):
            if self.rng.random() >= chance:
                continue
            day = self.start + timedelta(days=365 * year + self.rng.randrange(300))
            self.add(self.check_visit(day))

    def check_visit(self, day: date) -> Visit:
        return Visit(
            day, self.chc, "health-check", "general-practice", reason="Z00.0",
            chronic=False, body=True, bp=True,
            labs=(self.glucose_panel(day), "lipid", "renal", "liver"),
        )  # fmt: skip

    def chronic_care(self) -> None:
        if not self.chronic_start:
            return
        diabetic = self.dm_start is not None
        specialty = ("endocrinology",) if diabetic else ("cardiology",)
        for onset in (self.p.hypertension_onset, self.p.diabetes_onset):
            if onset and onset >= self.start:  # diagnosed inside the window
                at_hospital = self.rng.random() < 0.5
                place = self.hospital if at_hospital else self.chc
                dept = self.department(place, *specialty) if at_hospital else "general-practice"
                self.add(Visit(onset, place, "outpatient", dept, chronic=True, bp=True,
                               labs=(self.glucose_panel(onset), "lipid", "renal")))  # fmt: skip
        # Quarterly CHC follow-up, as the basic public-health service asks; some are missed.
        day = self.chronic_start + timedelta(days=60 + self.rng.randrange(30))
        while day <= self.end:
            if self.rng.random() < 0.8:
                # Diabetics also get a fasting glucose once their diabetes is being treated.
                treated = diabetic and day >= (self.dm_start or day)
                self.add(Visit(day, self.chc, "chronic-follow-up", "general-practice",
                               chronic=True, bp=True,
                               labs=("glucose",) if treated else ()))  # fmt: skip
            day += timedelta(days=80 + self.rng.randrange(21))
        # Yearly specialist review at the district's general hospital.
        day = self.chronic_start + timedelta(days=120 + self.rng.randrange(120))
        while day <= self.end:
            if self.rng.random() < 0.7:
                labs: tuple[str, ...] = (
                    (self.glucose_panel(day), "lipid", "renal", "liver") if diabetic
                    else ("lipid", "renal"))  # fmt: skip
                dept = self.department(self.hospital, *specialty)
                self.add(Visit(day, self.hospital, "outpatient", dept, chronic=True, bp=True,
                               labs=labs))  # fmt: skip
            day += timedelta(days=330 + self.rng.randrange(70))
        if self.rng.random() < 0.07:
            day = self.random_day(self.chronic_start, self.end - timedelta(days=10))
            dept = self.department(self.hospital, *specialty)
            self.add(Visit(day, self.hospital, "inpatient", dept, chronic=True, bp=True,
                           body=True, labs=(self.glucose_panel(day), "lipid", "renal", "liver"),
                           days=self.rng.randint(4, 9)))  # fmt: skip

    def acute(self) -> None:
        for _ in range(self.rng.choices((0, 1, 2, 3), (25, 35, 25, 15))[0]):
            day = self.random_day()
            age = self.r.age_on(day)
            reason = self.rng.choice(ACUTE_REASONS)
            if age < 14:
                self.add(Visit(day, self.mch, "outpatient", "pediatrics", reason="J06.9"))
                continue
            roll = self.rng.random()
            bp = age >= 18 and self.rng.random() < 0.6
            if roll < 0.3:
                self.add(Visit(day, self.chc, "outpatient", "general-practice", reason=reason,
                               bp=bp))  # fmt: skip
            elif roll < 0.42:
                self.add(Visit(day, self.emergency, "emergency", "emergency", reason=reason,
                               bp=bp))  # fmt: skip
            else:
                self.add(Visit(day, self.hospital, "outpatient",
                               self.department(self.hospital, "internal-medicine"),
                               reason=reason, bp=bp))  # fmt: skip
        if self.r.age_on(self.end) >= 18 and self.rng.random() < 0.15:
            for _ in range(self.rng.randint(1, 2)):
                self.add(Visit(self.random_day(), self.tcm, "outpatient", "tcm",
                               reason=self.rng.choice(TCM_REASONS),
                               bp=self.rng.random() < 0.5))  # fmt: skip

    def children(self) -> None:
        # Yearly child-health check at the maternal and child health hospital until age 7.
        for year in range(5):
            day = self.start + timedelta(days=365 * year + self.rng.randrange(200))
            if self.r.age_on(day) < 7 and self.rng.random() < 0.7:
                self.add(Visit(day, self.mch, "child-health", "child-health", reason="Z00.1",
                               body=True))  # fmt: skip

    def pregnancy(self) -> None:
        if self.r.sex != "female" or self.rng.random() >= 0.25:
            return
        conception = self.random_day(self.start, self.end - timedelta(days=260))
        if not 22 <= self.r.age_on(conception) <= 38:
            return
        for n, week in enumerate((12, 20, 28, 36)):
            day = conception + timedelta(weeks=week, days=self.rng.randrange(5))
            self.add(Visit(day, self.mch, "prenatal", "obstetrics", reason="Z34.9", bp=True,
                           body=True, labs=("glucose",) if n == 2 else (),
                           gestation_weeks=week))  # fmt: skip

    def guarantee_coverage(self) -> None:
        """Everyone has a CHC record; nearly everyone has been to a hospital too."""
        kinds = {v.institution.kind for v in self.plan.visits}
        if "chc" not in kinds:
            day = self.random_day()
            if self.r.age_on(day) >= 18:
                self.add(self.check_visit(day))
            else:
                self.add(Visit(day, self.chc, "outpatient", "general-practice", reason="J06.9"))
        if "hospital" not in kinds and self.rng.random() < 0.93:
            day = self.random_day()
            if self.r.age_on(day) < 14:
                self.add(Visit(day, self.mch, "outpatient", "pediatrics", reason="J06.9"))
            else:
                self.add(Visit(day, self.hospital, "outpatient",
                               self.department(self.hospital, "internal-medicine"),
                               reason=self.rng.choice(ACUTE_REASONS), bp=True))  # fmt: skip


def _regimen(
    profile: Profile,
    rng: random.Random,
    window_start: date,
    high_ldl: bool,
    severe_bp: bool,
    severe_glucose: bool,
) -> list[Prescription]:
    """Drugs with the day each starts; a second drug follows when the first is not enough."""
    regimen = []
    ht_start = treatment_start(profile.hypertension_onset, window_start)
    dm_start = treatment_start(profile.diabetes_onset, window_start)
    if ht_start:
        first = rng.choices(
            ("amlodipine", "losartan", "enalapril", "valsartan-amlodipine"), (45, 22, 18, 15)
        )[0]
        regimen.append(Prescription(first, ht_start, "hypertension"))
        if severe_bp:
            add_on = "hydrochlorothiazide" if first != "valsartan-amlodipine" else "enalapril"
            regimen.append(Prescription(add_on, ht_start + timedelta(days=180), "hypertension"))
    if dm_start:
        regimen.append(Prescription("metformin", dm_start, "diabetes"))
        if severe_glucose:
            add_on = "insulin-glargine" if rng.random() < 0.55 else "acarbose"
            regimen.append(Prescription(add_on, dm_start + timedelta(days=120), "diabetes"))
    chronic_start = min((d for d in (ht_start, dm_start) if d), default=None)
    if chronic_start and high_ldl:
        regimen.append(Prescription("atorvastatin", chronic_start, None))
    return regimen
