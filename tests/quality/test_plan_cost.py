"""The shortcuts the generated plans take to cost less per resource (huitong.quality.plan):
repeated reads of one element hoisted to the top of the plan, the code gate's usual shape,
the coding fast path written out, the lab-unit and blood-pressure checks written inline,
and a subject's life ranges kept between resources. Each must answer exactly as the plain
rule-by-rule walk (or the closure it stands in for) on every shape, usual or not."""

from __future__ import annotations

import ast
import copy
import itertools
from typing import Any

import pytest
from test_quality_plan import (
    RULES,
    _same,
    _synthea,
    _time_rule,
    counted_inline,
    custom_when,
)
from test_quality_rules import context

from huitong.quality import Facts, InMemoryContext, RuleSet, Subject
from huitong.quality.predicates import element_time

_LOINC, _SCT = "http://loinc.org", "http://snomed.info/sct"

# Concept shapes for code and category: usual (one coding), several, odd.
_CONCEPTS: list[Any] = [
    {"coding": [{"system": _LOINC, "code": "2339-0"}]},  # glucose: a lab property
    {"coding": [{"system": _LOINC, "code": "8867-4"}]},  # heart rate: a vital sign
    {"coding": [{"system": _LOINC, "code": "8480-6"}]},  # systolic
    {"coding": [{"system": _LOINC, "code": "8480-6"}, {"system": _LOINC, "code": "8462-4"}]},
    {"coding": [{"system": _LOINC, "code": "2339-0"}, {"system": _SCT, "code": "1"}]},
    {"coding": [{"system": _SCT, "code": "laboratory"}]},
    {"coding": [{"system": _SCT, "code": "vital-signs"}, {"system": _LOINC, "code": "laboratory"}]},
    {"coding": [{"code": "laboratory"}]},
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                 "code": "laboratory"}]},
    {"coding": [{"system": _LOINC, "code": 2339}]},
    {"coding": [{"system": [_LOINC], "code": "2339-0"}]},
    {"coding": [{"system": _LOINC}]},
    {"coding": [None]},
    {"coding": []},
    {"coding": {"system": _LOINC, "code": "2339-0"}},
    {"coding": None},
    {"text": "x"},
    [{"coding": [{"system": _LOINC, "code": "2339-0"}]}],
    [{"coding": [{"code": "laboratory"}]}, {"text": "x"}],
    [{"coding": [{"code": "laboratory"}]}],
    [None],
    [],
    "2339-0",
    None,
]  # fmt: skip

