"""A recent "live feed" for ``huitong demo``: what the region's institutions sent in the days
before the demo started, so the quality dashboard has live data to judge.

Why: :func:`~huitong.demo.generate_region` is five years of history, all dated before
:data:`~huitong.demo.REFERENCE_DATE` and loaded in one go. That load is each institution's
first receipt, and the timeliness rules (``*.arrived-in-time``) do not judge events from
before an institution went live: its history is a backfill, which can only arrive late. So
the history alone gives the dashboard no timeliness checks at all.

How: the demo stores a region quality document (:func:`go_live_document`) saying that each
demo institution's live feed started :data:`LIVE_DAYS` days before the demo started
(``institutions."Organization/<id>".live_since``), *after* the history is loaded (the
history stays the backfill it is), then loads :func:`live_feed`:

- visits of about :data:`VISIT_SHARE` of the residents (one each) in the last
  :data:`FEED_DAYS` days: an Encounter with the office blood pressure (residents aged 14
  and over), and for health checks height, weight, BMI and four lab panels
  (Specimen, Observations, DiagnosticReport); follow-ups of diabetics add a fasting glucose;
  some people aged 65 and over get the 23-valent pneumococcal vaccine (Immunization) at
  their health check;
- home blood-pressure readings uploaded by the monitors some hypertensive residents have
  (every one to three days over the same days);
- :data:`LATE_SHARE` (about 5 %) of the visits arrive late: dated 32-55 days before the
  demo started, after go-live but beyond the 30 days the timeliness rules allow, so they
  are flagged;
- :data:`IMPLAUSIBLE_SHARE` (about 2 %) of the visits carry one value the rules warn about
  (never one they reject): half a systolic pressure keyed with an extra digit (above the
  physiological bound, ``observation.systolic-in-range``), half a fasting glucose reported
  in mg/dL under the molar LOINC code the region's labs use
  (``observation.lab-unit-fits-test``).

Shares are counts, not coin flips. A feed with any visits has at least one late visit, and
one implausible value of each kind where there are visits enough (two that are not late and
measure a blood pressure), so a small demo shows them too (its shares are then larger).

Pure generation, like the history: no I/O, no wall clock (the caller passes ``now``). The same
seed and ``now`` give identical bundles; ids do not depend on ``now``, so loading a later feed
into the same database updates the earlier one instead of adding to it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from faker import Faker

from huitong.demo._catalog import ACUTE_REASONS, LAB_TESTS, VISIT_REASONS
from huitong.demo._fhir import (
    CST,
    BundleBuilder,
    Resource,
    at,
    concept,
    date_time,
    quantity,
    stable_id,
)
from huitong.demo._physiology import Physiology
from huitong.demo._plan import ENCOUNTER_TYPES
from huitong.demo._population import Profile, assign_profiles
from huitong.demo.clinical import immunization, resident_course
from huitong.demo.generate import DEFAULT_RESIDENTS, DEFAULT_SEED, REFERENCE_DATE, WINDOW_DAYS
from huitong.demo.observations import (
    Measured,
    add_blood_pressure,
    add_body_measurements,
    add_home_blood_pressure,
    add_lab_panels,
)
from huitong.demo.people import Resident, make_residents
from huitong.demo.region import Clinician, Institution, Region, build_region
from huitong.demo.systems import CS_ENCOUNTER_TYPE, ICD10, V3_ACT_CODE, visit_system

__all__ = [
    "FEED_DAYS",
    "IMPLAUSIBLE_SHARE",
    "LATE_DAYS",
    "LATE_SHARE",
    "LIVE_DAYS",
    "VISIT_SHARE",
    "clock_moment",
    "go_live_document",
    "live_feed",
    "live_since",
]

LIVE_DAYS = 60  # the institutions' live feeds started this many days before the demo
FEED_DAYS = 7  # timely visits fall in the last FEED_DAYS days before now
LATE_DAYS = (32, 55)  # late visits: this many days before now (the rules allow 30)
VISIT_SHARE = 0.25  # of the residents, one visit each
LATE_SHARE = 0.05  # of the visits
IMPLAUSIBLE_SHARE = 0.02  # of the visits
# No visit is dated closer to now than this, so a lab report issued three hours after the
# blood draw is not in the future either.
_NEWEST = timedelta(hours=4)

_PRIMARY_PERFORMER = concept(
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer",
    "主诊医师",
)  # fmt: skip
_PNEUMOCOCCAL = ("33", "pneumococcal polysaccharide PPV23", "23价肺炎球菌多糖疫苗")
_GLUCOSE_MOLAR_MASS = 180.156  # g/mol: mmol/L × 18.0156 = mg/dL


def clock_moment(microseconds: int) -> datetime:
    """A reading of Huitong's clock (microseconds since the epoch, UTC) as an aware datetime:
    the ``now`` the functions here take."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=microseconds)


