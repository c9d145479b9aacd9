"""Rules for Patient: identity elements, the resident ID number, dates of life, sex."""

from __future__ import annotations

from huitong.quality.library._patterns import REJECT, WARN, not_in_future, present, rule
from huitong.quality.model import Category, ExpressionCheck, PredicateCheck, Rule

__all__ = ["PATIENT_RULES", "RESIDENT_ID_SYSTEMS"]

# Resident ID number (居民身份证号): the OID WS/T 500 assigns to the patient's ID card number.
RESIDENT_ID_SYSTEMS: tuple[str, ...] = ("urn:oid:2.16.156.10011.1.3",)

_ID = {"systems": RESIDENT_ID_SYSTEMS}

# Shipped severities refuse only what cannot be true (a birth in the future) or cannot be
# used (a record with no patient); incomplete or miscoded data is accepted and flagged, so a
# lab result is never lost for a missing identifier or a local code. Regions tighten them.
PATIENT_RULES: tuple[Rule, ...] = (
    present("Patient", "identifier", "标识符", WARN),
    present("Patient", "name", "姓名", WARN),
    present("Patient", "gender", "性别", WARN),
    present("Patient", "birthDate", "出生日期", WARN),
    rule(
        "patient.contact-details-present",
        Category.COMPLETENESS,
        WARN,
        "Patient",
        "Patient has neither a telephone/e-mail nor an address.",
        "患者既无电话/邮箱，也无地址。",
        ExpressionCheck("telecom.exists() or address.exists()", expression="Patient.telecom"),
    ),
    rule(
        "patient.identifier-system",
        Category.CONFORMANCE,
        WARN,
        "Patient",
        "A Patient.identifier has no system, so it cannot be matched across institutions.",
        "Patient.identifier（标识符）缺少 system，无法跨机构匹配。",
        ExpressionCheck(
            "identifier.where(system.empty()).empty()",
            when="identifier.exists()",
            expression="Patient.identifier.system",
        ),
    ),
    rule(
        "patient.name-has-family-or-text",
        Category.CONFORMANCE,
        WARN,
        "Patient",
        "No Patient.name has a family name or a full-name text.",
        "Patient.name（姓名）中没有姓氏或完整姓名文本。",
        ExpressionCheck(
            "name.where(family.exists() or text.exists()).exists()",
            when="name.exists()",
            expression="Patient.name",
        ),
    ),
    rule(
        "patient.resident-id-valid",
        Category.CONFORMANCE,
        WARN,
        "Patient",
        "The resident ID number is not valid: {reason_en}",
        "居民身份证号无效：{reason_zh}",
        PredicateCheck("resident-id-valid"),
        _ID,
    ),
    rule(
        "patient.resident-id-birth-date",
        Category.CONSISTENCY,
        WARN,
        "Patient",
        "The birth date in the resident ID number differs from Patient.birthDate.",
        "居民身份证号中的出生日期与 Patient.birthDate（出生日期）不一致。",
        PredicateCheck("resident-id-birth-date"),
        _ID,
    ),
    rule(
        "patient.resident-id-sex",
        Category.CONSISTENCY,
        WARN,
        "Patient",
        "The resident ID number encodes sex {id_sex}, which differs from Patient.gender.",
        "居民身份证号表示的性别为{id_sex_zh}，与 Patient.gender（性别）不一致。",
        PredicateCheck("resident-id-sex"),
        _ID,
    ),
    not_in_future("Patient", "birthDate", "出生日期", REJECT),
    not_in_future("Patient", "deceased", "死亡时间", WARN),
    rule(
        "patient.age-plausible",
        Category.PLAUSIBILITY,
        WARN,
        "Patient",
        "Patient.birthDate makes a living patient {age} years old (more than {max_age_years}).",
        "按 Patient.birthDate（出生日期）在世患者年龄为 {age} 岁，超过 {max_age_years} 岁。",
        PredicateCheck("patient-age-plausible"),
        {"max_age_years": 120},
    ),
    rule(
        "patient.deceased-after-birth",
        Category.CONSISTENCY,
        REJECT,
        "Patient",
        "Patient.deceasedDateTime is before Patient.birthDate.",
        "Patient.deceasedDateTime（死亡时间）早于出生日期。",
        PredicateCheck("patient-deceased-after-birth"),
    ),
    rule(
        "patient.sex-agrees-across-institutions",
        Category.CONSISTENCY,
        WARN,
        "Patient",
        "Patient.gender differs from the sex {organization} recorded for the same person.",
        "Patient.gender（性别）与 {organization} 为同一人记录的性别不一致。",
        PredicateCheck("sex-agrees-across-institutions"),
    ),
)
