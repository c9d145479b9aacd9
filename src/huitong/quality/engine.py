"""Checking one resource against a rule set.

:func:`assess` is the whole engine: for each enabled rule of the resource's type, test the
rule's ``when``, run its check, and record whether it applied and whether it failed (the
type's rules run as one generated function, :mod:`huitong.quality.plan`). It writes nothing
and logs nothing; the write pipeline decides what a rejection means (the
write fails) and where findings go. :func:`rejection_error` turns the rejections into the
:class:`~huitong.fhir.errors.FhirError` that becomes an OperationOutcome, an HL7 v2
acknowledgement with ERR segments, or a row report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from huitong.fhir.errors import Category as ErrorCategory
from huitong.fhir.errors import FhirError, Issue
from huitong.quality.context import QualityContext
from huitong.quality.model import Assessment, Finding, Severity
from huitong.quality.plan import TypePlan
from huitong.quality.predicates import Facts
from huitong.quality.ruleset import RuleSet

__all__ = ["assess", "evaluate", "finding_issues", "plan_assessment", "rejection_error"]


def _reference(resource: Mapping[str, Any]) -> str:
    rtype = str(resource.get("resourceType", "Resource"))
    rid = resource.get("id")
    return f"{rtype}/{rid}" if isinstance(rid, str) and rid else rtype


def assess(resource: Mapping[str, Any], ctx: QualityContext, ruleset: RuleSet) -> Assessment:
    """Every rule of ``ruleset`` that applies to ``resource``, and its failures.

    A rule applies when its ``when`` is true and its check gives an answer (an expression
    that is empty, or a predicate returning None, means there was nothing to check).
    Findings carry the rule's configured severity and its message filled with the rule's
    parameters and the values the check reported.
    """
    rtype = resource.get("resourceType")
    plan = ruleset.plan(rtype) if isinstance(rtype, str) else None
    ref = _reference(resource)
    if plan is None:
        return Assessment(ref, (), ())
    mask, failures = plan.evaluate(resource, Facts(resource, ctx))
    return plan_assessment(plan, ref, mask, failures)


def plan_assessment(plan: TypePlan, ref: str, mask: int, failures: Any) -> Assessment:
    """The :class:`Assessment` of ``ref`` from one run of ``plan`` (its applicable-rule
    ``mask`` and ``failures``, as ``TypePlan.evaluate`` returns them)."""
    findings: list[Finding] = []
    for i, outcome in failures or ():
        rule = plan.rules[i].rule
        en, zh = plan.messages(i, outcome)
        findings.append(
            Finding(rule.id, rule.category, rule.severity, outcome.expression, en, zh, ref)
        )
    return Assessment(ref, plan.applicable(mask), tuple(findings))


def evaluate(resource: Mapping[str, Any], ctx: QualityContext, ruleset: RuleSet) -> list[Finding]:
    """The findings (failures) of :func:`assess`."""
    return list(assess(resource, ctx, ruleset).findings)


def finding_issues(findings: Iterable[Finding]) -> list[Issue]:
    """OperationOutcome issues for findings (https://hl7.org/fhir/R4/operationoutcome.html):
    severity ``error`` for a rejection, ``warning`` otherwise; code ``business-rule``; the
    diagnostics carry the rule id and both languages."""
    return [
        Issue(
            f"[{f.rule_id}] {f.message_en} / {f.message_zh}",
            f.expression,
            severity="error" if f.severity is Severity.REJECT else "warning",
            code="business-rule",
        )
        for f in findings
    ]


def rejection_error(assessment: Assessment) -> FhirError | None:
    """The failure to raise when ``assessment`` rejects the resource, else None.

    The category is ``unprocessable`` (HTTP 422): the content is well formed but breaks a
    rule, so resending it unchanged cannot help; its HL7 v2 acknowledgement code comes from
    :data:`~huitong.fhir.errors.CATEGORY_INFO` like every other failure's. Warnings ride
    along as ``warning`` issues so the sender sees everything at once.
    """
    if not assessment.rejected:
        return None
    ordered = [*assessment.rejections, *assessment.warnings]
    return FhirError(ErrorCategory.UNPROCESSABLE, issues=finding_issues(ordered))
