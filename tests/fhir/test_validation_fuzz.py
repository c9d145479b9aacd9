"""Property tests for huitong.fhir.validation: random damage never crashes the validator, and
every primitive is accepted exactly when the official definition says so."""

from __future__ import annotations

import copy
import datetime
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huitong.fhir.definitions import structures
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.validation import MAX_ISSUES, validate_resource

UUID = "urn:uuid:0b8d6c2e-1234-4abc-8def-0123456789ab"
EXT = {"url": "http://example.org/ext", "valueString": "x"}
REF = {"reference": UUID}

SEEDS: list[dict[str, Any]] = [
    {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "1", "tag": [{"system": "urn:x", "code": "t"}]},
        "text": {"status": "generated", "div": "<div>x</div>"},
        "extension": [{"url": "u", "extension": [EXT, {"url": "v", "valueCoding": {"code": "c"}}]}],
        "identifier": [{"system": "urn:oid:1.2.3", "value": "9", "assigner": {"display": "x"}}],
        "name": [{"family": "Wang", "given": ["A", None], "_given": [None, {"extension": [EXT]}]}],
        "gender": "female",
        "birthDate": "1970-01-31",
        "_birthDate": {"extension": [EXT]},
        "deceasedBoolean": False,
        "multipleBirthInteger": 2,
        "address": [{"line": ["1 Road"], "city": "X", "period": {"start": "2020"}}],
        "link": [{"other": {"reference": "Patient/2"}, "type": "seealso"}],
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://x", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}], "text": "x"},
        "subject": REF,
        "effectiveDateTime": "2011-10-14T23:37:54+00:00",
        "issued": "2011-10-14T23:37:54.530+00:00",
        "valueQuantity": {"value": 176.3, "unit": "cm", "system": "http://unitsofmeasure.org"},
        "component": [{"code": {"text": "c"}, "valueInteger": 3}],
    },
    {
        "resourceType": "ExplanationOfBenefit",
        "contained": [
            {
                "resourceType": "Coverage",
                "id": "c",
                "status": "active",
                "beneficiary": REF,
                "payor": [REF],
            }
        ],
        "status": "active",
        "type": {"text": "x"},
        "use": "claim",
        "patient": REF,
        "created": "2020-01-01T00:00:00Z",
        "insurer": {"display": "x"},
        "provider": REF,
        "outcome": "complete",
        "insurance": [{"focal": True, "coverage": {"reference": "#c"}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {"text": "x"},
                "net": {"value": 1, "currency": "USD"},
            }
        ],
    },
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": UUID,
                "resource": {"resourceType": "Patient", "active": True},
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    },
    {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "item": [
                    {
                        "linkId": "2",
                        "type": "boolean",
                        "enableWhen": [{"question": "1", "operator": "=", "answerBoolean": True}],
                    }
                ],
            }
        ],
    },
    {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "a", "valueString": "x"},
            {
                "name": "b",
                "part": [
                    {"name": "c", "resource": {"resourceType": "Basic", "code": {"text": "x"}}}
                ],
            },
        ],
    },
]

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "Patient", "Patient/1", UUID, "#", "2020-02-30", "<div>", "AAAA  !"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
NAMES = st.sampled_from(
    [
        "resourceType",
        "id",
        "extension",
        "url",
        "contained",
        "valueString",
        "value",
        "_value",
        "reference",
        "resource",
        "item",
        "given",
        "_given",
        "div",
        "text",
        "status",
    ]
) | st.text(max_size=10)


