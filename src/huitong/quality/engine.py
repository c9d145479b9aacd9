"""Checking one resource against a rule set.

:func:`assess` is the whole engine: for each enabled rule of the resource's type, test the
rule's ``when``, run its check, and record whether it applied and whether it failed. It
writes nothing and logs nothing; the write pipeline decides what a rejection means (the
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
from huitong.quality.model import Assessment, Finding, Severity, format_message
from huitong.quality.predicates import Facts
from huitong.quality.ruleset import CompiledRule, RuleSet, TypeRules

__all__ = ["assess", "evaluate", "finding_issues", "rejection_error"]


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
    rules = ruleset.for_type(rtype) if isinstance(rtype, str) else ruleset.for_type("")
    compiled: Iterable[CompiledRule] = rules.plain
    if rules.gated:
        wanted = _gated(resource, rules)
        if wanted:
            # Library order, so findings read the same whatever the codes were.
            compiled = [c for c in rules.every if c.gate is None or c.rule.id in wanted]
    ref = _reference(resource)
    facts = Facts(resource, ctx)
    applicable: list[str] = []
    findings: list[Finding] = []
    for item in compiled:
        if item.when is not None and item.when(resource) is not True:
            continue
        outcome = item.run(resource, facts)
        if outcome is None:
            continue
        rule = item.rule
        applicable.append(rule.id)
        if outcome.passed:
            continue
        values = outcome.values
        findings.append(
            Finding(
                rule.id,
                rule.category,
                rule.severity,
                outcome.expression,
                format_message(item.message_en, values) if values else item.message_en,
                format_message(item.message_zh, values) if values else item.message_zh,
                ref,
            )
        )
    return Assessment(ref, tuple(applicable), tuple(findings))


def _gated(resource: Mapping[str, Any], rules: TypeRules) -> set[str]:
    """Ids of the code-gated rules whose codes appear in ``code`` or a ``component.code``."""
    gated = rules.gated
    found: set[str] = set()
    concepts = [resource.get("code")]
    components = resource.get("component")
    if type(components) is list:
        concepts.extend(c.get("code") for c in components if type(c) is dict)
    for concept in concepts:
        codings = concept.get("coding") if type(concept) is dict else None
        if type(codings) is not list:
            continue
        for coding in codings:
            if type(coding) is dict:
                key: tuple[Any, Any] = (coding.get("system"), coding.get("code"))
                items = gated.get(key)
                if items:
                    found.update(item.rule.id for item in items)
    return found


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