def live_since(now: datetime) -> date:
    """The day the demo institutions' live feeds started: :data:`LIVE_DAYS` before ``now``
    (China Standard Time)."""
    return _local_day(now) - timedelta(days=LIVE_DAYS)


def go_live_document(
    now: datetime, *, seed: int = DEFAULT_SEED, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The region quality document in force (``current``; None: the shipped defaults) with
    every demo hospital's and health centre's ``live_since`` set to :func:`live_since`.

    Everything else in ``current`` is kept (rules, categories, custom rules, other
    institutions), so the shipped rule defaults or a region's own tuning stay as they are.
    """
    document: dict[str, Any] = {"version": 1, **(current or {})}
    institutions = dict(document.get("institutions") or {})
    since = live_since(now).isoformat()
    for institution in _region(seed).institutions.values():
        if institution.kind == "authority":
            continue  # the health commission and insurance bureau send no clinical data
        key = f"Organization/{institution.organization_id}"
        institutions[key] = {**(institutions.get(key) or {}), "live_since": since}
    document["institutions"] = institutions
    return document


def live_feed(
    *, now: datetime, seed: int = DEFAULT_SEED, residents: int = DEFAULT_RESIDENTS
) -> list[Resource]:
    """Transaction Bundles of recent data about the residents of
    ``generate_region(seed=seed, residents=residents)``, oldest event first: one per visit,
    one per home reading.

    Load them after that region: they refer to its Patients, Organizations, Locations,
    Practitioners, Conditions and Devices as ``<type>/<id>``. ``now`` (timezone-aware) is the
    moment the demo starts; every event is before it. Raises ``ValueError`` for a naive
    ``now`` or a negative ``residents``.
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone")
    if residents < 0:
        raise ValueError(f"residents must be >= 0, got {residents}")
    world = _World.draw(seed, residents)
    rng = random.Random(f"{seed}/feed")
    chosen = sorted(rng.sample(range(residents), round(VISIT_SHARE * residents) or
                               min(residents, 1)))  # fmt: skip
    plans = [_plan_visit(world, index, rng) for index in chosen]
    late = set(rng.sample(range(len(plans)), max(1, round(LATE_SHARE * len(plans))))
               if plans else ())  # fmt: skip
    # Implausible values go on visits that are not late, so each warning has its own cause.
    eligible = [i for i, visit in enumerate(plans) if visit.bp and i not in late]
    # At least one of each kind, where there are visits enough.
    wanted = max(2, round(IMPLAUSIBLE_SHARE * len(plans)))
    for n, i in enumerate(rng.sample(eligible, min(wanted, len(eligible)))):
        plans[i] = _implausible(world, plans[i], "systolic" if n % 2 == 0 else "glucose-unit")
    moments = [_moment(rng, now, late=i in late, fasting=bool(visit.labs))
               for i, visit in enumerate(plans)]  # fmt: skip
    dated: list[tuple[datetime, int, Resource]] = []
    for n, (visit, moment) in enumerate(zip(plans, moments, strict=True)):
        dated.append((moment, n, _render_visit(world, visit, moment)))
    for index in range(residents):
        for moment, bundle in _home_readings(world, index, now):
            dated.append((moment, len(dated), bundle))
    dated.sort(key=lambda item: (item[0], item[1]))
    return [bundle for _, _, bundle in dated]


# --- the demo world ------------------------------------------------------------------------


def _region(seed: int) -> Region:
    return build_region(seed, Faker("zh_CN"))


@dataclass(frozen=True)
class _World:
    """The region and residents :func:`~huitong.demo.generate_region` draws for the seed."""

    seed: int
    region: Region
    people: list[Resident]
    profiles: list[Profile]

    @classmethod
    def draw(cls, seed: int, residents: int) -> _World:
        # The same calls, in the same order, as generate_region: the draws depend on it.
        fake = Faker("zh_CN")
        region = build_region(seed, fake)
        people = make_residents(seed, residents, region, fake, REFERENCE_DATE)
        return cls(seed, region, people, assign_profiles(seed, people, REFERENCE_DATE))

    def id(self, key: str) -> str:
        return stable_id(self.seed, key)

    def patient(self, resident: Resident) -> str:
        return f"Patient/{self.id(resident.key)}"

    def physiology(self, index: int) -> Physiology:
        """The resident's physiology as their history has it (clinical.resident_bundle draws
        it first from this generator, then plans care to learn which drugs act when)."""
        window_start = REFERENCE_DATE - timedelta(days=WINDOW_DAYS)
        return resident_course(self.seed, self.people[index], self.profiles[index], self.region,
                               REFERENCE_DATE, window_start)[1]  # fmt: skip


# --- visits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Visit:
    index: int  # the resident's
    institution: Institution
    kind: str  # ENCOUNTER_TYPES code
    department: str
    reason: str | None
    chronic: tuple[str, ...]  # conditions the visit follows up ("hypertension", "diabetes")
    bp: bool
    body: bool
    labs: tuple[str, ...]
    vaccinate: bool
    implausible: str | None = None  # "systolic" or "glucose-unit"


def _local_day(moment: datetime) -> date:
    return moment.astimezone(CST).date()


def _clinic_moment(rng: random.Random, day: date, fasting: bool) -> datetime:
    # Fasting blood draws happen first thing in the morning.
    hour = rng.randint(7, 9) if fasting else rng.randint(8, 16)
    return at(day, hour, rng.randrange(0, 60, 5))


def _moment(rng: random.Random, now: datetime, *, late: bool, fasting: bool) -> datetime:
    """A clinic time LATE_DAYS before ``now`` for a late visit; else in the last FEED_DAYS
    days and at least _NEWEST before ``now``."""
    if late:
        return _clinic_moment(rng, _local_day(now) - timedelta(days=rng.randint(*LATE_DAYS)),
                              fasting)  # fmt: skip
    day = _local_day(now) - timedelta(days=rng.randrange(FEED_DAYS))
    moment = _clinic_moment(rng, day, fasting)
    while moment > now - _NEWEST:  # today's clinic has not got there yet
        moment -= timedelta(days=1)
    return moment


def _plan_visit(world: _World, index: int, rng: random.Random) -> _Visit:
    """What brings the resident in: children to the paediatric clinic, adults with a chronic
    condition mostly to its follow-up at their health centre, others to a hospital clinic
    or their health check."""
    resident, profile = world.people[index], world.profiles[index]
    # Age on the reference date, not on now: what the feed holds (and so its ids) must not
    # depend on the day the demo runs, only its dates. The feed is usually days after it.
    age = resident.age_on(REFERENCE_DATE)
    chronic = tuple(
        name for name, onset in (("hypertension", profile.hypertension_onset),
                                 ("diabetes", profile.diabetes_onset)) if onset
    )  # fmt: skip
    if age < 14:
        return _Visit(index, world.region.institutions["ljmch"], "outpatient", "pediatrics",
                      "J06.9", (), False, False, (), False)  # fmt: skip
    if age < 18 or (not chronic and rng.random() < 0.5):
        hospital = world.region.institutions[resident.district.general_hospital]
        return _Visit(index, hospital, "outpatient", "internal-medicine",
                      rng.choice(ACUTE_REASONS), (), True, False, (), False)  # fmt: skip
    if chronic and rng.random() < 0.7:
        labs = ("glucose",) if "diabetes" in chronic else ()
        return _Visit(index, resident.chc, "chronic-follow-up", "general-practice", None,
                      chronic, True, False, labs, False)  # fmt: skip
    return _health_check(world, index, vaccinate=age >= 65 and rng.random() < 0.3)


def _health_check(world: _World, index: int, *, vaccinate: bool) -> _Visit:
    glucose = "diabetes" if world.profiles[index].diabetes_onset else "glucose"
    return _Visit(index, world.people[index].chc, "health-check", "general-practice", "Z00.0",
                  (), True, True, (glucose, "lipid", "renal", "liver"), vaccinate)  # fmt: skip


def _implausible(world: _World, visit: _Visit, kind: str) -> _Visit:
    """``visit`` with one implausible value; a wrong glucose unit needs a glucose, so a visit
    without one becomes the resident's health check."""
    if kind == "glucose-unit" and not {"glucose", "diabetes"} & set(visit.labs):
        visit = _health_check(world, visit.index, vaccinate=visit.vaccinate)
    return replace(visit, implausible=kind)


def _render_visit(world: _World, visit: _Visit, moment: datetime) -> Resource:
    """One visit as its institution sends it: the Encounter and what was measured there."""
    resident = world.people[visit.index]
    institution = visit.institution
    key = f"{resident.key}/feed/visit"  # one visit per resident and feed
    rng = random.Random(f"{world.seed}/{key}")
    physiology = world.physiology(visit.index)
    builder = BundleBuilder(world.seed)
    patient = world.patient(resident)
    day = _local_day(moment)
    if institution is resident.chc and visit.department == "general-practice":
        doctor = resident.family_doctor
    else:
        doctor = rng.choice(institution.clinicians(visit.department))
    end = moment + timedelta(minutes=rng.randint(10, 40))
    encounter: Resource = {
        "resourceType": "Encounter",
        # Visit numbers from 90000 up: above any day's count in the history's numbering.
        "identifier": [{"system": visit_system(institution.code),
                        "value": f"{day:%Y%m%d}{90000 + visit.index:05d}"}],
        "status": "finished",
        "class": {"system": V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [concept(CS_ENCOUNTER_TYPE, visit.kind, ENCOUNTER_TYPES[visit.kind])],
        "subject": {"reference": patient},
        "participant": [{"type": [_PRIMARY_PERFORMER], "individual": doctor.ref}],
        "period": {"start": date_time(moment), "end": date_time(end)},
    }  # fmt: skip
    if visit.reason:
        encounter["reasonCode"] = [concept(ICD10, visit.reason, VISIT_REASONS[visit.reason])]
    if visit.chronic:
        encounter["reasonReference"] = [
            {"reference": f"Condition/{world.id(f'{resident.key}/condition/{name}')}"}
            for name in visit.chronic
        ]
    if institution.location_ref:
        encounter["location"] = [{"location": institution.location_ref}]
    encounter["serviceProvider"] = institution.ref
    encounter_url = builder.add(f"{key}/encounter", encounter)

    measured = Measured(key=key, patient_url=patient, encounter_url=encounter_url,
                        institution=institution, moment=moment + timedelta(minutes=5))  # fmt: skip
    nurse = _staff(rng, institution, "nursing", doctor)
    if visit.bp:
        systolic, diastolic = physiology.blood_pressure(day, rng)
        if visit.implausible == "systolic":
            systolic *= 10  # keyed with an extra digit: 1380 for 138
        add_blood_pressure(builder, measured, systolic, diastolic, nurse)
    if visit.body:
        add_body_measurements(builder, measured, physiology.height_cm(day),
                              physiology.weight_kg(day, rng), nurse)  # fmt: skip
    if visit.labs:
        add_lab_panels(
            builder, measured, visit.labs, lambda test: physiology.lab_value(test, day, rng),
            resident.sex, _staff(rng, institution, "laboratory", doctor),
        )  # fmt: skip
    if visit.vaccinate:
        _vaccinate(builder, key, rng, resident.chc, patient, encounter_url,
                   moment + timedelta(minutes=30))  # fmt: skip
    bundle = builder.bundle()
    if visit.implausible == "glucose-unit":
        _glucose_in_mg_dl(bundle, builder.id_for(f"{key}/lab/glucose"))
    return bundle


def _staff(
    rng: random.Random, institution: Institution, department: str, fallback: Clinician
) -> Clinician:
    staff = institution.clinicians(department)
    return rng.choice(staff) if staff else fallback


def _vaccinate(
    builder: BundleBuilder, key: str, rng: random.Random, chc: Institution, patient: str,
    encounter_url: str, moment: datetime,
) -> None:  # fmt: skip
    """The 23-valent pneumococcal vaccine many Chinese cities offer free from age 65."""
    builder.add(
        f"{key}/immunization/pneumococcal",
        immunization(_PNEUMOCOCCAL, patient, encounter_url, moment, chc,
                     f"{_local_day(moment):%Y}{rng.randrange(10**6):06d}"),
    )  # fmt: skip


def _glucose_in_mg_dl(bundle: Resource, observation_id: str) -> None:
    """Report the glucose result in mg/dL under its molar LOINC code, as an analyser left on
    its factory unit does: the lab-unit rule warns, and the value itself stays plausible."""
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["id"] != observation_id:
            continue
        assert resource["code"]["coding"][0]["code"] == LAB_TESTS["glucose"].loinc
        mmol = resource["valueQuantity"]["value"]
        resource["valueQuantity"] = quantity(round(mmol * _GLUCOSE_MOLAR_MASS / 10), "mg/dL")
        return
    raise ValueError(f"no glucose Observation {observation_id} in the bundle")


def _home_readings(world: _World, index: int, now: datetime) -> list[tuple[datetime, Resource]]:
    """Readings the resident's home monitor uploaded over the last FEED_DAYS days, one
    bundle each (each upload is its own message). Counted back from yesterday, so their
    number does not depend on the time of day the demo starts."""
    if not world.profiles[index].home_monitor:
        return []
    resident = world.people[index]
    rng = random.Random(f"{world.seed}/{resident.key}/feed/home-bp")
    physiology = world.physiology(index)
    patient = world.patient(resident)
    device = f"Device/{world.id(f'{resident.key}/device/bp-monitor')}"
    today = _local_day(now)
    out = []
    day = today - timedelta(days=1)
    n = 0
    while day >= today - timedelta(days=FEED_DAYS):
        morning = rng.random() < 0.6
        moment = at(day, 7 if morning else 20, rng.randrange(0, 60))
        systolic, diastolic = physiology.blood_pressure(day, rng, home=True)
        builder = BundleBuilder(world.seed)
        add_home_blood_pressure(builder, f"{resident.key}/feed/home-bp/{n}", patient, device,
                                moment, systolic, diastolic)  # fmt: skip
        out.append((moment, builder.bundle()))
        n += 1
        day -= timedelta(days=rng.randint(1, 3))
    return out