_QUANTITIES: list[Any] = [
    {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    {"value": 98, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    {"value": 120, "code": "mm[Hg]"},  # both pressures when the code carries both
    {"value": 72, "code": "/min"},
    {"value": 72, "unit": "/min"},
    {"value": 72, "code": "", "unit": "mg/dL"},
    {"value": 72, "code": "", "unit": ""},
    {"value": 72, "code": 5, "unit": "%"},
    {"value": 72, "code": "kg"},
    {"value": 72, "code": "not a unit"},
    {"value": 72},
    {"value": 98, "code": "mmol/L", "extension": [
        {"url": "http://huitong.example/fhir/StructureDefinition/original-quantity",
         "valueQuantity": {"value": 98, "code": "mg/dL"}}]},
    {"value": 98, "code": "mg/dL", "extension": None},
    [{"value": 1, "code": "mg/dL"}],
    "5 mg",
    None,
]  # fmt: skip

_COMPONENTS: list[Any] = [
    None,
    [],
    [{"code": {"coding": [{"system": _LOINC, "code": "8480-6"}]},
      "valueQuantity": {"value": 120, "code": "mm[Hg]"}},
     {"code": {"coding": [{"system": _LOINC, "code": "8462-4"}]},
      "valueQuantity": {"value": 130, "code": "mm[Hg]"}}],
    [{"code": {"coding": [{"system": _LOINC, "code": "2339-0"}]},
      "valueQuantity": {"value": 5, "code": "kg"}}],
    "x",
]  # fmt: skip


def test_observations_of_every_shape_answer_as_the_rule_by_rule_walk() -> None:
    """Code, category, value and components crossed: the gate, lab-unit, blood-pressure and
    laboratory-coding shortcuts (taken or not) against the walk, twice (the second time the
    checks' memos know every unit and code)."""
    ctx = context()
    applied = 0
    for _ in range(2):
        for code, category, quantity, component in itertools.product(
            _CONCEPTS, [_CONCEPTS[5], _CONCEPTS[7], _CONCEPTS[18], None], _QUANTITIES,
            _COMPONENTS,
        ):  # fmt: skip
            obs: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                                   "subject": {"reference": "Patient/m1"}}  # fmt: skip
            for key, value in (("code", code), ("category", category),
                               ("valueQuantity", quantity), ("component", component)):
                if value is not None:
                    obs[key] = copy.deepcopy(value)
            _same(obs, ctx)
            plan = RULES.plan("Observation")
            assert plan is not None
            mask, _ = plan.run(obs, Facts(obs, ctx))
            applied |= mask
    plan = RULES.plan("Observation")
    assert plan is not None
    ids = set(plan.applicable(applied))
    assert {"observation.lab-unit-fits-test", "observation.blood-pressure-order",
            "observation.laboratory-has-loinc", "observation.glucose-in-range"} <= ids


_CODING_EXPRESSIONS = [
    "category.coding.where(code = 'laboratory').exists()",
    "category.coding.where(code = 'laboratory').empty()",
    "code.coding.where(system = 'http://loinc.org').exists()",
    "code.coding.where(system = 'http://loinc.org').empty()",
]


@pytest.mark.parametrize("expression", _CODING_EXPRESSIONS)
def test_the_coding_fast_path_runs_inline_as_its_closure(expression: str) -> None:
    """Written out for one concept with one coding; its closure is called for every other
    shape, and every shape answers as the closure does."""
    check, true, false, calls = counted_inline(expression, "Observation")
    key = expression.split(".", 1)[0]
    inlined = 0
    for concept in _CONCEPTS:
        resource = {"resourceType": "Observation", **({} if concept is None else {key: concept})}
        calls.clear()
        answer = check(resource)
        node = (resource, "Observation")
        assert bool(true(resource, node)) is (answer is True), resource
        assert bool(false(resource, node)) is (answer is False), resource
        inlined += not calls
    assert inlined >= 10


def test_reads_are_hoisted_by_token_and_literals_stay_as_written() -> None:
    """A key read more than once is read once, at the top of the plan; a string literal
    that looks like such a read is left alone (it is data, not a read)."""
    literal = 'r.get("status")'  # a FHIRPath string needs no escape for it
    rules = RuleSet.from_config(custom_when("observation.looks-like-a-read",
                                            f"status != '{literal}'"))
    plan = rules.plan("Observation")
    assert plan is not None
    tree = ast.parse(plan.source)
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert literal in constants
    run = tree.body[0]
    assert isinstance(run, ast.FunctionDef)
    reads = [
        n.args[0].value for n in ast.walk(run)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name) and n.func.value.id == "r"
        and n.func.attr == "get" and isinstance(n.args[0], ast.Constant)
    ]  # fmt: skip
    assert reads.count("status") == 1 and reads.count("valueQuantity") == 1
    for status in ("final", literal, None):
        obs = {"resourceType": "Observation", "status": status, "category": [{"text": "x"}]}
        _same(obs, context(), rules)


