"""The check-expression language: three-valued logic, comparisons, parameters, errors."""

from __future__ import annotations

from typing import Any

import pytest

from huitong.quality.expression import CheckSyntaxError, compile_check, substitute_params

OBS: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
    "effectiveDateTime": "2020-03-04T10:00:00Z",
    "valueQuantity": {"value": 120, "unit": "mmHg"},
    "component": [{"code": {"text": "a"}}, {"code": {"text": "b"}}],
}

T, F, E = "status = 'final'", "status = 'draft'", "issued = '2020'"  # true, false, empty


def check(text: str, resource: dict[str, Any] = OBS, **params: Any) -> bool | None:
    return compile_check(text, resource["resourceType"], params)(resource)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (T, True),
        (F, False),
        (E, None),
        # and
        (f"{T} and {T}", True),
        (f"{T} and {F}", False),
        (f"{F} and {E}", False),
        (f"{T} and {E}", None),
        (f"{E} and {E}", None),
        # or
        (f"{F} or {T}", True),
        (f"{E} or {T}", True),
        (f"{F} or {F}", False),
        (f"{F} or {E}", None),
        # xor
        (f"{T} xor {F}", True),
        (f"{T} xor {T}", False),
        (f"{T} xor {E}", None),
        # implies
        (f"{F} implies {E}", True),
        (f"{T} implies {F}", False),
        (f"{T} implies {T}", True),
        (f"{E} implies {T}", True),
        (f"{E} implies {F}", None),
        # precedence: and binds tighter than or, or tighter than implies
        (f"{T} or {F} and {F}", True),
        (f"({T} or {F}) and {F}", False),
        (f"{F} implies {F} or {F}", True),
    ],
)
def test_three_valued_logic(expr: str, expected: bool | None) -> None:
    assert check(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("value.ofType(Quantity).value > 100", True),
        ("value.ofType(Quantity).value >= 120", True),
        ("value.ofType(Quantity).value < 120", False),
        ("value.ofType(Quantity).value <= 119.5", False),
        ("value.ofType(Quantity).value != 120", False),
        ("value.ofType(Quantity).unit = 'mmHg'", True),
        ("value.ofType(Quantity).unit > 'a'", True),
        ("value.ofType(Quantity).value > 'a'", None),  # a number and a string do not compare
        ("interpretation.text < 5", None),  # empty operand
        ("component.code.text = 'a'", False),  # two values against one
        ("component.code.text.count() = 2", True),
        # dates compare as ranges; overlapping precisions give empty
        ("effective > '2019'", True),
        ("effective < '2020-03-05'", True),
        ("effective < '2020'", None),
        ("effective >= '2020-03-04T10:00:00Z'", True),
        ("effective = '2020-03-04T18:00:00+08:00'", True),
    ],
)
def test_comparisons(expr: str, expected: bool | None) -> None:
    assert check(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(status.exists()).not()", False),
        ("(dataAbsentReason.exists() or value.exists()).exists()", True),
        ("(component).count() = 2", True),
        ("(interpretation).empty()", True),
        ("(issued = '2020').not()", None),
    ],
)
def test_group_functions(expr: str, expected: bool | None) -> None:
    assert check(expr) is expected


def test_parameters_become_literals() -> None:
    expr = "value.ofType(Quantity).value >= %low and value.ofType(Quantity).value <= %high"
    assert check(expr, low=40, high=300) is True
    assert check(expr, low=40, high=100) is False
    assert check("value.ofType(Quantity).value > %floor", floor=-5.5) is True
    assert check("status = %wanted", wanted="final") is True
    assert check("status = %wanted", wanted="it's") is False
    assert check("code.coding.where(code = %code).exists()", code="8480-6") is True
    assert check("(status = 'final') = %flag", flag=True) is True


def test_substitution_leaves_strings_and_fhirpath_variables_alone() -> None:
    text = "status = '%low' and %resource.status.exists() and x > %low"
    assert substitute_params(text, {"low": 3}) == (
        "status = '%low' and %resource.status.exists() and x > 3"
    )


@pytest.mark.parametrize(
    "expr",
    [
        "status = ",
        "(status.exists()",
        "status.matches('x')",  # outside the indexer's subset
        "value > %undefined",
        "status.exists() and",
        "status # 3",
    ],
)
def test_syntax_errors(expr: str) -> None:
    with pytest.raises(CheckSyntaxError):
        compile_check(expr, "Observation", {})


def test_list_parameters_cannot_appear_in_expressions() -> None:
    with pytest.raises(CheckSyntaxError):
        compile_check("status = %codes", "Observation", {"codes": ("a", "b")})


RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Observation"},
    {"resourceType": "Observation", "status": "final"},
    {"resourceType": "Observation", "status": "draft"},
    {"resourceType": "Observation", "status": None},
    {"resourceType": "Observation", "category": []},
    {"resourceType": "Observation", "category": [None]},
    {"resourceType": "Observation", "category": [{"text": "x"}]},
    {"resourceType": "Observation", "effectivePeriod": {"start": "2020"}},
    {"resourceType": "Observation", "valueBoolean": False},
    {"resourceType": "Observation", "category": [{"coding": [{"code": "laboratory"}]}]},
    {"resourceType": "Observation", "category": [{"coding": {"code": "laboratory"}}]},
    {"resourceType": "Observation", "category": [{"coding": [None, {"code": 5}]}, "x"]},
    {"resourceType": "Observation", "category": {"coding": [{"code": "laboratory"}]}},
    {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org"}]}},
    {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org "}]}},
    {"resourceType": "Observation", "valueQuantity": {"value": 1, "unit": None}},
    {"resourceType": "Observation", "valueQuantity": {"unit": [None]}},
    {"resourceType": "Observation", "valueQuantity": {"unit": "mg", "value": [1]}},
    {"resourceType": "Observation", "valueQuantity": [{"unit": "mg"}]},
    {"resourceType": "Observation", "valueQuantity": "5 mg"},
]


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    ("fast", "general"),
    [
        ("status.exists()", "(status).exists()"),
        ("category.exists()", "(category).exists()"),
        ("effective.exists()", "(effective).exists()"),
        ("value.empty()", "(value).empty()"),
        ("focus.exists()", "(focus).exists()"),
        ("status = 'final'", "'final' = status"),
        (
            "category.coding.where(code = 'laboratory').exists()",
            "(category.coding.where(code = 'laboratory')).exists()",
        ),
        (
            "code.coding.where(system = 'http://loinc.org').empty()",
            "(code.coding.where(system = 'http://loinc.org')).empty()",
        ),
        ("value.ofType(Quantity).unit.exists()", "(value.ofType(Quantity).unit).exists()"),
        ("value.ofType(Quantity).value.empty()", "(value.ofType(Quantity).value).empty()"),
        ("value.ofType(Quantity).exists()", "(value.ofType(Quantity)).exists()"),
        ("code.text.exists()", "(code.text).exists()"),
        ("category.text.empty()", "(category.text).empty()"),
        ("subject.reference.exists()", "(subject.reference).exists()"),
        ("valueQuantity.unit.exists()", "(valueQuantity.unit).exists()"),
        ("effective.ofType(Period).empty()", "(effective.ofType(Period)).empty()"),
        ("status != 'final'", "'final' != status"),
    ],
)
def test_fast_paths_agree_with_the_general_evaluator(
    resource: dict[str, Any], fast: str, general: str
) -> None:
    assert check(fast, resource) is check(general, resource)
