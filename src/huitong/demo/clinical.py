"""One resident's record as a FHIR transaction Bundle.

The Patient comes first, then Conditions, AllergyIntolerance and a home Device, then each
visit's Encounter with what was measured and prescribed there, then home readings and
immunisations. References inside the bundle use ``urn:uuid:`` fullUrls; references to the
region (institutions, staff, formulary) use ``<type>/<id>`` of the region bundle's PUTs.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

from huitong.demo._catalog import (
    ANAPHYLAXIS,
    DRUGS,
    HYPERTENSION,
    INFLUENZA_VACCINE,
    PRODUCTS,
    REACTIONS,
    ROUTES,
    TYPE2_DIABETES,
    VISIT_REASONS,
)
from huitong.demo._fhir import (
    BundleBuilder,
    Resource,
    at,
    concept,
    date_time,
    quantity,
    reference,
)
from huitong.demo._physiology import Physiology, draw_physiology
from huitong.demo._plan import (
    ENCOUNTER_TYPES,
    Plan,
    Prescription,
    Visit,
    plan_care,
    treatment_start,
)
from huitong.demo._population import Profile
from huitong.demo.observations import (
    Measured,
    add_blood_pressure,
    add_body_measurements,
    add_home_blood_pressure,
    add_lab_panels,
)
from huitong.demo.people import Resident, patient_resource
from huitong.demo.region import Clinician, Institution, Region
from huitong.demo.systems import (
    ATC,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    CS_ENCOUNTER_TYPE,
    CVX,
    ICD10,
    SNOMED,
    V3_ACT_CODE,
    visit_system,
)

__all__ = ["Numbering", "resident_bundle"]

_CONDITIONS = {"hypertension": HYPERTENSION, "diabetes": TYPE2_DIABETES}
_ENCOUNTER_CLASS = {
    "inpatient": ("IMP", "inpatient encounter"),
    "emergency": ("EMER", "emergency"),
}
_AMBULATORY = ("AMB", "ambulatory")
_PRIMARY_PERFORMER = concept(
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer",
    "主诊医师",
)  # fmt: skip
_HOME_MONITORS = (
    ("安泰医疗器械有限公司", "AT-BP21", "安泰上臂式电子血压计"),
    ("康宁智能健康科技有限公司", "KN-B360", "康宁智能血压计"),
)


class Numbering:
    """Per-institution MRN and visit-number counters, shared by all residents of one run.

    Each institution starts at its own seeded offset, as independent hospital systems do,
    so the same MRN value can occur at two institutions (different systems) — a trap the
    identity matcher must not fall into.
    """

    def __init__(self, seed: int, org_codes: list[str]) -> None:
        rng = random.Random(f"{seed}/numbering")
        self._mrn = {code: rng.randrange(100_000, 900_000) * 10 for code in sorted(org_codes)}
        self._visit = dict.fromkeys(org_codes, 0)

    def mrn(self, org_code: str) -> str:
        self._mrn[org_code] += 1
        return f"{self._mrn[org_code]:08d}"

    def visit(self, org_code: str, day: date) -> str:
        self._visit[org_code] += 1
        return f"{day:%Y%m%d}{self._visit[org_code]:05d}"


def resident_bundle(
    seed: int,
    resident: Resident,
    profile: Profile,
    region: Region,
    numbering: Numbering,
    today: date,
    window_start: date,
) -> Resource:
    """The transaction Bundle holding everything about ``resident``."""
    rng, physiology, plan = resident_course(seed, resident, profile, region, today, window_start)
    chart = _Chart(seed, resident, profile, region, rng, physiology, plan, today)
    return chart.render(numbering)


def immunization(
    vaccine: tuple[str, str, str], patient: str, encounter: str | None, moment: datetime,
    chc: Institution, lot: str,
) -> Resource:
    """An intramuscular dose of 0.5 mL of ``vaccine`` (CVX code, English and Chinese names)
    given at the community health centre ``chc``."""
    out: Resource = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": concept(CVX, *vaccine),
        "patient": {"reference": patient},
    }
    if encounter is not None:
        out["encounter"] = {"reference": encounter}
    out.update({
        "occurrenceDateTime": date_time(moment),
        "primarySource": True,
        "location": {"reference": f"Location/{chc.location_id}"},
        "lotNumber": lot,
        "route": concept(
            "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "IM",
            "Injection, intramuscular", "肌内注射"),
        "doseQuantity": quantity(0.5, "ml", "mL"),
        "performer": [{"actor": chc.ref}],
    })  # fmt: skip
    return out


def resident_course(
    seed: int, resident: Resident, profile: Profile, region: Region, today: date,
    window_start: date,
) -> tuple[random.Random, Physiology, Plan]:
    """The resident's physiology and plan of care as their history draws them, and the
    generator the chart goes on drawing from (the recent feed, huitong.demo.feed, continues
    each person's values from the same draws)."""
    rng = random.Random(f"{seed}/{resident.key}/clinical")
    physiology = draw_physiology(
        rng,
        sex=resident.sex,
        birth=resident.birth,
        hypertension_start=treatment_start(profile.hypertension_onset, window_start),
        diabetes_start=treatment_start(profile.diabetes_onset, window_start),
        diabetes_onset=profile.diabetes_onset,
        today=today,
    )
    baseline_ldl = physiology.cholesterol - physiology.hdl - physiology.triglyceride / 2.2
    plan = plan_care(
        resident, profile, region, rng, window_start, today,
        high_ldl=baseline_ldl > 3.4,
        severe_bp=bool(physiology.bp and physiology.bp.untreated - physiology.bp.target > 28),
        severe_glucose=bool(physiology.diabetes and physiology.diabetes.untreated > 10.2),
    )  # fmt: skip
    physiology = replace(
        physiology,
        statin_from=_first_start(plan, "atorvastatin"),
        thiazide_from=_first_start(plan, "hydrochlorothiazide"),
    )
    return rng, physiology, plan


def _first_start(plan: Plan, drug: str) -> date | None:
    return next((p.start for p in plan.regimen if p.drug == drug), None)


class _Chart:
    def __init__(
        self,
        seed: int,
        resident: Resident,
        profile: Profile,
        region: Region,
        rng: random.Random,
        physiology: Physiology,
        plan: Plan,
        today: date,
    ) -> None:
        self.r = resident
        self.profile = profile
        self.region = region
        self.rng = rng
        self.phys = physiology
        self.plan = plan
        self.today = today
        self.builder = BundleBuilder(seed)
        self.key = resident.key
        self.patient_url = f"urn:uuid:{self.builder.id_for(self.key)}"
        # Visit index → moment and lead clinician, drawn once so every resource agrees.
        self.moments = [self._moment(v) for v in plan.visits]
        self.doctors = [self._doctor(v) for v in plan.visits]
        self.last_prescribed = {
            p.drug: max(
                (i for i, v in enumerate(plan.visits) if v.chronic and p.start <= v.day),
                default=-1,
            )
            for p in plan.regimen
        }

    # --- ids and people ---------------------------------------------------------------------

    def encounter_url(self, index: int) -> str:
        return f"urn:uuid:{self.builder.id_for(f'{self.key}/visit/{index}/encounter')}"

    def condition_url(self, condition: str) -> str:
        return f"urn:uuid:{self.builder.id_for(f'{self.key}/condition/{condition}')}"

    def _moment(self, visit: Visit) -> datetime:
        if visit.labs:  # fasting blood draws happen first thing in the morning
            return at(visit.day, self.rng.randint(7, 9), self.rng.randrange(0, 60, 5))
        return at(visit.day, self.rng.randint(8, 16), self.rng.randrange(0, 60, 5))

    def _doctor(self, visit: Visit) -> Clinician:
        if visit.institution is self.r.chc and visit.department == "general-practice":
            return self.r.family_doctor
        staff = visit.institution.clinicians(visit.department)
        return self.rng.choice(staff)

    def _staff(self, institution: Institution, department: str, fallback: Clinician) -> Clinician:
        staff = institution.clinicians(department)
        return self.rng.choice(staff) if staff else fallback

    # --- the bundle ------------------------------------------------------------------------

    def render(self, numbering: Numbering) -> Resource:
        visited = sorted(
            {v.institution.code for v in self.plan.visits},
            key=list(self.region.institutions).index,
        )
        mrns = {code: numbering.mrn(code) for code in visited}
        self.builder.add(self.key, patient_resource(self.r, mrns, self.region))
        self._conditions()
        self._allergy()
        device_url = self._home_device()
        for index, visit in enumerate(self.plan.visits):
            self._visit(index, visit, numbering)
        if device_url:
            self._home_readings(device_url)
        self._immunizations()
        return self.builder.bundle()

    def _conditions(self) -> None:
        onsets = {
            "hypertension": self.profile.hypertension_onset,
            "diabetes": self.profile.diabetes_onset,
        }
        for condition, onset in onsets.items():
            if onset is None:
                continue
            code, display = _CONDITIONS[condition]
            # Recorded at the first visit about chronic care on or after the onset.
            index = next(
                (i for i, v in enumerate(self.plan.visits) if v.chronic and v.day >= onset), None
            )
            resource: Resource = {
                "resourceType": "Condition",
                "clinicalStatus": concept(CONDITION_CLINICAL, "active", "Active", "活动"),
                "verificationStatus": concept(CONDITION_VERIFICATION, "confirmed", "Confirmed",
                                              "已确认"),
                "category": [concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item",
                                     "问题列表")],
                "code": concept(ICD10, code, display),
                "subject": {"reference": self.patient_url},
            }  # fmt: skip
            if index is not None:
                resource["encounter"] = {"reference": self.encounter_url(index)}
            if index is not None and self.plan.visits[index].day == onset:
                resource["onsetDateTime"] = date_time(self.moments[index])
            else:  # diagnosed before the window: the date the person reports
                resource["onsetDateTime"] = onset.isoformat()
            if index is not None:
                resource["recordedDate"] = date_time(self.moments[index])
                resource["recorder"] = self.doctors[index].ref
            self.builder.add(f"{self.key}/condition/{condition}", resource)

    def _allergy(self) -> None:
        allergen = self.profile.allergen
        if allergen is None or not self.plan.visits:
            return
        severe = allergen.snomed == "764146007" and self.rng.random() < 0.15
        manifestation = ANAPHYLAXIS if severe else self.rng.choice(REACTIONS)
        self.builder.add(
            f"{self.key}/allergy",
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active", "Active", "活动"),
                "verificationStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "confirmed", "Confirmed", "已确认"),
                "type": "allergy",
                "category": [allergen.category],
                "criticality": allergen.criticality,
                "code": concept(SNOMED, allergen.snomed, allergen.display, allergen.name_zh),
                "patient": {"reference": self.patient_url},
                "encounter": {"reference": self.encounter_url(0)},
                "recordedDate": date_time(self.moments[0]),
                "recorder": self.doctors[0].ref,
                "reaction": [{
                    "manifestation": [concept(SNOMED, *manifestation)],
                    "severity": "severe" if severe else self.rng.choice(("mild", "moderate")),
                }],
            },
        )  # fmt: skip

    def _home_device(self) -> str | None:
        if not self.profile.home_monitor:
            return None
        manufacturer, model, name = self.rng.choice(_HOME_MONITORS)
        return self.builder.add(
            f"{self.key}/device/bp-monitor",
            {
                "resourceType": "Device",
                "status": "active",
                "manufacturer": manufacturer,
                "serialNumber": f"{model.split('-')[0]}{self.rng.randrange(10**9):09d}",
                "deviceName": [
                    {"name": name, "type": "user-friendly-name"},
                    {"name": model, "type": "model-name"},
                ],
                "modelNumber": model,
                "type": {"text": "上臂式电子血压计"},
                "patient": {"reference": self.patient_url},
            },
        )

    # --- visits --------------------------------------------------------------------------

    def _visit(self, index: int, visit: Visit, numbering: Numbering) -> None:
        moment = self.moments[index]
        doctor = self.doctors[index]
        institution = visit.institution
        end = (
            at(visit.day + timedelta(days=visit.days), 10, 0)
            if visit.days
            else moment + timedelta(minutes=self.rng.randint(10, 40))
        )
        klass, klass_display = _ENCOUNTER_CLASS.get(visit.kind, _AMBULATORY)
        encounter: Resource = {
            "resourceType": "Encounter",
            "identifier": [
                {"system": visit_system(institution.code),
                 "value": numbering.visit(institution.code, visit.day)},
            ],
            "status": "finished",
            "class": {"system": V3_ACT_CODE, "code": klass, "display": klass_display},
            "type": [concept(CS_ENCOUNTER_TYPE, visit.kind, ENCOUNTER_TYPES[visit.kind])],
            "subject": {"reference": self.patient_url},
            "participant": [{"type": [_PRIMARY_PERFORMER], "individual": doctor.ref}],
            "period": {"start": date_time(moment), "end": date_time(end)},
        }  # fmt: skip
        if visit.reason:
            encounter["reasonCode"] = [concept(ICD10, visit.reason, VISIT_REASONS[visit.reason])]
        cited = self._conditions_on(visit) if visit.chronic else []
        if cited:
            encounter["reasonReference"] = [{"reference": self.condition_url(c)} for c in cited]
        location = institution.location_ref
        if location:
            encounter["location"] = [{"location": location}]
        encounter["serviceProvider"] = institution.ref
        encounter_url = self.builder.add(f"{self.key}/visit/{index}/encounter", encounter)

        measured = Measured(
            key=f"{self.key}/visit/{index}",
            patient_url=self.patient_url,
            encounter_url=encounter_url,
            institution=institution,
            moment=moment + timedelta(minutes=5),
        )
        nurse = self._staff(institution, "nursing", doctor)
        if visit.bp and self.r.age_on(visit.day) >= 14:
            systolic, diastolic = self.phys.blood_pressure(visit.day, self.rng)
            add_blood_pressure(self.builder, measured, systolic, diastolic, nurse)
        if visit.body:
            weight = self.phys.weight_kg(visit.day, self.rng)
            # Gestational gain: little in the first trimester, then about 0.45 kg a week.
            weight += round(max(0, visit.gestation_weeks - 12) * 0.45, 1)
            add_body_measurements(
                self.builder, measured, self.phys.height_cm(visit.day), round(weight, 1), nurse
            )
        if visit.labs:
            add_lab_panels(
                self.builder, measured, visit.labs,
                lambda test: self.phys.lab_value(test, visit.day, self.rng),
                self.r.sex, self._staff(institution, "laboratory", doctor),
            )  # fmt: skip
        if visit.chronic:
            self._prescriptions(index, visit, encounter_url, doctor, end)

    def _conditions_on(self, visit: Visit) -> list[str]:
        onsets = {
            "hypertension": self.profile.hypertension_onset,
            "diabetes": self.profile.diabetes_onset,
        }
        return [c for c, onset in onsets.items() if onset and visit.day >= onset]

    def _prescriptions(
        self, index: int, visit: Visit, encounter_url: str, doctor: Clinician, authored: datetime
    ) -> None:
        """One MedicationRequest per drug in use, written as the visit ends (inpatients:
        discharge medication)."""
        category = (
            ("inpatient", "Inpatient", "住院") if visit.kind == "inpatient"
            else ("community", "Community", "社区") if visit.institution.kind == "chc"
            else ("outpatient", "Outpatient", "门诊")
        )  # fmt: skip
        for prescription in self.plan.regimen:
            if prescription.start > visit.day:
                continue
            self.builder.add(
                f"{self.key}/visit/{index}/medication/{prescription.drug}",
                self._medication_request(prescription, index, category, encounter_url, doctor,
                                         authored),
            )  # fmt: skip

    def _medication_request(
        self,
        prescription: Prescription,
        index: int,
        category: tuple[str, str, str],
        encounter_url: str,
        doctor: Clinician,
        authored: datetime,
    ) -> Resource:
        drug = DRUGS[prescription.drug]
        later = self.last_prescribed[prescription.drug] > index
        request: Resource = {
            "resourceType": "MedicationRequest",
            # Chinese prescriptions cover a month or so; an earlier one is done once renewed.
            "status": "completed" if later else "active",
            "intent": "order",
            "category": [concept(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-category", *category)],
        }  # fmt: skip
        if drug.product:
            request["medicationReference"] = reference(
                f"Medication/{self.region.medication_ids[drug.product]}",
                PRODUCTS[drug.product].name_zh,
            )
        else:
            request["medicationCodeableConcept"] = concept(ATC, drug.atc, drug.atc_display,
                                                           drug.name_zh)  # fmt: skip
        request["subject"] = {"reference": self.patient_url}
        request["encounter"] = {"reference": encounter_url}
        request["authoredOn"] = date_time(authored)
        request["requester"] = doctor.ref
        if prescription.condition:
            request["reasonReference"] = [{"reference": self.condition_url(prescription.condition)}]
        else:
            request["reasonCode"] = [concept(ICD10, "E78.5", "高脂血症")]
        route_code, route_display, route_zh = ROUTES[drug.route]
        request["dosageInstruction"] = [
            {
                "text": drug.instruction,
                "timing": {"repeat": {"frequency": drug.times_per_day, "period": 1,
                                      "periodUnit": "d"}},
                "route": concept(SNOMED, route_code, route_display, route_zh),
                "doseAndRate": [{"doseQuantity": quantity(drug.dose, drug.dose_unit,
                                                          drug.dose_ucum)}],
            }
        ]  # fmt: skip
        request["dispenseRequest"] = {
            "expectedSupplyDuration": quantity(30, "天", "d"),
        }
        return request

    # --- outside visits ------------------------------------------------------------------

    def _home_readings(self, device_url: str) -> None:
        start = max(
            self.today - timedelta(days=self.rng.randint(60, 180)),
            self.profile.hypertension_onset or self.today,
        )
        day = start
        n = 0
        while day < self.today:
            morning = self.rng.random() < 0.6
            moment = at(day, 7 if morning else 20, self.rng.randrange(0, 60))
            systolic, diastolic = self.phys.blood_pressure(day, self.rng, home=True)
            add_home_blood_pressure(
                self.builder, f"{self.key}/home-bp/{n}", self.patient_url, device_url, moment,
                systolic, diastolic,
            )  # fmt: skip
            n += 1
            day += timedelta(days=self.rng.randint(3, 9))

    def _immunizations(self) -> None:
        chc = self.r.chc
        first_season = (self.today - timedelta(days=5 * 365)).year
        for year in range(first_season, self.today.year + 1):
            day = date(year, 10, 8) + timedelta(days=self.rng.randrange(50))
            if not (self.today - timedelta(days=5 * 365) <= day < self.today):
                continue
            if self.r.age_on(day) < 60 or self.rng.random() >= 0.35:
                continue
            moment = at(day, self.rng.randint(8, 16), 0)
            self.builder.add(
                f"{self.key}/immunization/influenza-{year}",
                immunization(INFLUENZA_VACCINE, self.patient_url, None, moment, chc,
                             f"{year}{self.rng.randrange(10**6):06d}"),
            )  # fmt: skip