def test_synthea_observations_answer_as_the_walk_with_one_facts_reused() -> None:
    """As the write path runs them: one Facts reset for each resource of a transaction (the
    life ranges of the last subject kept between them), patients of several births and
    deaths, against a fresh Facts and the rule-by-rule walk."""
    resources = _synthea(4)
    ctx = InMemoryContext(now=1_795_000_000_000_000)
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert len(patients) >= 2
    for i, patient in enumerate(patients):
        subject = Subject.from_patient(patient)
        if i % 2:
            subject = Subject(subject.gender, subject.birth_date, "2015-06-01")
        ctx.patients[f"Patient/{patient['id']}"] = subject
    refs = list(ctx.patients)
    shared = Facts({}, ctx)
    checked = 0
    for n, resource in enumerate(resources):
        plan = RULES.plan(resource["resourceType"])
        if plan is None or resource["resourceType"] == "Patient":
            continue
        # Runs of resources about one patient, then another (the kept ranges must follow).
        ref = refs[(n // 7) % len(refs)]
        key = "patient" if "patient" in resource else "subject"
        resource = {**resource, key: {"reference": ref}}
        shared.reset(resource, ctx)
        answer = plan.run(resource, shared)
        assert answer == plan.run(resource, Facts(resource, ctx))
        assert answer == plan.run_reference(resource, Facts(resource, ctx))
        checked += 1
    assert checked > 300


_TIME_VALUES: list[Any] = [
    None, "2024-05-14", "2024-05-14T09:00:00+08:00", "2024-05-14T09:00:00.123Z", "2024",
    "2024-05", "not a date", "", 20240514, [], ["2024-05-14"], {}, {"start": "2024-05-14"},
    {"end": "2024-05-14T09:00:00Z"}, {"start": "x", "end": None}, {"start": 5},
]  # fmt: skip


@pytest.mark.parametrize(
    ("rtype", "spec", "keys"),
    [
        ("Observation", "effective", ("effective", "effectiveDateTime", "effectivePeriod")),
        ("Observation", "issued", ("issued", "issuedDateTime")),
        ("Procedure", "performed", ("performedPeriod", "performedDateTime", "performed")),
        ("Procedure", "performed", ("performedPeriod", "performedInstant", "performedDate")),
        ("Procedure", "performed", ("performedPeriod", "performedDate")),
        ("Encounter", "period", ("period", "periodDateTime")),
        ("Encounter", "period.start", ("period",)),
        ("Encounter", "period.end", ("period",)),
    ],
)
def test_the_plans_time_reads_answer_as_element_time(
    rtype: str, spec: str, keys: tuple[str, ...]
) -> None:
    """The element times a plan reads up front (their usual shapes written out, the reader
    called for the rest) are element_time's, for every value under every key it looks at,
    alone and in pairs (the element beside its dateTime choice)."""
    rules = RuleSet([_time_rule("t.late", "arrived-in-time", rtype, element=spec,
                                max_delay_days=30)])  # fmt: skip
    plan = rules.plan(rtype)
    assert plan is not None
    ctx = context()
    shapes: list[dict[str, Any]] = [{}]
    for key in keys:
        shapes += [{key: v} for v in _TIME_VALUES]
    if len(keys) > 1:
        shapes += [{keys[0]: a, keys[1]: b} for a in _TIME_VALUES for b in _TIME_VALUES[:8]]
    if "." in spec:
        member = spec.split(".", 1)[1]
        shapes += [{"period": {member: v}} for v in _TIME_VALUES]
    for shape in shapes:
        resource = {"resourceType": rtype, **shape}
        facts = Facts(resource, ctx)
        plan.run(resource, facts)
        assert facts.times[spec] == element_time(resource, spec), resource
        _same(resource, ctx, rules)


_RANGES: list[Any] = [
    None, [], [None], "x", {}, [{}], 0,
    [{"low": {"value": 5, "code": "mg/dL"}, "high": {"value": 1, "code": "mg/dL"}}],
    [{"low": {"value": 1, "code": "mg/dL"}, "high": {"value": 5, "code": "mg/dL"}}],
    [{"low": {"value": 1}}],
]  # fmt: skip
_DOSAGES: list[Any] = [
    None, [], [None], "x", {}, [{}], 0, [{"doseAndRate": None}],
    [{"doseAndRate": [{"doseQuantity": {"value": 0}}]}],
    [{"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "mg"}}]}],
]  # fmt: skip


def test_range_and_dose_checks_run_inline_as_the_walk() -> None:
    """reference-range-ordered and dose-positive answer "nothing to judge" inline when the
    element is absent (not a list), and call the check otherwise: every shape as the walk,
    and both a pass and a failure among them."""
    ctx = context()
    seen: set[bool] = set()
    for rtype, key, shapes in (("Observation", "referenceRange", _RANGES),
                               ("MedicationRequest", "dosageInstruction", _DOSAGES)):
        plan = RULES.plan(rtype)
        assert plan is not None
        rule = "observation.reference-range-ordered" if rtype == "Observation" else (
            "medicationrequest.dose-positive")
        bit = plan.mask_of([rule])
        for shape in shapes:
            resource: dict[str, Any] = {"resourceType": rtype, "status": "active",
                                        "subject": {"reference": "Patient/p1"}}
            if shape is not None:
                resource[key] = copy.deepcopy(shape)
            _same(resource, ctx)
            mask, fails = plan.run(resource, Facts(resource, ctx))
            if mask & bit:
                seen.add(not any(plan.ids[i] == rule for i, _ in fails or ()))
    assert seen == {True, False}
