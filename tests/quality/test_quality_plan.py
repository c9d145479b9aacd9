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
from huitong.quality.model import Category, PredicateCheck, Rule, Severity
from huitong.quality.plan import Namespace
from huitong.quality.predicates import element_time, predicate_runner, time_reader
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
    "value.ofType(Quantity).value.empty()",
    "value.ofType(Quantity).value.exists() and value.ofType(Quantity).code.empty()",
    "code.text.exists()",
    "category.text.empty()",
    "subject.reference.exists() or (code.text.exists()).not()",
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


def custom_when(rule_id: str, when: str) -> dict[str, Any]:
    """A region document with one custom Observation rule applied ``when``."""
    return {
        "custom": {
            rule_id: {
                "category": "conformance", "severity": "warn",
                "resource_types": ["Observation"],
                "expect": "category.exists()",
                "when": when,
                "message_en": "odd", "message_zh": "奇怪",
            },
        },
    }  # fmt: skip


def test_custom_expressions_cannot_put_code_into_a_plan() -> None:
    literal = 'a"); import os; ("\n# x\nraise SystemExit'
    rules = RuleSet.from_config(custom_when("observation.odd-literal", f"status != '{literal}'"))
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


def _synthea(bundles: int) -> list[dict[str, Any]]:
    return [
        e["resource"] for body in synthea_bundles(bundles)
        for e in orjson.loads(body).get("entry", [])
    ]  # fmt: skip


def _time_rule(rule_id: str, name: str, rtype: str, **params: Any) -> Rule:
    return Rule(
        rule_id, Category.TIMELINESS, Severity.WARN, (rtype,), "late {delay_days}", "迟",
        PredicateCheck(name), params,
    )


def test_time_checks_run_inline_and_answer_as_their_closures() -> None:
    # The shipped time predicates are written into the plans as source sharing each
    # element's time (huitong.quality.library._timing): their answers must be the factory
    # checks' on real resources, under tuned parameters and contexts with and without a
    # receipt time, a birth date and a death date.
    resources = _synthea(6)
    rules = RuleSet([
        _time_rule("o.ordered", "dates-ordered", "Observation", earlier="issued",
                   later="effective"),
        _time_rule("o.future", "date-not-in-future", "Observation", element="effective",
                   tolerance_hours=-24 * 365 * 10.0),
        _time_rule("o.birth", "date-not-before-birth", "Observation", element="effective"),
        _time_rule("o.death", "date-not-after-death", "Observation", element="issued",
                   grace_days=-400),
        _time_rule("o.late", "arrived-in-time", "Observation", element="effective",
                   max_delay_days=3650),
        _time_rule("e.ordered", "dates-ordered", "Encounter", earlier="period.end",
                   later="period.start"),
        _time_rule("e.late", "arrived-in-time", "Encounter", element="period",
                   max_delay_days=2000.5),
        _time_rule("e.death", "date-not-after-death", "Encounter", element="period.start",
                   grace_days=0),
    ])  # fmt: skip
    for rtype in ("Observation", "Encounter"):
        plan = rules.plan(rtype)
        assert plan is not None
        assert all(c.inline is not None for c in plan.rules)
        # Each element's time read once, by its reader, and left in the Facts.
        assert "_ts = facts.times" in plan.source and "facts.time(" not in plan.source
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert patients
    now = 1_795_000_000_000_000
    contexts = [InMemoryContext(now=now), InMemoryContext(now=now, received_at=now - 10**15)]
    for ctx in contexts:
        for i, patient in enumerate(patients):
            subject = Subject.from_patient(patient)
            if i % 2:  # half of them died, some before their own records
                subject = Subject(subject.gender, subject.birth_date, "2015-06-01")
            ctx.patients[f"Patient/{patient['id']}"] = subject
    outcomes: set[bool] = set()
    for n, resource in enumerate(r for r in resources if r["resourceType"] in
                                 ("Observation", "Encounter")):  # fmt: skip
        ctx = contexts[n % 2]
        subject = list(ctx.patients)[n % len(patients)]
        resource = {**resource, "subject": {"reference": subject}}
        plan = rules.plan(resource["resourceType"])
        assert plan is not None
        generated = plan.run(resource, Facts(resource, ctx))
        assert generated == plan.run_reference(resource, Facts(resource, ctx))
        outcomes.update(o.passed for _, o in generated[1] or ())
        if generated[0] != (1 << len(plan.rules)) - 1 or not generated[1]:
            outcomes.add(True)
    assert outcomes == {True, False}  # the data made the rules both pass and fail


