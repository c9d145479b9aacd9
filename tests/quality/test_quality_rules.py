"""Every shipped rule, with one resource that passes it and one that fails it.

Each row starts from a clean base resource of the rule's type (which passes every shipped
rule, see ``test_base_resources_are_clean``) and changes what the example needs. A passing
example must make the rule *apply* (so it counts in a pass rate) and pass; a failing one
must produce a finding of the rule's default severity with messages in both languages.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from huitong.mpi.resident_id import make_resident_id
from huitong.quality import (
    InMemoryContext,
    RecordedSex,
    RuleSet,
    Severity,
    Subject,
    assess,
    default_rules,
)

NOW = 1_717_200_000_000_000  # 2024-06-01T00:00:00Z
RESIDENT_ID = "urn:oid:2.16.156.10011.1.3"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
ID_FEMALE = make_resident_id("110101", date(1985, 4, 12), 124)
DROP = object()

Resource = dict[str, Any]


def context() -> InMemoryContext:
    return InMemoryContext(
        now=NOW,
        received_at=NOW,
        source_organization="Organization/h1",
        patients={
            "Patient/p1": Subject("female", "1985-04-12"),
            "Patient/m1": Subject("male", "1970-01-01"),
            "Patient/d1": Subject("male", "1950-01-01", "2020-01-01"),
        },
        sexes={"Patient/p1": [RecordedSex("Organization/h2", "female")]},
    )


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


BASES: dict[str, Resource] = {
    "Patient": {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": RESIDENT_ID, "value": ID_FEMALE}],
        "name": [{"family": "王", "given": ["芳"]}],
        "gender": "female",
        "birthDate": "1985-04-12",
        "telecom": [{"system": "phone", "value": "13800000000"}],
    },
    "Observation": {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [
            concept("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
        ],
        "code": concept(LOINC, "14749-6"),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-20T08:00:00+08:00",
        "issued": "2024-05-20T10:00:00.000+08:00",
        "valueQuantity": quantity(5.4, "mmol/L"),
        "referenceRange": [{"low": quantity(3.9, "mmol/L"), "high": quantity(6.1, "mmol/L")}],
    },
    "Condition": {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
        ),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "code": concept(ICD10, "E11.9"),
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2020-03-01",
        "abatementDateTime": "2021-01-01",
        "recordedDate": "2020-03-02",
    },
    "Procedure": {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "code": concept(SNOMED, "80146002"),
        "subject": {"reference": "Patient/p1"},
        "performedPeriod": {
            "start": "2024-05-01T09:00:00+08:00",
            "end": "2024-05-01T10:00:00+08:00",
        },
    },
    "AllergyIntolerance": {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"
        ),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed"
        ),
        "code": concept(SNOMED, "91936005"),
        "patient": {"reference": "Patient/p1"},
        "onsetDateTime": "2000-01-01",
        "reaction": [{"manifestation": [concept(SNOMED, "271807003")]}],
    },
    "DiagnosticReport": {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": concept(LOINC, "24323-8"),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-20T08:00:00+08:00",
        "issued": "2024-05-20T10:00:00+08:00",
        "result": [{"reference": "Observation/o1"}],
    },
    "Encounter": {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [concept(SNOMED, "185349003")],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-05-20T08:00:00+08:00", "end": "2024-05-20T09:00:00+08:00"},
        "serviceProvider": {"reference": "Organization/h1"},
    },
    "MedicationRequest": {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept("http://www.whocc.no/atc", "A10BA02"),
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2024-05-20",
        "requester": {"reference": "Practitioner/dr1"},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": quantity(500, "mg")}]}],
    },
    "Immunization": {
        "resourceType": "Immunization",
        "id": "i1",
        "status": "completed",
        "vaccineCode": concept("http://hl7.org/fhir/sid/cvx", "140"),
        "patient": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2024-05-20T09:00:00+08:00",
        "lotNumber": "A123",
    },
}


def with_(rtype: str, **changes: Any) -> Callable[[], Resource]:
    """A variant of the base: keyword values replace top-level elements, DROP removes."""

    def build() -> Resource:
        resource = copy.deepcopy(BASES[rtype])
        for key, value in changes.items():
            if value is DROP:
                resource.pop(key, None)
            else:
                resource[key] = value
        return resource

    return build


def vital(code: str, value: float, unit: str, **changes: Any) -> Callable[[], Resource]:
    return with_(
        "Observation",
        category=[
            concept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
        ],
        code=concept(LOINC, code),
        valueQuantity=quantity(value, unit),
        referenceRange=DROP,
        **changes,
    )


def blood_pressure(systolic: float, diastolic: float, **changes: Any) -> Callable[[], Resource]:
    fields: dict[str, Any] = {
        "code": concept(LOINC, "85354-9"),
        "category": [
            concept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
        ],
        "valueQuantity": DROP,
        "referenceRange": DROP,
        "component": [
            {"code": concept(LOINC, "8480-6"), "valueQuantity": quantity(systolic, "mm[Hg]")},
            {"code": concept(LOINC, "8462-4"), "valueQuantity": quantity(diastolic, "mm[Hg]")},
        ],
    }
    return with_("Observation", **{**fields, **changes})


PAT, OBS, CON, PRO = "Patient", "Observation", "Condition", "Procedure"
ALG, REP, ENC, MED, IMM = (
    "AllergyIntolerance",
    "DiagnosticReport",
    "Encounter",
    "MedicationRequest",
    "Immunization",
)
BASE = None  # the passing example is the base resource itself
WRONG_ID = ID_FEMALE[:-1] + ("0" if ID_FEMALE[-1] != "0" else "1")
BAD_CODING = {"text": "free text only"}
MALE = {"reference": "Patient/m1"}
DEAD = {"reference": "Patient/d1"}

# (rule id, type, passing example or BASE, failing example)
EXAMPLES: list[tuple[str, str, Callable[[], Resource] | None, Callable[[], Resource]]] = [
    # --- Patient
    ("patient.identifier-present", PAT, BASE, with_(PAT, identifier=DROP)),
    ("patient.name-present", PAT, BASE, with_(PAT, name=DROP)),
    ("patient.gender-present", PAT, BASE, with_(PAT, gender=DROP)),
    ("patient.birth-date-present", PAT, BASE, with_(PAT, birthDate=DROP)),
    ("patient.contact-details-present", PAT, BASE, with_(PAT, telecom=DROP)),
    ("patient.identifier-system", PAT, BASE, with_(PAT, identifier=[{"value": "123"}])),
    ("patient.name-has-family-or-text", PAT, BASE, with_(PAT, name=[{"given": ["芳"]}])),
    ("patient.resident-id-valid", PAT, BASE,
     with_(PAT, identifier=[{"system": RESIDENT_ID, "value": WRONG_ID}])),
    ("patient.resident-id-birth-date", PAT, BASE, with_(PAT, birthDate="1985-04-13")),
    ("patient.resident-id-sex", PAT, BASE, with_(PAT, gender="male")),
    ("patient.birth-date-not-in-future", PAT, BASE, with_(PAT, birthDate="2025-01-01")),
    ("patient.deceased-not-in-future", PAT, with_(PAT, deceasedDateTime="2024-01-01"),
     with_(PAT, deceasedDateTime="2025-01-01")),
    ("patient.age-plausible", PAT, BASE, with_(PAT, birthDate="1890-01-01")),
    ("patient.deceased-after-birth", PAT, with_(PAT, deceasedDateTime="2024-01-01"),
     with_(PAT, deceasedDateTime="1980-01-01")),
    ("patient.sex-agrees-across-institutions", PAT, BASE, with_(PAT, gender="male")),
    # --- Observation
    ("observation.status-present", OBS, BASE, with_(OBS, status=DROP)),
    ("observation.code-coded", OBS, BASE, with_(OBS, code=BAD_CODING)),
    ("observation.subject-present", OBS, BASE, with_(OBS, subject=DROP)),
    ("observation.effective-present", OBS, BASE, with_(OBS, effectiveDateTime=DROP)),
    ("observation.category-present", OBS, BASE, with_(OBS, category=DROP)),
    ("observation.value-or-absent-reason", OBS, BASE, with_(OBS, valueQuantity=DROP)),
    ("observation.value-and-absent-reason", OBS, BASE,
     with_(OBS, dataAbsentReason=concept("http://terminology.hl7.org/CodeSystem/"
                                       "data-absent-reason", "error"))),
    ("observation.quantity-has-value", OBS, BASE,
     with_(OBS, valueQuantity={"unit": "mmol/L", "system": UCUM, "code": "mmol/L"})),
    ("observation.quantity-has-unit", OBS, BASE, with_(OBS, valueQuantity={"value": 5.4})),
    ("observation.quantity-unit-ucum", OBS, BASE,
     with_(OBS, valueQuantity={"value": 5.4, "system": UCUM, "code": "mmol per litre"})),
    ("observation.component-code-coded", OBS, blood_pressure(120, 80),
     blood_pressure(120, 80, component=[{"code": BAD_CODING,
                                         "valueQuantity": quantity(120, "mm[Hg]")}])),
    ("observation.laboratory-has-loinc", OBS, BASE,
     with_(OBS, code=concept("urn:huitong:local-lab", "GLU"))),
    ("observation.lab-unit-fits-test", OBS, BASE, with_(OBS, valueQuantity=quantity(97, "mg/dL"))),
    ("observation.reference-range-ordered", OBS, BASE,
     with_(OBS, referenceRange=[{"low": quantity(6.1, "mmol/L"),
                               "high": quantity(3.9, "mmol/L")}])),
    ("observation.systolic-in-range", OBS, blood_pressure(120, 80), blood_pressure(1200, 80)),
    ("observation.diastolic-in-range", OBS, blood_pressure(120, 80), blood_pressure(120, 8)),
    ("observation.heart-rate-in-range", OBS, vital("8867-4", 72, "/min"),
     vital("8867-4", 400, "/min")),
    ("observation.respiratory-rate-in-range", OBS, vital("9279-1", 16, "/min"),
     vital("9279-1", 120, "/min")),
    ("observation.oxygen-saturation-in-range", OBS, vital("59408-5", 98, "%"),
     vital("59408-5", 30, "%")),
    # 98.6 °F is 37 °C: units convert before the bound applies.
    ("observation.body-temperature-in-range", OBS, vital("8310-5", 98.6, "[degF]"),
     vital("8310-5", 98.6, "Cel")),
    ("observation.body-weight-in-range", OBS, vital("29463-7", 154, "[lb_av]"),
     vital("29463-7", 700, "kg")),
    ("observation.body-height-in-range", OBS, vital("8302-2", 170, "cm"),
     vital("8302-2", 1.7, "cm")),
    ("observation.bmi-in-range", OBS, vital("39156-5", 22, "kg/m2"), vital("39156-5", 220, "kg/m2")),
    ("observation.head-circumference-in-range", OBS, vital("9843-4", 35, "cm"),
     vital("9843-4", 90, "cm")),
    # Glucose bounds are in mmol/L; mg/dL converts through the molar mass.
    ("observation.glucose-in-range", OBS,
     with_(OBS, code=concept(LOINC, "2345-7"), valueQuantity=quantity(97, "mg/dL"),
           referenceRange=DROP),
     with_(OBS, valueQuantity=quantity(540, "mmol/L"), referenceRange=DROP)),
    ("observation.blood-pressure-order", OBS, blood_pressure(120, 80), blood_pressure(80, 120)),
    ("observation.effective-not-in-future", OBS, BASE,
     with_(OBS, effectiveDateTime="2025-01-01T00:00:00Z")),
    ("observation.issued-not-before-effective", OBS, BASE,
     with_(OBS, issued="2024-05-19T00:00:00Z")),
    ("observation.effective-not-before-birth", OBS, BASE,
     with_(OBS, effectiveDateTime="1980-01-01T00:00:00Z")),
    ("observation.effective-not-after-death", OBS,
     with_(OBS, subject=DEAD, effectiveDateTime="2019-12-01T00:00:00Z"),
     with_(OBS, subject=DEAD)),
    ("observation.arrived-in-time", OBS, BASE, with_(OBS, effectiveDateTime="2024-01-01T00:00:00Z")),
    ("observation.pregnancy-code-male", OBS,
     with_(OBS, code=concept(LOINC, "82810-3"), valueQuantity=DROP, referenceRange=DROP,
           valueCodeableConcept=concept(SNOMED, "77386006")),
     with_(OBS, code=concept(LOINC, "82810-3"), valueQuantity=DROP, referenceRange=DROP,
           valueCodeableConcept=concept(SNOMED, "77386006"), subject=MALE)),
    ("observation.prostate-code-female", OBS,
     with_(OBS, code=concept(LOINC, "2857-1"), valueQuantity=quantity(1.2, "ng/mL"),
           referenceRange=DROP, subject=MALE),
     with_(OBS, code=concept(LOINC, "2857-1"), valueQuantity=quantity(1.2, "ng/mL"),
           referenceRange=DROP)),
    # --- Condition
    ("condition.code-present", CON, BASE, with_(CON, code=DROP)),
    ("condition.code-coded", CON, BASE, with_(CON, code=BAD_CODING)),
    ("condition.subject-present", CON, BASE, with_(CON, subject=DROP)),
    ("condition.recorded-date-present", CON, BASE, with_(CON, recordedDate=DROP)),
    ("condition.clinical-status-present", CON, BASE, with_(CON, clinicalStatus=DROP)),
    ("condition.abatement-not-before-onset", CON, BASE, with_(CON, abatementDateTime="2019-01-01")),
    ("condition.recorded-not-before-onset", CON, BASE, with_(CON, recordedDate="2019-01-01")),
    ("condition.onset-not-before-birth", CON, BASE, with_(CON, onsetDateTime="1980-01-01")),
    ("condition.onset-not-in-future", CON, BASE,
     with_(CON, onsetDateTime="2025-01-01", abatementDateTime=DROP)),
    ("condition.pregnancy-code-male", CON, with_(CON, code=concept(ICD10, "O24.4")),
     with_(CON, code=concept(ICD10, "O24.4"), subject=MALE)),
    ("condition.prostate-code-female", CON, with_(CON, code=concept(ICD10, "C61"), subject=MALE),
     with_(CON, code=concept(ICD10, "C61"))),
    # --- Procedure
    ("procedure.status-present", PRO, BASE, with_(PRO, status=DROP)),
    ("procedure.code-coded", PRO, BASE, with_(PRO, code=BAD_CODING)),
    ("procedure.subject-present", PRO, BASE, with_(PRO, subject=DROP)),
    ("procedure.performed-present", PRO, BASE, with_(PRO, performedPeriod=DROP)),
    ("procedure.end-not-before-start", PRO, BASE,
     with_(PRO, performedPeriod={"start": "2024-05-01T09:00:00+08:00",
                                "end": "2024-04-30T09:00:00+08:00"})),
    ("procedure.performed-not-before-birth", PRO, BASE,
     with_(PRO, performedPeriod=DROP, performedDateTime="1980-01-01")),
    ("procedure.performed-not-in-future", PRO, BASE,
     with_(PRO, performedPeriod=DROP, performedDateTime="2025-01-01")),
    ("procedure.pregnancy-code-male", PRO, with_(PRO, code=concept(SNOMED, "11466000")),
     with_(PRO, code=concept(SNOMED, "11466000"), subject=MALE)),
    ("procedure.prostate-code-female", PRO,
     with_(PRO, code=concept(SNOMED, "90470006"), subject=MALE),
     with_(PRO, code=concept(SNOMED, "90470006"))),
    # --- AllergyIntolerance
    ("allergyintolerance.patient-present", ALG, BASE, with_(ALG, patient=DROP)),
    ("allergyintolerance.code-present", ALG, BASE, with_(ALG, code=DROP)),
    ("allergyintolerance.code-coded", ALG, BASE, with_(ALG, code=BAD_CODING)),
    ("allergyintolerance.clinical-status-present", ALG, BASE, with_(ALG, clinicalStatus=DROP)),
    ("allergyintolerance.verification-status-present", ALG, BASE,
     with_(ALG, verificationStatus=DROP)),
    ("allergyintolerance.manifestation-coded", ALG, BASE,
     with_(ALG, reaction=[{"manifestation": [BAD_CODING]}])),
    ("allergyintolerance.onset-not-before-birth", ALG, BASE, with_(ALG, onsetDateTime="1980-01-01")),
    # --- DiagnosticReport
    ("diagnosticreport.status-present", REP, BASE, with_(REP, status=DROP)),
    ("diagnosticreport.code-coded", REP, BASE, with_(REP, code=BAD_CODING)),
    ("diagnosticreport.subject-present", REP, BASE, with_(REP, subject=DROP)),
    ("diagnosticreport.effective-present", REP, BASE, with_(REP, effectiveDateTime=DROP)),
    ("diagnosticreport.issued-present", REP, BASE, with_(REP, issued=DROP)),
    ("diagnosticreport.final-has-content", REP, BASE, with_(REP, result=DROP)),
    ("diagnosticreport.issued-not-before-effective", REP, BASE,
     with_(REP, issued="2024-05-19T00:00:00Z")),
    ("diagnosticreport.effective-not-before-birth", REP, BASE,
     with_(REP, effectiveDateTime="1980-01-01T00:00:00Z")),
    ("diagnosticreport.arrived-in-time", REP, BASE,
     with_(REP, effectiveDateTime="2024-01-01T00:00:00Z")),
    # --- Encounter
    ("encounter.status-present", ENC, BASE, with_(ENC, status=DROP)),
    ("encounter.class-present", ENC, BASE, with_(ENC, **{"class": DROP})),
    ("encounter.subject-present", ENC, BASE, with_(ENC, subject=DROP)),
    ("encounter.start-present", ENC, BASE, with_(ENC, period={"end": "2024-05-20T09:00:00+08:00"})),
    ("encounter.end-present", ENC, BASE, with_(ENC, period={"start": "2024-05-20T08:00:00+08:00"})),
    ("encounter.service-provider-present", ENC, BASE, with_(ENC, serviceProvider=DROP)),
    ("encounter.type-coded", ENC, BASE, with_(ENC, type=[BAD_CODING])),
    ("encounter.end-not-before-start", ENC, BASE,
     with_(ENC, period={"start": "2024-05-20T08:00:00+08:00", "end": "2024-05-19T08:00:00+08:00"})),
    ("encounter.length-plausible", ENC, BASE,
     with_(ENC, period={"start": "2022-01-01", "end": "2024-05-20"})),
    ("encounter.start-not-before-birth", ENC, BASE,
     with_(ENC, period={"start": "1980-01-01", "end": "1980-01-02"})),
    ("encounter.start-not-after-death", ENC,
     with_(ENC, subject=DEAD, period={"start": "2019-12-01", "end": "2019-12-02"}),
     with_(ENC, subject=DEAD)),
    ("encounter.start-not-in-future", ENC, BASE,
     with_(ENC, period={"start": "2025-01-01", "end": "2025-01-02"})),
    ("encounter.arrived-in-time", ENC, BASE,
     with_(ENC, period={"start": "2024-01-01", "end": "2024-01-02"})),
    # --- MedicationRequest
    ("medicationrequest.status-present", MED, BASE, with_(MED, status=DROP)),
    ("medicationrequest.intent-present", MED, BASE, with_(MED, intent=DROP)),
    ("medicationrequest.medication-coded", MED,
     with_(MED, medicationCodeableConcept=DROP,
           medicationReference={"reference": "Medication/x"}),
     with_(MED, medicationCodeableConcept=BAD_CODING)),
    ("medicationrequest.subject-present", MED, BASE, with_(MED, subject=DROP)),
    ("medicationrequest.authored-on-present", MED, BASE, with_(MED, authoredOn=DROP)),
    ("medicationrequest.requester-present", MED, BASE, with_(MED, requester=DROP)),
    ("medicationrequest.dosage-present", MED, BASE, with_(MED, dosageInstruction=DROP)),
    ("medicationrequest.dose-positive", MED, BASE,
     with_(MED, dosageInstruction=[{"doseAndRate": [{"doseQuantity": quantity(0, "mg")}]}])),
    ("medicationrequest.authored-on-not-before-birth", MED, BASE,
     with_(MED, authoredOn="1980-01-01")),
    ("medicationrequest.authored-on-not-in-future", MED, BASE, with_(MED, authoredOn="2025-01-01")),
    # --- Immunization
    ("immunization.status-present", IMM, BASE, with_(IMM, status=DROP)),
    ("immunization.vaccine-code-coded", IMM, BASE, with_(IMM, vaccineCode=BAD_CODING)),
    ("immunization.patient-present", IMM, BASE, with_(IMM, patient=DROP)),
    ("immunization.occurrence-present", IMM, BASE, with_(IMM, occurrenceDateTime=DROP)),
    ("immunization.lot-number-present", IMM, BASE, with_(IMM, lotNumber=DROP)),
    ("immunization.status-reason-present", IMM,
     with_(IMM, status="not-done", statusReason=concept(
         "http://terminology.hl7.org/CodeSystem/v3-ActReason", "PATOBJ")),
     with_(IMM, status="not-done")),
    ("immunization.occurrence-not-before-birth", IMM, BASE,
     with_(IMM, occurrenceDateTime="1980-01-01")),
    ("immunization.occurrence-not-in-future", IMM, BASE,
     with_(IMM, occurrenceDateTime="2025-01-01")),
    ("immunization.arrived-in-time", IMM, BASE,
     with_(IMM, occurrenceDateTime="2024-01-01T00:00:00Z")),
]  # fmt: skip

RULES = RuleSet.default()
_IDS = [row[0] for row in EXAMPLES]


def test_the_table_covers_every_shipped_rule_once() -> None:
    shipped = [r.id for r in default_rules()]
    assert len(shipped) >= 60
    assert len(set(shipped)) == len(shipped)
    assert sorted(_IDS) == sorted(shipped)


@pytest.mark.parametrize("rtype", sorted(BASES))
def test_base_resources_are_clean(rtype: str) -> None:
    assessment = assess(BASES[rtype], context(), RULES)
    assert assessment.findings == ()
    assert assessment.applicable  # the base is actually checked


@pytest.mark.parametrize(("rule_id", "rtype", "passing", "failing"), EXAMPLES, ids=_IDS)
def test_rule_passes_and_fails(
    rule_id: str,
    rtype: str,
    passing: Callable[[], Resource] | None,
    failing: Callable[[], Resource],
) -> None:
    rule = RULES.rule(rule_id)
    assert rule.resource_types == (rtype,)

    good = copy.deepcopy(BASES[rtype]) if passing is None else passing()
    ok = assess(good, context(), RULES)
    assert rule_id in ok.applicable, "the passing example must make the rule apply"
    assert rule_id not in {f.rule_id for f in ok.findings}

    bad = assess(failing(), context(), RULES)
    found = [f for f in bad.findings if f.rule_id == rule_id]
    assert len(found) == 1
    finding = found[0]
    assert rule_id in bad.applicable
    assert finding.severity is rule.severity
    assert finding.category is rule.category
    assert finding.resource_ref == f"{rtype}/{good['id']}"
    assert finding.message_en and finding.message_zh
    assert re.search(r"[\u4e00-\u9fff]", finding.message_zh)
    # Every placeholder was filled by a parameter or a reported value.
    assert "{" not in finding.message_en + finding.message_zh
    if finding.expression is not None:
        assert finding.expression.startswith(rtype)


def test_rule_messages_never_repeat_a_resident_id() -> None:
    bad = with_(PAT, identifier=[{"system": RESIDENT_ID, "value": WRONG_ID}])()
    findings = assess(bad, context(), RULES).findings
    assert findings
    for f in findings:
        assert WRONG_ID not in f.message_en + f.message_zh


@pytest.mark.parametrize(
    ("system", "code", "applies"),
    [
        (ICD10, "O80", True),  # chapter XV
        ("http://hl7.org/fhir/sid/icd-10-cm", "Z3A.20", True),  # weeks of gestation (CM)
        (ICD10, "Z34.0", True),
        (ICD10, "z340", True),  # case and the dot do not matter
        (SNOMED, "72892002", True),  # normal pregnancy
        (ICD10, "E11.9", False),
        ("urn:huitong:local", "O80", False),  # a local system is not ICD-10
    ],
)
def test_pregnancy_codes_by_system(system: str, code: str, applies: bool) -> None:
    condition = with_(CON, code=concept(system, code), subject=MALE)()
    assessment = assess(condition, context(), RULES)
    assert ("condition.pregnancy-code-male" in assessment.applicable) is applies
    failed = {f.rule_id for f in assessment.findings}
    assert ("condition.pregnancy-code-male" in failed) is applies


def test_sex_rules_need_a_known_sex() -> None:
    unknown = InMemoryContext(now=NOW, patients={"Patient/p1": Subject("unknown", "1985-04-12")})
    condition = with_(CON, code=concept(ICD10, "C61"))()
    assessment = assess(condition, unknown, RULES)
    assert "condition.prostate-code-female" not in assessment.applicable


def test_old_fifteen_digit_ids_are_not_checked() -> None:
    patient = with_(
        PAT,
        identifier=[
            {"system": RESIDENT_ID, "value": ID_FEMALE},
            {"system": RESIDENT_ID, "value": "110101850412124", "use": "old"},
        ],
    )()
    assert assess(patient, context(), RULES).findings == ()


@pytest.mark.parametrize("severity", list(Severity))
def test_findings_keep_configured_severity(severity: Severity) -> None:
    rules = RuleSet.from_config({"rules": {"patient.gender-present": {"severity": severity.value}}})
    findings = assess(with_(PAT, gender=DROP)(), context(), rules).findings
    assert [f.severity for f in findings if f.rule_id == "patient.gender-present"] == [severity]


def test_units_are_judged_as_the_sender_wrote_them() -> None:
    """Terminology normalisation converts glucose mg/dL to mmol/L under a mass-concentration
    code and keeps the original; the unit rule judges the original, the bound the value."""
    from huitong.quality.library.observation import ORIGINAL_QUANTITY_URL as KEPT
    from huitong.terminology.units import ORIGINAL_QUANTITY_URL, normalise_quantity

    assert KEPT == ORIGINAL_QUANTITY_URL
    sent = quantity(97, "mg/dL")
    normalised = normalise_quantity(sent, loinc_code="2345-7")
    assert normalised is not None and normalised["code"] == "mmol/L"
    obs = with_(OBS, code=concept(LOINC, "2345-7"), valueQuantity=normalised,
                referenceRange=DROP)()  # fmt: skip
    assessment = assess(obs, context(), RULES)
    assert {"observation.lab-unit-fits-test", "observation.glucose-in-range"} <= set(
        assessment.applicable
    )
    assert assessment.findings == ()
    # A sender who wrote mmol/L under the mass-concentration code is still told.
    wrong = with_(OBS, code=concept(LOINC, "2345-7"), valueQuantity=quantity(5.4, "mmol/L"),
                  referenceRange=DROP)()  # fmt: skip
    assert [f.rule_id for f in assess(wrong, context(), RULES).findings] == [
        "observation.lab-unit-fits-test"
    ]
