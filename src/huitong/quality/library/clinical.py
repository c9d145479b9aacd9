"""Rules for Condition, Procedure, AllergyIntolerance and DiagnosticReport.

Structure per https://hl7.org/fhir/R4/condition.html, https://hl7.org/fhir/R4/procedure.html,
https://hl7.org/fhir/R4/allergyintolerance.html (ait-1) and
https://hl7.org/fhir/R4/diagnosticreport.html.
"""

from __future__ import annotations

from huitong.quality.library._patterns import (
    HAPPENED,
    REJECT,
    WARN,
    arrived_in_time,
    coded,
    dates_ordered,
    not_before_birth,
    not_in_future,
    present,
    rule,
)
from huitong.quality.library.observation import pregnancy_rule, prostate_rule
from huitong.quality.model import Category, ExpressionCheck, Rule

__all__ = ["CLINICAL_RULES"]

_ENTERED_IN_ERROR = "verificationStatus.coding.where(code = 'entered-in-error').exists()"


def _clinical_status(rtype: str, zh: str, invariant: str = "") -> Rule:
    """clinicalStatus unless entered in error. AllergyIntolerance's ait-1 says exactly
    this; Condition's con-3 asks it of problem-list items only, and Huitong of every
    condition, since a shared record cannot tell an active diagnosis from a resolved one
    without it."""
    cite_en = f" (FHIR invariant {invariant})" if invariant else ""
    cite_zh = f"（FHIR 约束 {invariant}）" if invariant else ""
    return rule(
        f"{rtype.lower()}.clinical-status-present",
        Category.CONFORMANCE,
        WARN,
        rtype,
        f"{rtype}.clinicalStatus is missing although the record is not entered in error{cite_en}.",
        f"{rtype}.clinicalStatus（{zh}临床状态）缺失，且记录并非误录{cite_zh}。",
        ExpressionCheck(
            f"clinicalStatus.exists() or {_ENTERED_IN_ERROR}",
            expression=f"{rtype}.clinicalStatus",
        ),
    )


CONDITION_RULES: tuple[Rule, ...] = (
    present("Condition", "code", "诊断", REJECT),
    coded("Condition", "code", "诊断", WARN),
    present("Condition", "subject", "患者", REJECT),
    present("Condition", "recordedDate", "记录日期", WARN),
    _clinical_status("Condition", "诊断"),
    dates_ordered(
        "condition.abatement-not-before-onset", "Condition", "onset", "abatement",
        "发病时间", "缓解时间",
    ),
    dates_ordered(
        "condition.recorded-not-before-onset", "Condition", "onset", "recordedDate",
        "发病时间", "记录日期",
    ),
    # Warn only: congenital conditions are legitimately dated before birth.
    not_before_birth("Condition", "onset", "发病时间", WARN),
    not_in_future("Condition", "onset", "发病时间"),
    pregnancy_rule("Condition"),
    prostate_rule("Condition"),
)  # fmt: skip

PROCEDURE_RULES: tuple[Rule, ...] = (
    present("Procedure", "status", "状态", REJECT, category=Category.CONFORMANCE),
    coded("Procedure", "code", "操作", WARN, required=True),
    present("Procedure", "subject", "患者", REJECT),
    present("Procedure", "performed", "操作时间", WARN, when="status = 'completed'"),
    dates_ordered(
        "procedure.end-not-before-start", "Procedure", "performedPeriod.start",
        "performedPeriod.end", "开始时间", "结束时间", REJECT,
    ),
    not_before_birth("Procedure", "performed", "操作时间"),
    not_in_future("Procedure", "performed", "操作时间", when="status = 'completed'"),
    pregnancy_rule("Procedure"),
    prostate_rule("Procedure"),
)  # fmt: skip

ALLERGY_RULES: tuple[Rule, ...] = (
    present("AllergyIntolerance", "patient", "患者", REJECT),
    present("AllergyIntolerance", "code", "过敏原", WARN),
    coded("AllergyIntolerance", "code", "过敏原", WARN),
    _clinical_status("AllergyIntolerance", "过敏", "ait-1"),
    present("AllergyIntolerance", "verificationStatus", "核实状态", WARN),
    rule(
        "allergyintolerance.manifestation-coded",
        Category.CONFORMANCE,
        WARN,
        "AllergyIntolerance",
        "An AllergyIntolerance.reaction.manifestation has no coding with a code system.",
        "AllergyIntolerance.reaction.manifestation（过敏表现）缺少带编码系统的编码。",
        ExpressionCheck(
            "reaction.manifestation.coding.where(system.exists() and code.exists()).exists()",
            when="reaction.manifestation.exists()",
            expression="AllergyIntolerance.reaction.manifestation",
        ),
    ),
    not_before_birth("AllergyIntolerance", "onset", "发生时间", WARN),
)  # fmt: skip

DIAGNOSTIC_REPORT_RULES: tuple[Rule, ...] = (
    present("DiagnosticReport", "status", "状态", REJECT, category=Category.CONFORMANCE),
    coded("DiagnosticReport", "code", "报告项目", WARN, required=True),
    present("DiagnosticReport", "subject", "患者", REJECT),
    present("DiagnosticReport", "effective", "临床相关时间", WARN),
    present("DiagnosticReport", "issued", "发布时间", WARN),
    rule(
        "diagnosticreport.final-has-content",
        Category.COMPLETENESS,
        WARN,
        "DiagnosticReport",
        "A final DiagnosticReport has no results, conclusion or presented form.",
        "已完成的 DiagnosticReport 既无结果、结论，也无报告原文。",
        ExpressionCheck(
            "result.exists() or conclusion.exists() or conclusionCode.exists()"
            " or presentedForm.exists()",
            when=HAPPENED,
            expression="DiagnosticReport.result",
        ),
    ),
    dates_ordered(
        "diagnosticreport.issued-not-before-effective", "DiagnosticReport", "effective",
        "issued", "临床相关时间", "发布时间",
    ),
    not_before_birth("DiagnosticReport", "effective", "临床相关时间"),
    arrived_in_time("DiagnosticReport", "effective", 30),
)  # fmt: skip

CLINICAL_RULES: tuple[Rule, ...] = (
    *CONDITION_RULES,
    *PROCEDURE_RULES,
    *ALLERGY_RULES,
    *DIAGNOSTIC_REPORT_RULES,
)