def locations(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in a JSON document."""
    found: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return found
    for key, value in items:
        found.append((node, key))
        found += locations(value)
    return found


def with_value(variant: str, value: Any) -> dict[str, Any]:
    """A Basic resource whose extension carries ``value`` as ``variant`` (``valueDate``...)."""
    return {
        "resourceType": "Basic",
        "code": {"text": "x"},
        "extension": [{"url": "u", variant: value}],
    }


def outcome(resource: object) -> FhirError | None:
    try:
        validate_resource(resource)
    except FhirError as error:
        return error
    return None


def assert_well_formed(error: FhirError | None) -> None:
    if error is None:
        return
    assert error.category is Category.INVALID
    assert 1 <= len(error.issues) <= MAX_ISSUES + 1
    for issue in error.issues:
        assert isinstance(issue.message, str) and issue.message
        assert issue.expression is None or isinstance(issue.expression, str)
        assert issue.code in ("structure", "required", "value", "invalid", "too-costly")


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_seeds_are_valid(seed: int) -> None:
    assert outcome(SEEDS[seed]) is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_damage_never_crashes(data: st.DataObject) -> None:
    document: Any = copy.deepcopy(data.draw(st.sampled_from(SEEDS)))
    for _ in range(data.draw(st.integers(1, 4))):
        places = locations(document)
        if not places:
            break
        container, key = data.draw(st.sampled_from(places))
        action = data.draw(st.sampled_from(["drop", "rename", "replace", "wrap", "unwrap", "null"]))
        if action == "drop":
            del container[key]
        elif action == "rename" and isinstance(container, dict):
            container[data.draw(NAMES)] = container.pop(key)
        elif action == "replace":
            container[key] = data.draw(JSON)
        elif action == "wrap":
            container[key] = [container[key]]
        elif action == "unwrap" and isinstance(container[key], list) and container[key]:
            container[key] = container[key][0]
        elif action == "null":
            container[key] = None
    before = copy.deepcopy(document)
    assert_well_formed(outcome(document))
    assert document == before  # floats, NaN included, are copied by identity


@settings(max_examples=200, deadline=None)
@given(document=JSON)
def test_arbitrary_json_never_crashes(document: Any) -> None:
    assert_well_formed(outcome(document))
    if isinstance(document, dict):
        assert_well_formed(outcome({**document, "resourceType": "Patient"}))


@settings(max_examples=200, deadline=None)
@given(suffix=st.text(max_size=10), value=JSON)
def test_unknown_properties_are_always_reported(suffix: str, value: Any) -> None:
    extra = "zz" + suffix  # no Patient element starts with "zz"
    error = outcome({"resourceType": "Patient", extra: value})
    assert error is not None
    assert (f"Patient.{extra}", "structure") in [(i.expression, i.code) for i in error.issues]


# --- primitives against the official regexes, as an independent oracle ----------------------

# Java's \s, which the official regexes assume, is ASCII whitespace only.
OFFICIAL = {
    name: re.compile(s["regex"], re.ASCII)
    for name, s in structures().items()
    if s["kind"] == "primitive-type"
    and s.get("regex")
    and name not in ("boolean", "integer", "decimal", "positiveInt", "unsignedInt")
}
ALPHABET = st.sampled_from(
    [
        *"0123456789-:.T+Z /=aAzZ_#\t\r\n",
        "\x0b",
        "\x0c",
        "\u3000",
        "\xa0",
        "汉",
        "urn:oid:",
        "urn:uuid:",
    ]
)


def official_accepts(code: str, value: str) -> bool:
    if not value or OFFICIAL[code].fullmatch(value) is None:
        return False
    if code in ("date", "dateTime", "instant") and len(value) >= 10:
        try:
            datetime.date(int(value[:4]), int(value[5:7]), int(value[8:10]))
        except ValueError:
            return False
    return True


@pytest.mark.parametrize("code", sorted(OFFICIAL))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_string_primitives_follow_the_official_regex(code: str, data: st.DataObject) -> None:
    # Hypothesis's own regex generator is slow on the base64 pattern; its quads suffice.
    valid = (
        st.lists(st.sampled_from(["QUFB", "AA==", " ", "\n"]), min_size=1, max_size=6).map("".join)
        if code == "base64Binary"
        else st.from_regex(OFFICIAL[code], fullmatch=True)
    )
    value = data.draw(valid | st.lists(ALPHABET, max_size=12).map("".join))
    variant = "value" + code[0].upper() + code[1:]
    error = outcome(with_value(variant, value))
    assert_well_formed(error)
    assert (error is None) == official_accepts(code, value), (code, value)


@settings(max_examples=300, deadline=None)
@given(
    value=st.lists(st.sampled_from(["AAAA", "AA", "=", " ", "\n", "!", "+/"]), max_size=10).map(
        "".join
    )
)
def test_base64_linear_regex_is_equivalent_to_the_official_one(value: str) -> None:
    assert (outcome(with_value("valueBase64Binary", value)) is None) == official_accepts(
        "base64Binary", value
    )


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(min_value=-(2**40), max_value=2**40),
        st.floats(),
        st.booleans(),
        st.text(max_size=5),
    )
)
def test_numbers(value: Any) -> None:
    ranges = {
        "valueInteger": (-(2**31), 2**31 - 1),
        "valueUnsignedInt": (0, 2**31 - 1),
        "valuePositiveInt": (1, 2**31 - 1),
    }
    for variant, (low, high) in ranges.items():
        in_range = type(value) is int and low <= value <= high
        assert (outcome(with_value(variant, value)) is None) == in_range, (variant, value)
    finite = type(value) is int or (type(value) is float and math.isfinite(value))
    assert (outcome(with_value("valueDecimal", value)) is None) == finite