def test_the_code_gate_finds_the_rules_of_every_code_on_the_resource() -> None:
    # The gate's one-coding shortcut against a plain reading of the gated rules' codes.
    plan = RULES.plan("Observation")
    assert plan is not None and plan._gate is not None
    gate = plan._gate

    def expected(resource: dict[str, Any]) -> set[int]:
        concepts = [resource.get("code")]
        components = resource.get("component")
        if isinstance(components, list):
            concepts += [c.get("code") for c in components if isinstance(c, dict)]
        pairs = {
            (coding.get("system"), coding.get("code"))
            for concept in concepts if isinstance(concept, dict)
            and isinstance(concept.get("coding"), list)
            for coding in concept["coding"] if isinstance(coding, dict)
        }  # fmt: skip
        return {i for i, c in enumerate(plan.rules)
                if c.gate is not None and any(s == c.gate[0] and k in c.gate[1]
                                              for s, k in pairs)}  # fmt: skip

    observations = [r for r in _synthea(8) if r["resourceType"] == "Observation"]
    odd: list[dict[str, Any]] = [
        {"code": {"coding": [None]}},
        {"code": {"coding": []}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "component": "x"},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"},
                             {"system": "http://loinc.org", "code": "8310-5"}]}},
        {"code": "8867-4"},
    ]  # fmt: skip
    hits = 0
    for resource in [*observations, *odd]:
        found = set(gate(resource))
        assert found == expected(resource), resource.get("code")
        hits += bool(found)
    assert hits > 100


def test_lab_unit_verdicts_remembered_answer_as_a_fresh_check() -> None:
    # lab-unit-fits-test remembers its verdict per (property, unit): over real results and
    # the same results with their units swapped between tests, a check that has seen them
    # all must answer each as a new one does.
    params = {"original_extension": "http://huitong.example/fhir/StructureDefinition/x"}
    warm = predicate_runner("lab-unit-fits-test", params)
    assert warm is not None
    observations = [r for r in _synthea(8) if isinstance(r.get("valueQuantity"), dict)]
    units = [r["valueQuantity"].get("code") for r in observations]
    swapped = [
        {**r, "valueQuantity": {**r["valueQuantity"], "code": units[(i * 7) % len(units)]}}
        for i, r in enumerate(observations)
    ]
    ctx = InMemoryContext(now=0)
    failures = 0
    for resource in [*observations, *swapped, *observations]:
        fresh = predicate_runner("lab-unit-fits-test", params)
        assert fresh is not None
        answer = warm(resource, Facts(resource, ctx))
        assert answer == fresh(resource, Facts(resource, ctx))
        failures += answer is not None and not answer.passed
    assert failures > 10


# Every shape a top-level element can have under the member fast paths' key: absent, null,
# an object with or without the member (null, empty list, list of nulls, a value), a list
# of those, and other JSON values.
_MEMBER_SHAPES: list[Any] = [
    None, {}, {"value": None}, {"value": []}, {"value": [None]}, {"value": [None, 1]},
    {"value": 0}, {"value": False}, {"value": ""}, {"code": "mg"}, [], [None],
    [{"value": 1}], [{}, {"value": 2}], [{"value": None}], "5 mg", 5, True,
]  # fmt: skip


def counted_inline(expression: str, rtype: str) -> tuple[Any, Any, Any, list[Any]]:
    """``expression``'s closure, its inline source's true and false forms as functions of
    ``(r, n)``, and the list of the calls those made to the closures they bind."""
    ns = Namespace()
    check, inline = compile_inline(expression, rtype, {}, ns.bind)
    assert isinstance(inline, Inline) and inline.total
    calls: list[Any] = []

    def counted(fn: Any) -> Any:
        def call(n: Any) -> Any:
            calls.append(n)
            return fn(n)

        return call

    names = {name: counted(fn) if callable(fn) else fn for name, fn in ns.names.items()}
    true = eval(f"lambda r, n: {inline.true}", names)
    false = eval(f"lambda r, n: {inline.false}", names)
    return check, true, false, calls


