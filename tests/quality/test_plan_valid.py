"""``TypePlan.run_valid`` (huitong.quality.plan), the plan the write path runs after
validation, against ``TypePlan.run``: for every resource that passes
:func:`huitong.fhir.validation.validate_resource` the two must give the same answer (which
rules applied, which failed, with equal outcomes) and leave the same element times in the
resource's Facts. Checked on real Synthea resources and on many generated ones of varied
shapes (missing elements, one or two codings, components, every choice type, periods,
arrays of primitives with ``_name`` siblings and null entries, extensions), for the shipped
rules and for custom rules that reach the shapes the shipped ones do not."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from test_quality_rules import EXAMPLES, context

from huitong.fhir.definitions import structures
from huitong.fhir.errors import FhirError
from huitong.fhir.validation import validate_resource
from huitong.quality import Facts, RuleSet
from huitong.quality import expression as expression_module
from huitong.quality.codes import PREGNANCY_LOINC, PROSTATE_LOINC
from huitong.quality.expression import element_shape
from huitong.quality.library.observation import ORIGINAL_QUANTITY_URL
from huitong.quality.plan import TypePlan
from huitong_testdata import synthea_bundles

Resource = dict[str, Any]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
EXT = {"url": "http://example.org/fhir/ext", "valueString": "x"}

# Custom rules for the shapes no shipped rule reads: a repeating primitive's presence (its
# array may hold nulls beside a ``_name`` sibling), a member that is one, codings of a
# repeating and of a single concept by system and by code, equality on a code, and the
# logic operators over them.
CUSTOM: dict[str, dict[str, Any]] = {
    "procedure.canonical-present": {
        "types": ["Procedure"], "when": "status = 'completed'",
        "expect": "instantiatesCanonical.exists()",
    },
    "procedure.canonical-absent": {
        "types": ["Procedure"], "expect": "instantiatesUri.empty() or status != 'completed'",
    },
    "observation.profiled": {
        "types": ["Observation"],
        "when": f"category.coding.where(system = '{CATEGORY}').exists()",
        "expect": "meta.profile.exists()",
    },
    "observation.not-heart-rate": {
        "types": ["Observation"], "when": "status != 'final'",
        "expect": "code.coding.where(code = '8867-4').empty()",
    },
    "observation.one-unit": {
        "types": ["Observation"], "when": "value.ofType(Quantity).exists() implies issued.exists()",
        "expect": "(value.ofType(Quantity).unit.exists() xor value.ofType(Quantity).code.exists())"
                  ".not()",
    },
    "observation.high": {
        "types": ["Observation"],
        "expect": "interpretation.coding.where(code = 'H').empty() or note.exists()",
    },
    "observation.language": {
        "types": ["Observation"], "when": "language = 'zh-CN' or language != 'en'",
        "expect": "code.text.exists() and bodySite.coding.where(system = 'http://snomed.info/sct')"
                  ".exists().not()",
    },
    "encounter.whole-period": {
        "types": ["Encounter"], "when": "class.exists()",
        "expect": "period.start.exists() and period.end.exists()",
    },
    "patient.family": {
        "types": ["Patient"], "expect": "name.family.exists() or telecom.empty()",
    },
    "patient.profiled": {
        "types": ["Patient"], "when": "meta.exists()", "expect": "meta.profile.empty()",
    },
    "condition.snomed": {
        "types": ["Condition"], "when": "clinicalStatus.exists()",
        "expect": f"code.coding.where(system = '{SNOMED}').exists()",
    },
    "condition.onset": {
        "types": ["Condition"], "expect": "onset.exists() xor abatement.exists()",
    },
}  # fmt: skip


def _custom_rules() -> RuleSet:
    custom = {
        rule_id: {
            "category": "conformance", "severity": "warn", "resource_types": spec["types"],
            "expect": spec["expect"], "message_en": "odd", "message_zh": "奇怪",
            **({"when": spec["when"]} if "when" in spec else {}),
        }
        for rule_id, spec in CUSTOM.items()
    }  # fmt: skip
    return RuleSet.from_config({"custom": custom})


RULE_SETS = {"shipped": RuleSet.default(), "custom": _custom_rules()}


def _answers(plan: TypePlan, resource: Resource) -> tuple[Any, Any]:
    ctx = context()
    general, valid = Facts(resource, ctx), Facts(resource, ctx)
    return (
        (plan.run(resource, general), dict(general.times)),
        (plan.run_valid(resource, valid), dict(valid.times)),
    )


def _differences(rules: RuleSet, resources: list[Resource]) -> list[tuple[Resource, Any, Any]]:
    """The resources on which run_valid answers otherwise than run (with both answers)."""
    found = []
    for resource in resources:
        plan = rules.plan(resource["resourceType"])
        if plan is not None:
            general, valid = _answers(plan, resource)
            if general != valid:
                found.append((resource, general, valid))
    return found


def _valid(resource: Resource) -> bool:
    try:
        validate_resource(resource)
    except FhirError:
        return False
    return True


def _synthea(bundles: int) -> list[Resource]:
    return [
        e["resource"] for body in synthea_bundles(bundles)
        for e in orjson.loads(body).get("entry", [])
    ]  # fmt: skip


# The types some shipped rule checks (the custom rules' types are among them).
PLANNED = {t for rule in RULE_SETS["shipped"].rules for t in rule.resource_types}


# --- generated resources ----------------------------------------------------------------------

_DATES = [
    "2020", "2020-05", "2020-05-17", "2024-02-29", "2020-05-17T10:00:00+08:00",
    "2024-05-31T23:00:00Z", "2024-06-01T10:00:00Z", "2031-01-01T00:00:00Z", "1900-01-01",
    "1984-12-31", "2023-02-30", "yesterday",
]  # fmt: skip
_INSTANTS = ["2020-05-17T10:00:00.000+08:00", "2024-05-31T23:00:00Z", "2031-01-01T00:00:00Z"]
_QUANTITIES: list[Any] = [
    {"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    {"value": 98, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    {"value": 120, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
    {"value": 300, "unit": "/min", "system": UCUM, "code": "/min"},
    {"value": 72, "unit": "/min"},
    {"value": 72, "code": "kg", "system": UCUM},
    {"value": 72, "code": "not a unit", "system": UCUM},
    {"value": 72, "code": "x", "system": "http://example.org/units"},
    {"value": 72},
    {"unit": "mg/dL"},
    {"value": 98, "code": "mmol/L", "system": UCUM, "extension": [
        {"url": ORIGINAL_QUANTITY_URL, "valueQuantity": {"value": 98, "code": "mg/dL"}}]},
    {"value": 98, "code": "mg/dL", "extension": [EXT]},
    {"value": 98, "code": "", "unit": "mg/dL"},  # refused by validation
    {"value": None, "code": "mg/dL"},  # refused by validation
]  # fmt: skip
_CONCEPTS: list[Any] = [
    {"coding": [{"system": LOINC, "code": "2339-0"}]},  # glucose: a lab property
    {"coding": [{"system": LOINC, "code": "8867-4"}]},  # heart rate: a vital sign
    {"coding": [{"system": LOINC, "code": "8480-6"}]},  # systolic
    {"coding": [{"system": LOINC, "code": "85354-9"}]},  # the blood-pressure panel
    {"coding": [{"system": LOINC, "code": "8480-6"}, {"system": LOINC, "code": "8462-4"}]},
    {"coding": [{"system": LOINC, "code": "2339-0"}, {"system": SNOMED, "code": "1"}]},
    {"coding": [{"system": LOINC, "code": PREGNANCY_LOINC[0]}]},
    {"coding": [{"system": LOINC, "code": PROSTATE_LOINC[0]}]},
    {"coding": [{"system": SNOMED, "code": "laboratory"}]},
    {"coding": [{"system": CATEGORY, "code": "laboratory"}]},
    {"coding": [{"system": CATEGORY, "code": "vital-signs"}, {"system": LOINC, "code": "H"}]},
    {"coding": [{"code": "laboratory"}]},
    {"coding": [{"code": "H"}]},
    {"coding": [{"system": LOINC}]},
    {"coding": [{"display": "no system, no code"}]},
    {"coding": [{"system": LOINC, "code": "2339-0", "extension": [EXT]}], "text": "glucose"},
    {"coding": [{"system": SNOMED, "code": "44054006", "_code": {"extension": [EXT]}}]},
    {"text": "only text"},
    {"extension": [EXT]},
    {"coding": []},  # refused by validation
]  # fmt: skip
_REFERENCES = [
    "Patient/p1", "Patient/m1", "Patient/d1", "Patient/unknown",
    "urn:uuid:6a1f2c3e-0000-4000-8000-000000000001",
]  # fmt: skip
# The complex types _value_of makes values of (elements of other types are left alone).
_COMPLEX = frozenset({
    "Quantity", "Age", "Duration", "SimpleQuantity", "CodeableConcept", "Period", "Range",
    "Ratio", "Timing", "Reference", "Coding",
})  # fmt: skip


def _value_of(code: str, rng: random.Random, targets: list[str] | None = None) -> Any:
    """A value of FHIR type ``code`` (now and then one validation refuses); a reference to
    one of ``targets`` when given."""
    if code == "Quantity" or code in ("Age", "Duration", "SimpleQuantity"):
        return copy.deepcopy(rng.choice(_QUANTITIES))
    if code == "CodeableConcept":
        return copy.deepcopy(rng.choice(_CONCEPTS))
    if code == "Period":
        return rng.choice([
            {"start": rng.choice(_DATES)}, {"end": rng.choice(_DATES)},
            {"start": rng.choice(_DATES), "end": rng.choice(_DATES)}, {"extension": [EXT]},
        ])  # fmt: skip
    if code == "Range":
        return {"low": rng.choice(_QUANTITIES[:3]), "high": rng.choice(_QUANTITIES[:4])}
    if code == "Ratio":
        return {"numerator": _QUANTITIES[0], "denominator": _QUANTITIES[4]}
    if code == "Timing":
        return {"event": [rng.choice(_DATES[:6])]}
    if code == "Reference":
        if targets and "Patient" not in targets and "Resource" not in targets:
            return {"reference": f"{rng.choice(targets)}/1"}
        return {"reference": rng.choice(_REFERENCES)}
    if code == "Coding":
        return {"system": LOINC, "code": "8867-4"}
    if code in ("date", "dateTime"):
        return rng.choice(_DATES)
    if code == "instant":
        return rng.choice(_INSTANTS)
    if code == "boolean":
        return rng.choice([True, False])
    if code in ("integer", "positiveInt", "unsignedInt"):
        return rng.choice([0, 3, -1])
    if code == "decimal":
        return rng.choice([1.5, 0, 2])
    if code == "time":
        return "10:00:00"
    if code in ("uri", "url", "canonical"):
        return "http://example.org/fhir/x"
    if code == "code":
        return rng.choice(["final", "completed", "active", "en", "zh-CN"])
    if code in ("string", "markdown", "id"):
        return rng.choice(["x", "a-1", ""])
    return "x"


def _top_elements(rtype: str) -> Iterator[tuple[str, str, bool]]:
    """(JSON key, type code, repeats) of every top-level element of ``rtype``."""
    for name, code, repeats, _ in _top_element_targets(rtype):
        yield name, code, repeats


def _top_element_targets(rtype: str) -> Iterator[tuple[str, str, bool, list[str] | None]]:
    """:func:`_top_elements`, with the resource types a reference element allows."""
    for path, (_, max_, types, content_ref, targets, *_) in structures()[rtype][
        "elements"
    ].items():
        name = path[len(rtype) + 1 :]
        if not name or "." in name or max_ == "0" or content_ref is not None or not types:
            continue
        if name.endswith("[x]"):
            for code in types:
                yield name[:-3] + code[0].upper() + code[1:], code, max_ != "1", targets
        else:
            yield name, types[0], max_ != "1", targets


Mutation = Callable[[Resource, random.Random], None]


def _drop(resource: Resource, rng: random.Random) -> None:
    keys = [k for k in resource if k != "resourceType"]
    if keys:
        del resource[rng.choice(keys)]


def _set_element(resource: Resource, rng: random.Random) -> None:
    """One top-level element set to a value of its type: one or two for a repeating one,
    another variant of a choice (the others removed, now and then left beside it)."""
    elements = [
        e for e in _top_element_targets(resource["resourceType"])
        if e[1][0].islower() or e[1] in _COMPLEX
    ]  # fmt: skip
    key, code, repeats, targets = rng.choice(elements)
    if key[0].islower() and any(c.isupper() for c in key) and rng.random() < 0.9:
        base = next(key[:i] for i in range(1, len(key)) if key[i].isupper())
        if structures()[resource["resourceType"]]["elements"].get(
            f"{resource['resourceType']}.{base}[x]"
        ):
            for other in [k for k in resource if k.startswith(base) and k != key]:
                del resource[other]
    value = _value_of(code, rng, targets)
    if repeats:
        value = [value] if rng.random() < 0.6 else [value, _value_of(code, rng, targets)]
        if rng.random() < 0.05:
            value = value[0]  # refused by validation
    resource[key] = value


def _primitive_array_with_nulls(resource: Resource, rng: random.Random) -> None:
    """A repeating primitive with a ``_name`` sibling: nulls where only the sibling speaks."""
    holders: list[tuple[dict[str, Any], str, str]] = [
        (resource, key, code) for key, code, repeats in _top_elements(resource["resourceType"])
        if repeats and code[0].islower()
    ]  # fmt: skip
    holders.append((resource, "meta", "canonical"))
    holder, key, code = rng.choice(holders)
    if key == "meta":
        holder, key = resource.setdefault("meta", {}), "profile"
    shape = rng.choice(["null", "mixed", "plain", "orphan"])
    value = _value_of(code, rng) or "x"
    sibling = {"extension": [EXT]}
    if shape == "null":
        holder[key], holder["_" + key] = [None], [sibling]
    elif shape == "mixed":
        holder[key], holder["_" + key] = [None, value], [sibling, None]
    elif shape == "plain":
        holder[key] = [value]
    else:  # a null no sibling speaks for: refused by validation
        holder[key] = [None, value]


def _extension(resource: Resource, rng: random.Random) -> None:
    where = rng.choice(["top", "status", "quantity", "code"])
    if where == "top":
        resource["extension"] = [EXT]
    elif where == "status" and "status" in resource:
        resource["_status"] = {"extension": [EXT]}
    elif where == "quantity" and isinstance(resource.get("valueQuantity"), dict):
        resource["valueQuantity"]["extension"] = [rng.choice([EXT, {
            "url": ORIGINAL_QUANTITY_URL, "valueQuantity": {"value": 98, "code": "mg/dL"}}])]
    elif isinstance(resource.get("code"), dict):
        resource["code"]["extension"] = [EXT]


def _components(resource: Resource, rng: random.Random) -> None:
    if resource["resourceType"] != "Observation":
        return
    pool = [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": rng.choice([80, 120, 300]), "system": UCUM,
                           "code": "mm[Hg]", "unit": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": rng.choice([70, 130]), "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "valueString": "x"},
        {"code": {"text": "no coding"}},
        {"code": {"coding": [{"system": LOINC, "code": "2339-0"}]},
         "valueQuantity": {"value": 5, "system": UCUM, "code": "kg"}},
    ]  # fmt: skip
    resource["component"] = rng.sample(pool, rng.choice([1, 2, 2, 3]))


def _measured(resource: Resource, rng: random.Random) -> None:
    """An Observation coded and valued together: a vital sign or lab test with a unit that
    fits it or not, a blood-pressure reading coded with both pressures."""
    if resource["resourceType"] != "Observation":
        return
    system, code, values, units = rng.choice([
        (LOINC, "8867-4", [72, 300], ["/min", "kg"]),
        (LOINC, "2339-0", [98, 5.4], ["mg/dL", "mmol/L", "%"]),
        (LOINC, "8480-6", [120, 20], ["mm[Hg]"]),
        (LOINC, "29463-7", [70, 900], ["kg", "[lb_av]", "m"]),
        (LOINC, "8310-5", [37, 50], ["Cel", "[degF]"]),
        (LOINC, "8480-6,8462-4", [80, 120], ["mm[Hg]"]),
    ])  # fmt: skip
    resource["code"] = {"coding": [{"system": system, "code": c} for c in code.split(",")]}
    for key in [k for k in resource if k.startswith("value")]:
        del resource[key]
    unit = rng.choice(units)
    resource["valueQuantity"] = {"value": rng.choice(values), "unit": unit, "system": UCUM,
                                 "code": unit}  # fmt: skip
    if rng.random() < 0.7:
        resource.pop("component", None)


def _status(resource: Resource, rng: random.Random) -> None:
    if element_shape(resource["resourceType"], "status") is None:
        return
    resource["status"] = rng.choice(
        ["final", "amended", "corrected", "preliminary", "completed", "finished", "in-progress",
         "active", "entered-in-error", "unknown"]
    )


def _subject(resource: Resource, rng: random.Random) -> None:
    for key in ("subject", "patient"):
        if element_shape(resource["resourceType"], key) is not None:
            resource[key] = {"reference": rng.choice(_REFERENCES)}


MUTATIONS: list[Mutation] = [
    _drop, _set_element, _set_element, _set_element, _set_element,
    _primitive_array_with_nulls, _extension, _components, _measured, _status, _subject,
]  # fmt: skip


def _generated(bases: list[Resource], per_base: int, seed: int) -> list[Resource]:
    """Valid resources made from ``bases`` by one to five random mutations each."""
    rng = random.Random(seed)
    out = []
    for base in bases:
        for _ in range(per_base):
            resource = copy.deepcopy(base)
            for mutation in rng.choices(MUTATIONS, k=rng.randint(1, 5)):
                mutation(resource, rng)
            if _valid(resource):
                out.append(resource)
    return out


def _bases() -> list[Resource]:
    synthea = [r for r in _synthea(5) if r["resourceType"] in PLANNED]
    # A few of each type: the mutations make the variety.
    by_type: dict[str, list[Resource]] = {}
    for r in synthea:
        by_type.setdefault(r["resourceType"], []).append(r)
    bases = [r for rs in by_type.values() for r in rs[:50]]
    for _, _, passing, failing in EXAMPLES:
        for make in (passing, failing):
            if make is not None:
                example = make()
                if example["resourceType"] in PLANNED and _valid(example):
                    bases.append(example)
    return bases


_GENERATED: list[Resource] = []


def generated() -> list[Resource]:
    if not _GENERATED:
        _GENERATED.extend(_generated(_bases(), 10, seed=20261123))
    return _GENERATED


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_set", sorted(RULE_SETS))
def test_synthea_resources_get_the_same_answer_from_run_valid(rule_set: str) -> None:
    resources = _synthea(10)
    assert all(_valid(r) for r in resources)
    rules = RULE_SETS[rule_set]
    checked = [r for r in resources if rules.plan(r["resourceType"]) is not None]
    assert len(checked) > 1000
    assert _differences(rules, checked) == []


@pytest.mark.parametrize("rule_set", sorted(RULE_SETS))
def test_generated_valid_resources_get_the_same_answer_from_run_valid(rule_set: str) -> None:
    resources = generated()
    assert len(resources) > 2000
    rules = RULE_SETS[rule_set]
    differences = _differences(rules, resources)
    assert differences == [], differences[:3]


def test_the_generated_resources_hold_the_shapes_run_valid_must_answer_for() -> None:
    resources = generated()

    def count(test: Callable[[Resource], bool]) -> int:
        return sum(1 for r in resources if test(r))

    def nulls(holder: Any) -> bool:
        return isinstance(holder, dict) and any(
            isinstance(v, list) and None in v for k, v in holder.items() if k[0] != "_"
        )

    def codings(r: Resource, n: int) -> bool:
        code = r.get("code")
        return isinstance(code, dict) and len(code.get("coding", ())) == n

    shapes: dict[str, Callable[[Resource], bool]] = {
        "null entries beside a _name sibling": lambda r: nulls(r),
        "null entries in meta.profile": lambda r: nulls(r.get("meta")),
        "null entries in instantiatesCanonical": lambda r: None in r.get(
            "instantiatesCanonical", ()
        ),
        "one coding": lambda r: codings(r, 1),
        "two codings": lambda r: codings(r, 2),
        "a concept without coding": lambda r: codings(r, 0),
        "a coding without system": lambda r: codings(r, 1) and "system" not in r["code"]["coding"][0],
        "components": lambda r: "component" in r,
        "two categories": lambda r: len(r.get("category", ())) == 2,
        "no code": lambda r: "code" not in r and r["resourceType"] == "Condition",
        "effectivePeriod": lambda r: "effectivePeriod" in r,
        "effectiveInstant": lambda r: "effectiveInstant" in r,
        "effectiveTiming": lambda r: "effectiveTiming" in r,
        "no effective": lambda r: r["resourceType"] == "Observation"
        and not any(k.startswith("effective") for k in r),
        "valueString": lambda r: "valueString" in r,
        "valueCodeableConcept": lambda r: "valueCodeableConcept" in r,
        "a quantity without value": lambda r: isinstance(r.get("valueQuantity"), dict)
        and "value" not in r["valueQuantity"],
        "an original quantity": lambda r: "extension" in r.get("valueQuantity", {}),
        "onsetPeriod": lambda r: "onsetPeriod" in r,
        "performedPeriod": lambda r: "performedPeriod" in r,
        "deceasedDateTime": lambda r: "deceasedDateTime" in r,
        "a year alone": lambda r: r.get("effectiveDateTime") == "2020",
        "a _status sibling": lambda r: "_status" in r,
        "extensions": lambda r: "extension" in r,
    }
    missing = [name for name, test in shapes.items() if count(test) == 0]
    assert missing == []


def test_a_run_valid_that_forgot_the_nulls_of_primitive_arrays_would_be_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The data above must tell a plan that tests presence by None alone for a repeating
    # primitive (whose array may be all nulls beside its sibling) from a correct one.
    monkeypatch.setattr(expression_module, "_repeating_primitive", lambda owner, key: False)
    careless = _custom_rules()
    assert _differences(careless, generated()) != []


def test_a_run_valid_that_trusted_every_concept_to_be_one_object_would_be_caught() -> None:
    # And a plan that read the codings of a repeating concept (category) as of one object.
    rules = _custom_rules()
    plan = rules.plan("Observation")
    assert plan is not None
    careless_source = plan.source_valid.replace(
        "len(_w) == 1 and len(_wc := _w[0].get('coding', ())) == 1",
        "len(_wc := _w[0].get('coding', ())) == 1",
    )
    assert careless_source != plan.source_valid
    scope: dict[str, Any] = {}
    scope.update(plan.run.__globals__)
    exec(compile(careless_source, "<careless plan>", "exec"), scope)
    careless = scope["run_valid"]
    observations = [r for r in generated() if r["resourceType"] == "Observation"]
    ctx = context()
    assert any(
        careless(r, Facts(r, ctx)) != plan.run(r, Facts(r, ctx)) for r in observations
    )


def test_run_valid_reads_less_than_run() -> None:
    # What the validated plan leaves out, on the type most written.
    plan = RULE_SETS["shipped"].plan("Observation")
    assert plan is not None
    assert "type(" not in plan.source_valid.split("# 'observation.status-present'")[0]
    assert "\n    n = " not in plan.source_valid
    assert "'effective'" not in plan.source_valid.replace("_ts['effective']", "")
    assert len(plan.source_valid) < len(plan.source)
