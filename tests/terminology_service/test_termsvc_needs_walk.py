"""The write path's cheap pre-check (``needs_walk``) against the walk it stands in for: a
resource the pre-check lets through unwalked must be one the walk would leave unchanged and
unqueued. Pure functions: no database."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from huitong.terminology.ingest import translate_resource
from huitong.terminology.write_path import (
    _NOTHING,
    _QUANTITIES,
    _WALK,
    CompiledMaps,
    _Deferred,
    _precheck,
    needs_walk,
    normalise_known_quantities,
)
from huitong_testdata import synthea_bundles

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
GLUCOSE = {"coding": [{"system": LOINC, "code": "2339-0", "display": "Glucose"}]}
WEIGHT = {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]}


def _q(value: float, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


def _obs(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final",
            "meta": {"versionId": "1", "tag": [{"system": "urn:huitong:x", "code": "y"}]},
            **elements}  # fmt: skip


CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("weight already in kg", _obs(code=WEIGHT, valueQuantity=_q(70, "kg")), False),
    ("weight in pounds", _obs(code=WEIGHT, valueQuantity=_q(154, "[lb_av]")), True),
    ("glucose already in mmol/L", _obs(code=GLUCOSE, valueQuantity=_q(5.5, "mmol/L")), False),
    ("glucose in mg/dL", _obs(code=GLUCOSE, valueQuantity=_q(99, "mg/dL")), True),
    (
        "unit written mmHg, not UCUM",
        _obs(code=WEIGHT, valueQuantity={"value": 120, "unit": "mmHg"}),
        True,
    ),
    (
        "component in preferred units",
        _obs(
            code=WEIGHT,
            component=[
                {"code": WEIGHT, "valueQuantity": _q(70, "kg")},
                {"code": WEIGHT, "valueQuantity": _q(71, "kg")},
            ],
        ),
        False,
    ),
    (
        "one component in pounds",
        _obs(
            code=WEIGHT,
            component=[
                {"code": WEIGHT, "valueQuantity": _q(70, "kg")},
                {"code": WEIGHT, "valueQuantity": _q(150, "[lb_av]")},
            ],
        ),
        True,
    ),
    (
        "reference range in preferred unit",
        _obs(
            code=GLUCOSE,
            valueQuantity=_q(5, "mmol/L"),
            referenceRange=[{"low": _q(3.9, "mmol/L"), "high": _q(6.1, "mmol/L")}],
        ),
        False,
    ),
    (
        "reference range in mg/dL",
        _obs(
            code=GLUCOSE, valueQuantity=_q(5, "mmol/L"), referenceRange=[{"low": _q(70, "mg/dL")}]
        ),
        True,
    ),
    # A quantity where the pre-check does not look: always walked.
    (
        "quantity in an extension",
        _obs(
            code=WEIGHT,
            valueQuantity=_q(70, "kg"),
            extension=[{"url": "urn:x", "valueQuantity": _q(154, "[lb_av]")}],
        ),
        True,
    ),
    # The walk looks up a coding whose system has no ":" (and queues it when unmapped).
    (
        "local system without a colon",
        _obs(
            code={"coding": [{"system": "lab-local", "code": "GLU"}]}, valueQuantity=_q(5, "mmol/L")
        ),
        True,
    ),
    ("coding without a system", _obs(code={"coding": [{"code": "GLU"}]}), True),
    (
        "system with an escaped quote",
        _obs(
            identifier=[{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}],
            code={"coding": [{"system": 'urn:x"y', "code": "1"}]},
        ),
        True,
    ),
    ("standard codes, no quantity", _obs(code=WEIGHT, valueString="n/a"), False),
    ("local code, no quantity", _obs(code={"coding": [{"system": "urn:lab", "code": "1"}]}), True),
]


def _walk_changes(resource: dict[str, Any]) -> bool:
    deferred = _Deferred(CompiledMaps({}, (0, 0)), lambda: None)
    result = translate_resource(resource, deferred, normalise_units=True)
    return result.resource is not resource or bool(result.unmapped or result.added)


@pytest.mark.parametrize(("name", "resource", "walked"), CASES, ids=[c[0] for c in CASES])
def test_needs_walk_is_exact_where_it_skips(
    name: str, resource: dict[str, Any], walked: bool
) -> None:
    before = copy.deepcopy(resource)
    assert needs_walk(resource, units=True) is walked
    assert resource == before  # the pre-check reads only
    if not walked:
        assert not _walk_changes(resource)


UNITS_OFF = [
    ("weight in pounds", _obs(code=WEIGHT, valueQuantity=_q(154, "[lb_av]")), False),
    ("glucose in mg/dL", _obs(code=GLUCOSE, valueQuantity=_q(99, "mg/dL")), False),
    (
        "local system without a colon",
        _obs(
            code={"coding": [{"system": "lab-local", "code": "GLU"}]}, valueQuantity=_q(5, "mmol/L")
        ),
        False,
    ),
    ("local code", _obs(code={"coding": [{"system": "urn:lab", "code": "1"}]}), True),
]


@pytest.mark.parametrize(("name", "resource", "walked"), UNITS_OFF,
                         ids=[c[0] for c in UNITS_OFF])  # fmt: skip
def test_with_units_off_only_codings_count(
    name: str, resource: dict[str, Any], walked: bool
) -> None:
    assert needs_walk(resource, units=False) is walked


def test_quantities_alone_are_normalised_as_the_walk_does() -> None:
    """Resources whose only change is a measured quantity of their own or of a component
    skip the walk (``normalise_known_quantities``): the result must be the walk's, and the
    input untouched. Checked on every such Synthea resource, and the cases above."""
    maps = CompiledMaps({}, (0, 0))
    resources = [c for _, c, _ in CASES] + [
        e["resource"] for body in synthea_bundles(15) for e in orjson.loads(body)["entry"]
    ]
    seen = 0
    for resource in resources:
        if _precheck(resource, True) != _QUANTITIES:
            continue
        seen += 1
        before = copy.deepcopy(resource)
        deferred = _Deferred(maps, lambda: None)
        walked = translate_resource(copy.deepcopy(resource), deferred).resource
        assert normalise_known_quantities(resource) == walked
        assert resource == before
        assert orjson.dumps(normalise_known_quantities(resource)) == orjson.dumps(walked)
    assert seen > 50


_ORIGINAL = "http://example.org/original"
ONE_NODE = [
    ("one value in its unit", _obs(code=WEIGHT, valueQuantity=_q(70, "kg")), _NOTHING),
    ("one value to convert", _obs(code=WEIGHT, valueQuantity=_q(154, "[lb_av]")), _QUANTITIES),
    ("a range, no value", _obs(code=GLUCOSE, referenceRange=[{"low": _q(70, "mg/dL")}]),
     _QUANTITIES),
    ("value and range", _obs(code=WEIGHT, valueQuantity=_q(70, "kg"),
                             referenceRange=[{"low": _q(50, "kg")}]), _NOTHING),
    ("a second value in an extension",
     _obs(code=WEIGHT, valueQuantity=_q(70, "kg"),
          extension=[{"url": _ORIGINAL, "valueQuantity": _q(70, "kg")}]), _WALK),
    ("the only value in an extension",
     _obs(code=WEIGHT, extension=[{"url": _ORIGINAL, "valueQuantity": _q(70, "kg")}]), _WALK),
    ("component not a list", _obs(code=WEIGHT, valueQuantity=_q(70, "kg"), component={}),
     _NOTHING),
    ("a value that is not a Quantity", _obs(code=WEIGHT, valueQuantity=[_q(70, "kg")]),
     _NOTHING),
]  # fmt: skip


@pytest.mark.parametrize(("name", "resource", "found"), ONE_NODE, ids=[c[0] for c in ONE_NODE])
def test_one_node_shortcut_answers_as_the_loop(name: str, resource: dict[str, Any],
                                               found: int) -> None:
    """A resource with one measured node takes a shortcut through _quantity_changes; its
    answer is the general loop's, and a skipped walk would have changed nothing."""
    assert _precheck(resource, True) == found
    if found == _NOTHING:
        assert not _walk_changes(copy.deepcopy(resource))


def test_skipped_synthea_resources_are_ones_the_walk_leaves_alone() -> None:
    """Every Synthea resource the pre-check lets through untouched is one the walk would
    not change (no ConceptMap stored: only quantities could change)."""
    skipped = 0
    for body in synthea_bundles(12):
        for entry in orjson.loads(body)["entry"]:
            resource = entry["resource"]
            if _precheck(resource, True) == _NOTHING:
                skipped += 1
                assert not _walk_changes(copy.deepcopy(resource)), resource.get("id")
    assert skipped > 1000
