"""Rules for Encounter, MedicationRequest and Immunization.

Structure per https://hl7.org/fhir/R4/encounter.html, https://hl7.org/fhir/R4/medicationrequest.html
and https://hl7.org/fhir/R4/immunization.html.
"""

from __future__ import annotations

from huitong.quality.library._patterns import (
    REJECT,
    WARN,
    arrived_in_time,
    coded,
    dates_ordered,
    not_after_death,
    not_before_birth,
    not_in_future,
    present,
    rule,
)
from huitong.quality.model import Category, ExpressionCheck, PredicateCheck, Rule

__all__ = ["CARE_RULES"]

_UNDER_WAY = "status = 'in-progress' or status = 'finished' or status = 'onleave'"

ENCOUNTER_RULES: tuple[Rule, ...] = (
    present("Encounter", "status", "状态", REJECT, category=Category.CONFORMANCE),
    present("Encounter", "class", "就诊类别", REJECT, category=Category.CONFORMANCE),
    present("Encounter", "subject", "患者", REJECT),
    present("Encounter", "period.start", "开始时间", WARN, when=_UNDER_WAY),
    present("Encounter", "period.end", "结束时间", WARN,
            when="status = 'finished'"),
    present("Encounter", "serviceProvider", "服务机构", WARN),
    coded("Encounter", "type", "就诊类型", WARN),
    dates_ordered(
        "encounter.end-not-before-start", "Encounter", "period.start", "period.end",
        "开始时间", "结束时间", REJECT,
    ),
    rule(
        "encounter.length-plausible",
        Category.PLAUSIBILITY,
        WARN,
        "Encounter",
        "The encounter lasts {days} days, more than {max_days}.",
        "就诊持续 {days} 天，超过 {max_days} 天。",
        PredicateCheck("duration-at-most"),
        {"element": "period", "max_days": 365},
    ),
    not_before_birth("Encounter", "period.start", "开始时间"),
    not_after_death("Encounter", "period.start", "开始时间"),
    not_in_future("Encounter", "period.start", "开始时间", when=_UNDER_WAY),
    arrived_in_time("Encounter", "period", 30),
)  # fmt: skip

MEDICATION_REQUEST_RULES: tuple[Rule, ...] = (
    present("MedicationRequest", "status", "状态", REJECT, category=Category.CONFORMANCE),
    present("MedicationRequest", "intent", "意图", REJECT, category=Category.CONFORMANCE),
    rule(
        "medicationrequest.medication-coded",
        Category.CONFORMANCE,
        REJECT,
        "MedicationRequest",
        "MedicationRequest.medication is neither coded with a code system nor a reference.",
        "MedicationRequest.medication（药品）既无带编码系统的编码，也未引用药品资源。",
        ExpressionCheck(
            "medication.ofType(CodeableConcept).coding"
            ".where(system.exists() and code.exists()).exists()"
            " or medication.ofType(Reference).reference.exists()",
            expression="MedicationRequest.medication",
        ),
    ),
    present("MedicationRequest", "subject", "患者", REJECT),
    present("MedicationRequest", "authoredOn", "开具时间", WARN),
    present("MedicationRequest", "requester", "开具者", WARN),
    present("MedicationRequest", "dosageInstruction", "用法用量", WARN, name="dosage",
            when="status = 'active' or status = 'completed'"),
    rule(
        "medicationrequest.dose-positive",
        Category.PLAUSIBILITY,
        WARN,
        "MedicationRequest",
        "A dose of {value} is not a positive amount.",
        "剂量 {value} 不是正数。",
        PredicateCheck("dose-positive"),
    ),
    not_before_birth("MedicationRequest", "authoredOn", "开具时间"),
    not_in_future("MedicationRequest", "authoredOn", "开具时间"),
)  # fmt: skip

IMMUNIZATION_RULES: tuple[Rule, ...] = (
    present("Immunization", "status", "状态", REJECT, category=Category.CONFORMANCE),
    coded("Immunization", "vaccineCode", "疫苗", WARN, required=True),
    present("Immunization", "patient", "受种者", REJECT),
    present("Immunization", "occurrence", "接种时间", REJECT),
    present("Immunization", "lotNumber", "疫苗批号", WARN,
            when="status = 'completed'"),
    present("Immunization", "statusReason", "未接种原因", WARN,
            when="status = 'not-done'"),
    not_before_birth("Immunization", "occurrence", "接种时间"),
    not_in_future("Immunization", "occurrence", "接种时间"),
    arrived_in_time("Immunization", "occurrence", 30),
)  # fmt: skip

CARE_RULES: tuple[Rule, ...] = (
    *ENCOUNTER_RULES,
    *MEDICATION_REQUEST_RULES,
    *IMMUNIZATION_RULES,
)