@pytest.mark.parametrize(
    ("expression", "key"),
    [
        ("value.ofType(Quantity).value.exists()", "valueQuantity"),
        ("value.ofType(Quantity).value.empty()", "valueQuantity"),
        ("period.start.exists()", "period"),
        ("period.end.empty()", "period"),
    ],
)
def test_member_fast_paths_run_inline_for_one_object_as_their_closures(
    expression: str, key: str
) -> None:
    """A member fast path (``x.ofType(T).m``, ``x.m``) is written out inline: its closure is
    called only for a list under the key, and every shape answers as the closure does."""
    rtype = "Observation" if key == "valueQuantity" else "Encounter"
    check, true, false, calls = counted_inline(expression, rtype)
    for shape in _MEMBER_SHAPES:
        member = "value" if key == "valueQuantity" else ("start" if "start" in expression
                                                         else "end")  # fmt: skip
        if isinstance(shape, dict):
            shape = {(member if k == "value" else k): v for k, v in shape.items()}
        resource = {"resourceType": rtype, **({} if shape is None else {key: shape})}
        calls.clear()
        answer = check(resource)
        node = (resource, rtype)
        assert bool(true(resource, node)) is (answer is True), resource
        assert bool(false(resource, node)) is (answer is False), resource
        assert bool(calls) is (type(shape) is list), resource


_TIME_VALUES: list[Any] = [
    None, "2024-05-14", "2024-05-14T09:00:00+08:00", "2024-05-14T09:00:00.123Z", "2024",
    "2024-05", "not a date", 20240514, [], ["2024-05-14"], {}, {"start": "2024-05-14"},
    {"end": "2024-05-14T09:00:00Z"}, {"start": "2024-05-14", "end": "2024-05-20"},
    {"start": "x", "end": None}, {"start": 5},
]  # fmt: skip


_SPECS = ["effective", "issued", "period", "period.start", "period.end", "onset", "performed",
          "occurrence"]  # fmt: skip


@pytest.mark.parametrize("spec", _SPECS)
def test_time_readers_answer_as_element_time(spec: str) -> None:
    """A plan reads each element's time with its reader (the spec's shape decided once):
    for every value under the element, its choice keys or its sub-element, the same answer
    as :func:`element_time`."""
    head, _, sub = spec.partition(".")
    keys = [head] if sub else [spec, *(spec + s for s in ("DateTime", "Instant", "Date",
                                                          "Period"))]  # fmt: skip
    read = time_reader(spec)
    assert time_reader(spec) is read
    for key in keys:
        for value in _TIME_VALUES:
            shaped = {sub: value} if sub else value
            resource = {"resourceType": "Encounter", key: shaped}
            assert read(resource) == element_time(resource, spec), resource
    # Two choice keys at once: the first in the choice order wins, both ways.
    both = {"effectiveDateTime": "bad", "effectivePeriod": {"start": "2024-05-14"}}
    assert time_reader("effective")(both) == element_time(both, "effective")


def test_a_plan_leaves_its_element_times_for_the_checks_it_calls() -> None:
    """The generated plan puts each element time it read where ``facts.time`` finds it, so a
    check it calls afterwards does not read the element again."""
    obs = {"resourceType": "Observation", "status": "final",
           "effectiveDateTime": "2024-05-14T09:00:00+08:00",
           "issued": "2024-05-14T10:00:00+08:00"}  # fmt: skip
    plan = RULES.plan("Observation")
    assert plan is not None
    facts = Facts(obs, context())
    plan.run(obs, facts)
    assert facts.times["effective"] == element_time(obs, "effective")
    assert facts.times["issued"] == element_time(obs, "issued")


_UCUM = "http://unitsofmeasure.org"
_QUANTITIES: list[Any] = [
    {"value": 1, "system": _UCUM, "code": "mg/dL"},
    {"value": 1, "system": _UCUM, "code": "not-a-unit"},
    {"value": 1, "system": _UCUM, "code": 5},
    {"value": 1, "system": _UCUM},
    {"value": 1, "system": "http://example.org/units", "code": "mg/dL"},
    {"value": 1, "unit": "mg/dL"},
    {"value": 1, "system": _UCUM, "code": "{score}"},
    [{"value": 1, "system": _UCUM, "code": "mg"}],
    "5 mg", None,
]  # fmt: skip


