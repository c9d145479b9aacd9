"""The generated rule plans (huitong.quality.plan) against the rule-by-rule walk they stand
in for: for every shipped rule's examples, odd content and real Synthea resources, the
generated function and :meth:`TypePlan.run_reference` (each rule's ``when`` and check
closures, one after the other) must say the same: which rules applied and which failed,
with the same outcome. The inline source of check expressions must answer as the closures
do, and a region's custom expression cannot put code into a plan."""

from __future__ import annotations

import ast
import copy
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from test_quality_expression import RESOURCES
from test_quality_rules import EXAMPLES, context

from huitong.quality import Facts, InMemoryContext, RuleSet, Subject, assess
from huitong.quality.expression import Inline, compile_inline
from huitong.quality.plan import Namespace
from huitong_testdata import synthea_bundles

RULES = RuleSet.default()


def _same(resource: dict[str, Any], ctx: Any, rules: RuleSet = RULES) -> None:
    plan = rules.plan(resource["resourceType"])
    assert plan is not None
    generated = plan.run(resource, Facts(resource, ctx))
    reference = plan.run_reference(resource, Facts(resource, ctx))
    assert generated == reference, plan.applicable(generated[0] ^ reference[0])


def _example_resources() -> list[dict[str, Any]]:
    out = []
    for _, _, passing, failing in EXAMPLES:
        for make in (passing, failing):
            if make is not None:
                out.append(make())
    return out


def test_every_rule_example_gives_the_same_answer_both_ways() -> None:
    examples = _example_resources()
    assert len(examples) > 100
    applied: set[str] = set()
    for resource in examples:
        _same(resource, context())
        applied.update(assess(resource, context(), RULES).applicable)
    # The examples between them make every enabled shipped rule apply.
    enabled = {r.id for r in RULES.rules if r.enabled}
    assert enabled <= applied


@pytest.mark.parametrize("rtype", ["Observation", "Patient", "Encounter", "Condition"])
def test_odd_content_gives_the_same_answer_both_ways(rtype: str) -> None:
    ctx = context()
    for odd in RESOURCES:
        resource = {**odd, "resourceType": rtype}
        _same(resource, ctx)
    # Each example with one top-level element at a time turned odd.
    for resource in _example_resources():
        if resource["resourceType"] != rtype:
            continue
        for key in [k for k in resource if k != "resourceType"]:
            for odd_value in (None, [], [None], "x", {}, [{}], 0):
                changed = copy.deepcopy(resource)
                changed[key] = odd_value
                _same(changed, ctx)


def test_synthea_resources_give_the_same_answer_both_ways() -> None:
    ctx = InMemoryContext(now=1_795_000_000_000_000)
    resources = [
        e["resource"]
        for body in synthea_bundles(12)
        for e in orjson.loads(body).get("entry", [])
    ]
    for resource in resources:
        if resource.get("resourceType") == "Patient":
            ctx.patients[f"Patient/{resource['id']}"] = Subject.from_patient(resource)
    checked = 0
    for resource in resources:
        subject = resource.get("subject") or resource.get("patient")
        if isinstance(subject, dict) and str(subject.get("reference", "")).startswith("urn:"):
            # Bundle-internal references, resolved by the transaction; point them at a
            # patient the context knows so the subject's rules run too.
            resource = {**resource, "subject": {"reference": next(iter(ctx.patients))}}
        if RULES.plan(resource["resourceType"]) is not None:
            _same(resource, ctx)
            checked += 1
    assert checked > 1000


def test_a_mapping_that_is_not_a_dict_takes_the_rule_by_rule_walk() -> None:
    # The closures' fast paths read only dicts (a parsed JSON body always is one); the
    # generated source must not answer differently for anything else.
    proxied = MappingProxyType({"resourceType": "Observation", "status": "final"})
    plan = RULES.plan("Observation")
    assert plan is not None
    walked = plan.run_reference(proxied, Facts(proxied, context()))
    assert plan.evaluate(proxied, Facts(proxied, context())) == walked
    assert plan.run(proxied, Facts(proxied, context())) != walked


EXPRESSIONS = [
    "status.exists()",
    "value.exists() or dataAbsentReason.exists()",
    "value.empty() or dataAbsentReason.empty()",
    "status = 'final' or status = 'amended'",
    "status != 'final'",
    "status = 'final' and category.exists()",
    "status = 'final' xor category.exists()",
    "status = 'final' implies value.exists()",
    "(status = 'final').not()",
    "(value.exists() and status = 'final').not() or focus.exists()",
    "category.coding.where(code = 'laboratory').exists()",
    "value.ofType(Quantity).unit.exists() or value.ofType(Quantity).code.exists()",
    "value.ofType(Quantity).exists()",
    "(status = 'final' or status = 'amended') and effective.exists()",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_inline_source_answers_as_the_closures_do(expression: str) -> None:
    ns = Namespace()
    check, inline = compile_inline(expression, "Observation", {}, ns.bind)
    assert isinstance(inline, Inline)
    # The source under test, evaluated over test data only.
    true = eval(f"lambda r, n: {inline.true}", dict(ns.names))
    false = eval(f"lambda r, n: {inline.false}", dict(ns.names))
    for resource in [*RESOURCES, {"resourceType": "Observation", "status": "amended"}]:
        answer = check(resource)
        node = (resource, "Observation")
        assert bool(true(resource, node)) is (answer is True), resource
        assert bool(false(resource, node)) is (answer is False), resource
        if inline.total:
            assert answer is not None


def test_custom_expressions_cannot_put_code_into_a_plan() -> None:
    literal = 'a"); import os; ("\n# x\nraise SystemExit'
    config = {
        "custom": {
            "observation.odd-literal": {
                "category": "conformance", "severity": "warn",
                "resource_types": ["Observation"],
                "expect": "category.exists()",
                "when": f"status != '{literal}'",
                "message_en": "odd", "message_zh": "奇怪",
            },
        },
    }  # fmt: skip
    rules = RuleSet.from_config(config)
    plan = rules.plan("Observation")
    assert plan is not None
    # The literal stays a string constant of the generated source, nothing more.
    tree = ast.parse(plan.source)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.Raise)]
    assert literal in {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    found = assess({"resourceType": "Observation", "status": "final"}, context(), rules)
    assert "observation.odd-literal" in {f.rule_id for f in found.findings}
    _same({"resourceType": "Observation", "status": "final"}, context(), rules)
    _same({"resourceType": "Observation", "status": literal}, context(), rules)
