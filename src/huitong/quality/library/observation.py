"""Rules for Observation: structure, values and units, physiological bounds, dates, sex.

Structure follows https://hl7.org/fhir/R4/observation.html (invariant obs-6: no
``dataAbsentReason`` beside a value); the vital-sign codes and units follow the vital-signs
profile (https://hl7.org/fhir/R4/observation-vitalsigns.html).
"""

from __future__ import annotations

from huitong.quality.codes import (
    ICD10_SYSTEMS,
    PREGNANCY_ICD10_PREFIXES,
    PREGNANCY_LOINC,
    PREGNANCY_SNOMED,
    PROSTATE_ICD10_PREFIXES,
    PROSTATE_LOINC,
    PROSTATE_SNOMED,
    VITAL_SIGNS,
    VitalSign,
)
from huitong.quality.library._patterns import (
    HAPPENED,
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
from huitong.quality.model import Category, ExpressionCheck, ParamValue, PredicateCheck, Rule

__all__ = ["OBSERVATION_RULES", "ORIGINAL_QUANTITY_URL", "pregnancy_rule", "prostate_rule"]


def _vital(sign: VitalSign) -> Rule:
    params: dict[str, ParamValue] = {
        "codes": sign.codes,
        "unit": sign.unit,
        "low": sign.low,
        "high": sign.high,
    }
    if sign.molar_mass:
        params["molar_mass"] = sign.molar_mass
    return rule(
        f"observation.{sign.key}-in-range",
        Category.PLAUSIBILITY,
        WARN,
        "Observation",
        f"{sign.en} {{value}} {{value_unit}} is outside the physiological range "
        "{low}–{high} {unit}.",
        f"{sign.zh} {{value}} {{value_unit}} 超出生理可能范围 {{low}}–{{high}} {{unit}}。",
        PredicateCheck("quantity-in-range"),
        params,
    )


def pregnancy_rule(rtype: str) -> Rule:
    """A male patient with a pregnancy code."""
    return rule(
        f"{rtype.lower()}.pregnancy-code-male",
        Category.CONSISTENCY,
        WARN,
        rtype,
        f"{rtype}.code {{code}} is a pregnancy concept, but the patient is male.",
        f"{rtype}.code {{code}} 为妊娠相关编码，但患者为男性。",
        PredicateCheck("sex-specific-code"),
        {
            "excluded_gender": "male",
            "icd10_systems": ICD10_SYSTEMS,
            "icd10_prefixes": PREGNANCY_ICD10_PREFIXES,
            "snomed": PREGNANCY_SNOMED,
            "loinc": PREGNANCY_LOINC,
        },
    )


def prostate_rule(rtype: str) -> Rule:
    """A female patient with a prostate code."""
    return rule(
        f"{rtype.lower()}.prostate-code-female",
        Category.CONSISTENCY,
        WARN,
        rtype,
        f"{rtype}.code {{code}} is a prostate concept, but the patient is female.",
        f"{rtype}.code {{code}} 为前列腺相关编码，但患者为女性。",
        PredicateCheck("sex-specific-code"),
        {
            "excluded_gender": "female",
            "icd10_systems": ICD10_SYSTEMS,
            "icd10_prefixes": PROSTATE_ICD10_PREFIXES,
            "snomed": PROSTATE_SNOMED,
            "loinc": PROSTATE_LOINC,
        },
    )


_QUANTITY = "value.ofType(Quantity)"
# Where terminology normalisation keeps the sender's quantity beside the converted one
# (huitong.terminology.units.ORIGINAL_QUANTITY_URL; a test keeps the two equal without
# importing the terminology service on the write path).
ORIGINAL_QUANTITY_URL = "http://huitong.example/fhir/StructureDefinition/original-quantity"

OBSERVATION_RULES: tuple[Rule, ...] = (
    present("Observation", "status", "状态", REJECT, category=Category.CONFORMANCE),
    coded("Observation", "code", "检验/检查项目", WARN, required=True),
    present("Observation", "subject", "患者", REJECT),
    present("Observation", "effective", "观察时间", WARN),
    present("Observation", "category", "类别", WARN),
    rule(
        "observation.value-or-absent-reason",
        Category.COMPLETENESS,
        WARN,
        "Observation",
        "A final Observation has no value, no dataAbsentReason, no components and no members.",
        "已完成的 Observation 既无结果值、缺失原因，也无分量或成员。",
        ExpressionCheck(
            "value.exists() or dataAbsentReason.exists() or component.exists()"
            " or hasMember.exists()",
            when=HAPPENED,
            expression="Observation.value",
        ),
    ),
    rule(
        "observation.value-and-absent-reason",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "Observation has both a value and a dataAbsentReason (FHIR invariant obs-6).",
        "Observation 同时有结果值和缺失原因（违反 FHIR 约束 obs-6）。",
        ExpressionCheck(
            "value.empty() or dataAbsentReason.empty()",
            expression="Observation.dataAbsentReason",
        ),
    ),
    rule(
        "observation.quantity-has-value",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "Observation.valueQuantity has no numeric value.",
        "Observation.valueQuantity（数值结果）缺少数值。",
        ExpressionCheck(
            f"{_QUANTITY}.value.exists()",
            when=f"{_QUANTITY}.exists()",
            expression=f"Observation.{_QUANTITY}.value",
        ),
    ),
    rule(
        "observation.quantity-has-unit",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "Observation.valueQuantity has a value but no unit.",
        "Observation.valueQuantity（数值结果）有数值但没有单位。",
        ExpressionCheck(
            f"{_QUANTITY}.code.exists() or {_QUANTITY}.unit.exists()",
            when=f"{_QUANTITY}.value.exists()",
            expression=f"Observation.{_QUANTITY}.code",
        ),
    ),
    rule(
        "observation.quantity-unit-ucum",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "The unit code {value_unit} claims UCUM but is not a valid UCUM code.",
        "单位代码 {value_unit} 声称使用 UCUM，但不是合法的 UCUM 代码。",
        PredicateCheck("quantity-unit-is-ucum"),
    ),
    rule(
        "observation.component-code-coded",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "An Observation.component.code has no coding with both a code system and a code.",
        "Observation.component.code（分量项目）缺少同时含编码系统和代码的编码。",
        ExpressionCheck(
            "component.where(code.coding.where(system.exists() and code.exists()).empty()).empty()",
            when="component.exists()",
            expression="Observation.component.code",
        ),
    ),
    rule(
        "observation.laboratory-has-loinc",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "A laboratory Observation is not coded with LOINC.",
        "检验类 Observation 未使用 LOINC 编码。",
        ExpressionCheck(
            "code.coding.where(system = 'http://loinc.org').exists()",
            when="category.coding.where(code = 'laboratory').exists()",
            expression="Observation.code",
        ),
    ),
    rule(
        "observation.lab-unit-fits-test",
        Category.CONFORMANCE,
        WARN,
        "Observation",
        "Unit {value_unit} does not measure what LOINC {code} reports ({property}).",
        "单位 {value_unit} 与 LOINC {code} 检验项目的属性（{property}）不相符。",
        PredicateCheck("lab-unit-fits-test"),
        {"original_extension": ORIGINAL_QUANTITY_URL},
    ),
    rule(
        "observation.reference-range-ordered",
        Category.PLAUSIBILITY,
        WARN,
        "Observation",
        "An Observation.referenceRange has its low bound above its high bound.",
        "Observation.referenceRange（参考范围）的下限高于上限。",
        PredicateCheck("reference-range-ordered"),
    ),
    *(_vital(sign) for sign in VITAL_SIGNS),
    rule(
        "observation.blood-pressure-order",
        Category.PLAUSIBILITY,
        WARN,
        "Observation",
        "Diastolic pressure {diastolic} mm[Hg] is not below systolic {systolic} mm[Hg].",
        "舒张压 {diastolic} mmHg 不低于收缩压 {systolic} mmHg。",
        PredicateCheck("blood-pressure-order"),
    ),
    not_in_future("Observation", "effective", "观察时间"),
    dates_ordered(
        "observation.issued-not-before-effective",
        "Observation",
        "effective",
        "issued",
        "观察时间",
        "发布时间",
    ),
    not_before_birth("Observation", "effective", "观察时间"),
    not_after_death("Observation", "effective", "观察时间"),
    arrived_in_time("Observation", "effective", 30),
    pregnancy_rule("Observation"),
    prostate_rule("Observation"),
)