@pytest.mark.parametrize("quantity", _QUANTITIES)
@pytest.mark.parametrize("component", [False, True])
def test_the_ucum_unit_check_runs_inline_as_its_closure(quantity: Any, component: bool) -> None:
    """The UCUM conformance rule, written into the Observation plan for the usual shape,
    answers as its check for every quantity shape, with and without components."""
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                           "valueQuantity": quantity}  # fmt: skip
    if component:
        obs["component"] = [{"code": {"text": "x"}, "valueQuantity": quantity}]
    _same(obs, context())
    plan = RULES.plan("Observation")
    assert plan is not None
    # (the read itself may be hoisted to the top of the plan: plan._hoist_reads)
    assert "_iq = " in plan.source


_SCT, _LOINC = "http://snomed.info/sct", "http://loinc.org"
_CONCEPTS: list[Any] = [
    {"coding": [{"system": _SCT, "code": "77386006"}]},  # pregnancy
    {"coding": [{"system": _SCT, "code": "399068003"}]},  # prostate cancer
    {"coding": [{"system": _LOINC, "code": "8867-4"}]},  # heart rate: in no table
    {"coding": [{"system": _LOINC, "code": "8867-4"}, {"system": _SCT, "code": "77386006"}]},
    {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "O09.1"}]},
    {"coding": [{"system": _SCT}]},
    {"coding": [{"code": "77386006"}]},
    {"coding": [{"system": _SCT, "code": 77386006}]},
    {"coding": [{"system": [_SCT], "code": "77386006"}]},
    {"coding": [{}, {"system": _SCT, "code": "77386006"}]},
    {"coding": [None]},
    {"coding": []},
    {"coding": {"system": _SCT, "code": "77386006"}},
    {"text": "pregnant"},
    [{"coding": [{"system": _SCT, "code": "77386006"}]}],
    [{"coding": [{"system": _SCT, "code": "77386006"}]}, {"text": "x"}],
    [{"text": "x"}],
    [],
    "77386006",
    None,
]  # fmt: skip


@pytest.mark.parametrize("rtype", ["Observation", "Condition", "Procedure", "Encounter"])
def test_the_coding_checks_run_inline_as_their_closures(rtype: str) -> None:
    """The has-coding and sex-specific-code predicates are written into the plans with a
    shortcut for the usual shape (one coding, a usable one / one already known to be in
    neither table); for every concept shape, as ``code`` and as Encounter's repeating
    ``type``, for patients of either sex, twice (the second time the sex rules' memo knows
    the code), the plan answers as the rule-by-rule walk."""
    plan = RULES.plan(rtype)
    assert plan is not None
    element = "type" if rtype == "Encounter" else "code"
    assert "_iv = " in plan.source
    if rtype != "Encounter":
        assert ") is False" in plan.source  # the sex rules' memo shortcut
    ctx = context()
    failed: set[str] = set()
    for _ in range(2):
        for subject in ("Patient/p1", "Patient/m1", "Patient/unknown"):
            for value in _CONCEPTS:
                resource = {"resourceType": rtype, "id": "x", "status": "final",
                            "subject": {"reference": subject}, element: value}  # fmt: skip
                _same(resource, ctx)
                _, fails = plan.run(resource, Facts(resource, ctx))
                failed.update(plan.ids[i] for i, _ in fails or ())
    if rtype == "Observation":
        # A component's coding of no string system is no vital-sign code (it used to raise
        # TypeError in the plan's code gate, for a list).
        for odd in ([_LOINC], None, 5, {"x": 1}):
            obs = {"resourceType": "Observation", "status": "final", "component": [
                {"code": {"coding": [{"system": odd, "code": "8480-6"}]},
                 "valueQuantity": {"value": 500, "unit": "mm[Hg]"}}]}  # fmt: skip
            _same(obs, ctx)
    # Both shortcuts' other side was taken: coded-element failures and, where the type has
    # them, sex-specific failures on both sexes.
    assert any(rule_id.endswith("-coded") for rule_id in failed)
    if rtype != "Encounter":
        assert f"{rtype.lower()}.pregnancy-code-male" in failed
        assert f"{rtype.lower()}.prostate-code-female" in failed
