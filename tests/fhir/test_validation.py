"""Structural validation of FHIR R4 resources (huitong.fhir.validation)."""

from __future__ import annotations

import copy
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from huitong.fhir import validation
from huitong.fhir.definitions import resource_types, structures
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.validation import MAX_ISSUES, validate_resource, validate_resource_type_name

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYNTHEA = SHARED_DATA / "synthea-r4" / "synthea-r4-617-bundles.tar.gz"

UUID = "urn:uuid:0b8d6c2e-1234-4abc-8def-0123456789ab"
EXT = {"url": "http://example.org/ext", "valueString": "x"}


def issues(resource: object, **kwargs: Any) -> list[tuple[str | None, str | None]]:
    """(expression, code) of every issue, [] when valid; any other exception propagates."""
    try:
        validate_resource(resource, **kwargs)
    except FhirError as error:
        assert error.category is Category.INVALID
        assert error.status == 400
        assert error.issues
        return [(issue.expression, issue.code) for issue in error.issues]
    return []


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def observation(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, **elements}


def extension(**value: Any) -> dict[str, Any]:
    """A Patient carrying one extension, to try any primitive through ``value[x]``."""
    return patient(extension=[{"url": "http://example.org/ext", **value}])


# --- valid resources --------------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("minimal", patient()),
    (
        "id and meta",
        patient(id="a-1.B", meta={"versionId": "1", "lastUpdated": "2020-01-01T00:00:00Z"}),
    ),
    ("primitive extension alone", patient(_birthDate={"extension": [EXT]})),
    (
        "primitive and extension",
        patient(birthDate="1970", _birthDate={"id": "b", "extension": [EXT]}),
    ),
    (
        "parallel arrays with null gaps",
        patient(name=[{"given": ["a", None, "c"], "_given": [None, {"extension": [EXT]}, None]}]),
    ),
    ("sibling array alone", patient(name=[{"_given": [{"extension": [EXT]}]}])),
    ("choice", observation(valueQuantity={"value": 1.5, "unit": "cm"})),
    ("choice primitive with sibling", observation(valueString="x", _valueString={"id": "v"})),
    ("choice sibling alone", observation(_valueString={"extension": [EXT]})),
    ("decimal integer", observation(valueQuantity={"value": -3})),
    ("decimal exponent", observation(valueQuantity={"value": 1e-7})),
    ("integer bounds", extension(valueInteger=-(2**31))),
    ("integer upper bound", extension(valueInteger=2**31 - 1)),
    ("unsignedInt zero", extension(valueUnsignedInt=0)),
    ("positiveInt", extension(valuePositiveInt=1)),
    ("leap day", patient(birthDate="2024-02-29")),
    ("partial dates", patient(birthDate="2020-02", deceasedDateTime="2021")),
    ("dateTime with offset", patient(deceasedDateTime="2020-12-31T23:59:60.123+14:00")),
    ("instant", observation(issued="2020-01-31T10:00:00.5-05:00")),
    ("time", extension(valueTime="23:59:59.999")),
    ("code with inner spaces", patient(gender="a b c")),
    ("string with ideographic space", patient(name=[{"text": "王\u3000小明"}])),
    ("string with newlines and tabs", patient(name=[{"text": "a\r\n\tb"}])),
    ("base64 with whitespace", extension(valueBase64Binary=" QUFB\nQUFB ")),
    ("oid", extension(valueOid="urn:oid:2.16.840.1.113883")),
    ("uuid", extension(valueUuid=UUID)),
    ("uri", patient(implicitRules="urn:example")),
    ("narrative", patient(text={"status": "generated", "div": '<div xmlns="x">a</div>'})),
    ("nested extensions", patient(extension=[{"url": "u", "extension": [EXT, EXT]}])),
    ("modifier extension", patient(modifierExtension=[EXT])),
    ("backbone", patient(link=[{"other": {"reference": "Patient/2"}, "type": "seealso"}])),
    ("reference relative", observation(subject={"reference": "Patient/123"})),
    ("reference version", observation(subject={"reference": "Patient/1/_history/2"})),
    ("reference urn:uuid", observation(subject={"reference": UUID})),
    ("reference urn:oid", observation(subject={"reference": "urn:oid:1.2.3"})),
    ("reference absolute", observation(subject={"reference": "https://x.org/fhir/Patient/1"})),
    ("reference absolute unknown type", observation(focus=[{"reference": "http://x/Foo/1"}])),
    ("reference container", observation(subject={"reference": "#"})),
    ("reference contained", observation(subject={"reference": "#p1"})),
    ("reference conditional", observation(subject={"reference": "Patient?identifier=s|1"})),
    ("reference any type", observation(focus=[{"reference": "Basic/1"}])),
    ("reference in extension", extension(valueReference={"reference": "Basic/1"})),
    ("reference logical", observation(subject={"identifier": {"value": "1"}, "display": "x"})),
    ("reference extension", observation(subject={"_reference": {"extension": [EXT]}})),
    (
        "contained",
        observation(contained=[patient(id="p1")], subject={"reference": "#p1"}),
    ),
    (
        "bundle",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": UUID,
                    "resource": patient(),
                    "request": {"method": "POST", "url": "Patient"},
                },
                {"resource": {"resourceType": "Bundle", "type": "collection"}},
            ],
        },
    ),
    (
        "parameters",
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "a", "resource": patient()},
                {"name": "b", "part": [{"name": "c", "valueBoolean": False}]},
            ],
        },
    ),
    (
        "questionnaire nested items",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [
                {
                    "linkId": "1",
                    "type": "group",
                    "item": [
                        {
                            "linkId": "1.1",
                            "type": "string",
                            "item": [{"linkId": "x", "type": "display"}],
                        }
                    ],
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(("resource",), [(r,) for _, r in VALID], ids=[n for n, _ in VALID])
def test_valid(resource: dict[str, Any]) -> None:
    assert issues(resource) == []


# --- invalid resources: exact expression and issue code ---------------------------------------

Case = tuple[str, dict[str, Any], list[tuple[str, str]]]

INVALID: list[Case] = [
    # unknown and misplaced properties
    ("unknown element", patient(foo=1), [("Patient.foo", "structure")]),
    ("unknown nested", patient(name=[{"first": "a"}]), [("Patient.name[0].first", "structure")]),
    (
        "resourceType in a data type",
        patient(maritalStatus={"resourceType": "X", "text": "a"}),
        [("Patient.maritalStatus.resourceType", "structure")],
    ),
    ("choice base name", observation(value="x"), [("Observation.value", "structure")]),
    ("choice type not allowed", observation(valueUri="x"), [("Observation.valueUri", "structure")]),
    (
        "two choice variants",
        observation(valueString="x", valueBoolean=True),
        [("Observation.valueBoolean", "structure")],
    ),
    (
        "choice variant and another's sibling",
        observation(valueString="x", _valueBoolean={"id": "a"}),
        [("Observation.valueBoolean", "structure")],
    ),
    (
        "sibling of a complex element",
        patient(_maritalStatus={"id": "a"}),
        [("Patient._maritalStatus", "structure")],
    ),
    ("sibling of Resource.id", patient(id="a", _id={"id": "b"}), [("Patient._id", "structure")]),
    (
        "sibling of Extension.url",
        patient(extension=[{"url": "u", "_url": {"id": "b"}, "valueString": "x"}]),
        [("Patient.extension[0]._url", "structure")],
    ),
    (
        "sibling of Narrative.div",
        patient(text={"status": "generated", "div": "<div>a</div>", "_div": {"id": "b"}}),
        [("Patient.text._div", "structure")],
    ),
    # JSON shapes
    ("null", patient(gender=None), [("Patient.gender", "structure")]),
    ("empty string", patient(gender=""), [("Patient.gender", "value")]),
    ("empty object", patient(maritalStatus={}), [("Patient.maritalStatus", "structure")]),
    ("empty array", patient(name=[]), [("Patient.name", "structure")]),
    ("array for a single element", patient(gender=["male"]), [("Patient.gender", "structure")]),
    ("object for an array", patient(name={"family": "x"}), [("Patient.name", "structure")]),
    ("string for an object", patient(maritalStatus="S"), [("Patient.maritalStatus", "structure")]),
    ("string for an array item", patient(name=["x"]), [("Patient.name[0]", "structure")]),
    ("empty object item", patient(name=[{"family": "a"}, {}]), [("Patient.name[1]", "structure")]),
    ("null array item", patient(name=[None]), [("Patient.name[0]", "structure")]),
    (
        "empty string item",
        patient(name=[{"given": ["a", ""]}]),
        [("Patient.name[0].given[1]", "value")],
    ),
    (
        "null item without sibling",
        patient(name=[{"given": ["a", None]}]),
        [("Patient.name[0].given[1]", "structure")],
    ),
    (
        "null item and null sibling",
        patient(name=[{"given": ["a", None], "_given": [None, None]}]),
        [("Patient.name[0].given[1]", "structure")],
    ),
    (
        "sibling array of another length",
        patient(name=[{"given": ["a"], "_given": [None, {"id": "x"}]}]),
        [("Patient.name[0].given", "structure")],
    ),
    (
        "sibling array all null",
        patient(name=[{"_given": [None]}]),
        [("Patient.name[0].given[0]", "structure")],
    ),
    (
        "sibling array item not an object",
        patient(name=[{"given": ["a"], "_given": ["x"]}]),
        [("Patient.name[0].given[0]", "structure")],
    ),
    ("sibling not an object", patient(_birthDate="x"), [("Patient.birthDate", "structure")]),
    ("sibling empty", patient(_birthDate={}), [("Patient.birthDate", "structure")]),
    (
        "sibling unknown element",
        patient(_birthDate={"foo": 1}),
        [("Patient.birthDate.foo", "structure")],
    ),
    (
        "sibling extension without url",
        patient(_birthDate={"extension": [{"valueString": "x"}]}),
        [("Patient.birthDate.extension[0].url", "required")],
    ),
    (
        "sibling single for an array",
        patient(name=[{"_given": {"id": "a"}}]),
        [("Patient.name[0].given", "structure")],
    ),
    # primitive JSON types and formats
    ("boolean as string", patient(active="true"), [("Patient.active", "structure")]),
    ("boolean as number", patient(active=1), [("Patient.active", "structure")]),
    (
        "integer as boolean",
        patient(multipleBirthInteger=True),
        [("Patient.multipleBirthInteger", "structure")],
    ),
    (
        "integer as float",
        patient(multipleBirthInteger=1.0),
        [("Patient.multipleBirthInteger", "structure")],
    ),
    (
        "integer as string",
        patient(multipleBirthInteger="1"),
        [("Patient.multipleBirthInteger", "structure")],
    ),
    (
        "integer overflow",
        patient(multipleBirthInteger=2**31),
        [("Patient.multipleBirthInteger", "value")],
    ),
    (
        "integer underflow",
        patient(multipleBirthInteger=-(2**31) - 1),
        [("Patient.multipleBirthInteger", "value")],
    ),
    (
        "positiveInt zero",
        extension(valuePositiveInt=0),
        [("Patient.extension[0].valuePositiveInt", "value")],
    ),
    (
        "unsignedInt negative",
        extension(valueUnsignedInt=-1),
        [("Patient.extension[0].valueUnsignedInt", "value")],
    ),
    (
        "positiveInt in array",
        {
            "resourceType": "Claim",
            "status": "active",
            "type": {"text": "x"},
            "use": "claim",
            "patient": {"reference": "Patient/1"},
            "created": "2020",
            "provider": {"display": "x"},
            "priority": {"text": "x"},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "x"}}],
            "item": [
                {"sequence": 1, "productOrService": {"text": "x"}, "diagnosisSequence": [1, 0]}
            ],
        },
        [("Claim.item[0].diagnosisSequence[1]", "value")],
    ),
    (
        "decimal as boolean",
        observation(valueQuantity={"value": True}),
        [("Observation.valueQuantity.value", "structure")],
    ),
    (
        "decimal as string",
        observation(valueQuantity={"value": "1.0"}),
        [("Observation.valueQuantity.value", "structure")],
    ),
    (
        "decimal infinite",
        observation(valueQuantity={"value": float("inf")}),
        [("Observation.valueQuantity.value", "value")],
    ),
    (
        "decimal NaN",
        observation(valueQuantity={"value": float("nan")}),
        [("Observation.valueQuantity.value", "value")],
    ),
    ("date as number", patient(birthDate=1970), [("Patient.birthDate", "structure")]),
    ("date month 13", patient(birthDate="2023-13-01"), [("Patient.birthDate", "value")]),
    ("date 30 February", patient(birthDate="2023-02-30"), [("Patient.birthDate", "value")]),
    (
        "date 29 February, not leap",
        patient(birthDate="1900-02-29"),
        [("Patient.birthDate", "value")],
    ),
    ("date 31 April", patient(birthDate="2023-04-31"), [("Patient.birthDate", "value")]),
    ("date year 0000", patient(birthDate="0000"), [("Patient.birthDate", "value")]),
    ("date with time", patient(birthDate="2020-01-01T00:00:00Z"), [("Patient.birthDate", "value")]),
    (
        "dateTime without zone",
        patient(deceasedDateTime="2020-01-01T10:00:00"),
        [("Patient.deceasedDateTime", "value")],
    ),
    (
        "dateTime without seconds",
        patient(deceasedDateTime="2020-01-01T10:00Z"),
        [("Patient.deceasedDateTime", "value")],
    ),
    (
        "dateTime 31 June",
        patient(deceasedDateTime="2020-06-31T10:00:00Z"),
        [("Patient.deceasedDateTime", "value")],
    ),
    ("instant without time", observation(issued="2020-01-01"), [("Observation.issued", "value")]),
    (
        "time hour 24",
        extension(valueTime="24:00:00"),
        [("Patient.extension[0].valueTime", "value")],
    ),
    ("id with underscore", patient(id="a_b"), [("Patient.id", "value")]),
    ("id too long", patient(id="a" * 65), [("Patient.id", "value")]),
    ("id as number", patient(id=1), [("Patient.id", "structure")]),
    (
        "element id empty",
        patient(name=[{"id": "", "text": "x"}]),
        [("Patient.name[0].id", "value")],
    ),
    ("code with trailing space", patient(gender="male "), [("Patient.gender", "value")]),
    ("code with double space", patient(gender="a  b"), [("Patient.gender", "value")]),
    ("uri with space", patient(implicitRules="http://a b"), [("Patient.implicitRules", "value")]),
    (
        "oid without prefix",
        extension(valueOid="1.2.3"),
        [("Patient.extension[0].valueOid", "value")],
    ),
    (
        "uuid in capitals",
        extension(valueUuid=UUID.upper()),
        [("Patient.extension[0].valueUuid", "value")],
    ),
    (
        "base64 bad length",
        extension(valueBase64Binary="QUF"),
        [("Patient.extension[0].valueBase64Binary", "value")],
    ),
    (
        # Exponential in Python's engine with the official regex; linear here.
        "base64 backtracking trap",
        extension(valueBase64Binary="AAAA  " * 14 + "!"),
        [("Patient.extension[0].valueBase64Binary", "value")],
    ),
    (
        "string with vertical tab",
        patient(name=[{"family": "a\x0bb"}]),
        [("Patient.name[0].family", "value")],
    ),
    (
        "string with form feed",
        patient(name=[{"given": ["a\x0c"]}]),
        [("Patient.name[0].given[0]", "value")],
    ),
    ("markdown empty", observation(note=[{"text": ""}]), [("Observation.note[0].text", "value")]),
    # required elements
    (
        "required missing",
        {"resourceType": "Observation", "code": {"text": "x"}},
        [("Observation.status", "required")],
    ),
    (
        "required backbone element",
        patient(link=[{"type": "seealso"}]),
        [("Patient.link[0].other", "required")],
    ),
    (
        "required choice",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [
                {
                    "linkId": "1",
                    "type": "boolean",
                    "enableWhen": [{"question": "0", "operator": "exists"}],
                }
            ],
        },
        [("Questionnaire.item[0].enableWhen[0].answer[x]", "required")],
    ),
    (
        "extension without url",
        patient(extension=[{"valueString": "x"}]),
        [("Patient.extension[0].url", "required")],
    ),
    (
        "extension with two values",
        patient(extension=[{"url": "u", "valueString": "x", "valueCode": "y"}]),
        [("Patient.extension[0].valueCode", "structure")],
    ),
    (
        "nested extension",
        patient(extension=[{"url": "u", "extension": [EXT, {"valueString": "x"}]}]),
        [("Patient.extension[0].extension[1].url", "required")],
    ),
    (
        "narrative without status",
        patient(text={"div": "<div>a</div>"}),
        [("Patient.text.status", "required")],
    ),
    (
        "narrative not a div",
        patient(text={"status": "generated", "div": "<p>a</p>"}),
        [("Patient.text.div", "value")],
    ),
    (
        "narrative as object",
        patient(text={"status": "generated", "div": {"p": 1}}),
        [("Patient.text.div", "structure")],
    ),
    # nested resources
    (
        "contained without resourceType",
        patient(contained=[{"id": "a"}]),
        [("Patient.contained[0]", "required")],
    ),
    (
        "contained unknown type",
        patient(contained=[{"resourceType": "Foo"}]),
        [("Patient.contained[0]", "value")],
    ),
    (
        "contained abstract type",
        patient(contained=[{"resourceType": "DomainResource"}]),
        [("Patient.contained[0]", "value")],
    ),
    (
        "contained containing",
        patient(contained=[patient(id="a", contained=[patient(id="b")])]),
        [("Patient.contained[0].contained", "structure")],
    ),
    (
        "contained invalid",
        patient(contained=[patient(active="yes")]),
        [("Patient.contained[0].active", "structure")],
    ),
    ("contained as object", patient(contained=patient()), [("Patient.contained", "structure")]),
    (
        "bundle entry",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": patient()}, {"resource": observation(status=1)}],
        },
        [("Bundle.entry[1].resource.status", "structure")],
    ),
    (
        "bundle response outcome",
        {
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [
                {"response": {"status": "400", "outcome": {"resourceType": "OperationOutcome"}}}
            ],
        },
        [("Bundle.entry[0].response.outcome.issue", "required")],
    ),
    (
        "bundle entry link re-uses Bundle.link",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"link": [{"relation": "self"}]}],
        },
        [("Bundle.entry[0].link[0].url", "required")],
    ),
    (
        "parameters resource",
        {"resourceType": "Parameters", "parameter": [{"name": "a", "resource": patient(foo=1)}]},
        [("Parameters.parameter[0].resource.foo", "structure")],
    ),
    (
        "parameters part re-uses parameter",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "a", "part": [{"valueString": "x"}]}],
        },
        [("Parameters.parameter[0].part[0].name", "required")],
    ),
    (
        "questionnaire item re-uses item",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [
                {
                    "linkId": "1",
                    "type": "group",
                    "item": [{"linkId": "2", "type": "string", "foo": 1}],
                }
            ],
        },
        [("Questionnaire.item[0].item[0].foo", "structure")],
    ),
    # references
    (
        "reference unknown type",
        observation(subject={"reference": "Foo/1"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference type not allowed",
        observation(encounter={"reference": "Patient/1"}),
        [("Observation.encounter.reference", "value")],
    ),
    (
        "reference bad id",
        observation(subject={"reference": "Patient/a_b"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference without id",
        observation(subject={"reference": "Patient/"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference bare id",
        observation(subject={"reference": "123"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference bad history",
        observation(subject={"reference": "Patient/1/_history/"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference bad uuid",
        observation(subject={"reference": "urn:uuid:123"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference other urn",
        observation(subject={"reference": "urn:isbn:123"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference bad local",
        observation(subject={"reference": "#a b"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference with space",
        observation(subject={"reference": "Patient/1 "}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference conditional unknown type",
        observation(subject={"reference": "Foo?x=1"}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference not a string",
        observation(subject={"reference": 1}),
        [("Observation.subject.reference", "structure")],
    ),
    (
        "reference empty",
        observation(subject={"reference": ""}),
        [("Observation.subject.reference", "value")],
    ),
    (
        "reference in array",
        observation(performer=[{"reference": "Practitioner/1"}, {"reference": "Basic/1"}]),
        [("Observation.performer[1].reference", "value")],
    ),
    (
        "reference in a data type",
        patient(identifier=[{"value": "1", "assigner": {"reference": "Patient/1"}}]),
        [("Patient.identifier[0].assigner.reference", "value")],
    ),
    # several at once, in document order
    (
        "all issues reported",
        patient(foo=1, gender=1, name=[{"given": ["", "b"]}], link=[{"type": "seealso"}]),
        [
            ("Patient.foo", "structure"),
            ("Patient.gender", "structure"),
            ("Patient.name[0].given[0]", "value"),
            ("Patient.link[0].other", "required"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("resource", "expected"), [(r, e) for _, r, e in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid(resource: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert issues(resource) == expected


ROOT_ERRORS: list[tuple[str, object, str]] = [
    ("not an object", [patient()], "structure"),
    ("a string", "Patient", "structure"),
    ("null", None, "structure"),
    ("no resourceType", {"id": "1"}, "required"),
    ("unknown resourceType", {"resourceType": "Foo"}, "value"),
    ("abstract resourceType", {"resourceType": "Resource"}, "value"),
    ("data type as resourceType", {"resourceType": "HumanName"}, "value"),
    ("lower-case resourceType", {"resourceType": "patient"}, "value"),
    ("resourceType not a string", {"resourceType": ["Patient"]}, "value"),
]


@pytest.mark.parametrize(
    ("resource", "code"), [(r, c) for _, r, c in ROOT_ERRORS], ids=[n for n, _, _ in ROOT_ERRORS]
)
def test_root_errors(resource: object, code: str) -> None:
    assert issues(resource) == [(None, code)]


def test_expected_type_mismatch_is_reported_with_other_issues() -> None:
    with pytest.raises(FhirError) as caught:
        validate_resource(observation(foo=1), expected_type="Patient")
    error = caught.value
    assert error.category is Category.INVALID
    assert [(i.expression, i.code) for i in error.issues] == [
        ("Observation", "invalid"),
        ("Observation.foo", "structure"),
    ]
    assert "Observation" in error.issues[0].message and "Patient" in error.issues[0].message


def test_expected_type_match() -> None:
    assert issues(patient(), expected_type="Patient") == []


def test_issue_count_is_capped() -> None:
    resource = patient(**{f"x{i}": 1 for i in range(MAX_ISSUES + 50)})
    with pytest.raises(FhirError) as caught:
        validate_resource(resource)
    found = caught.value.issues
    assert len(found) == MAX_ISSUES + 1
    assert all(i.severity == "error" for i in found[:MAX_ISSUES])
    assert found[-1].severity == "information"


def test_deep_nesting_is_an_issue_not_a_crash() -> None:
    deep: dict[str, Any] = dict(EXT)
    for _ in range(400):
        deep = {"url": "u", "extension": [deep]}
    found = issues(patient(extension=[deep]))
    assert len(found) == 1 and found[0][1] == "structure"
    assert found[0][0] is not None and found[0][0].startswith("Patient.extension[0].extension[0]")


def test_messages_are_short_even_for_huge_values() -> None:
    with pytest.raises(FhirError) as caught:
        validate_resource(extension(valueBase64Binary="!" * 1_000_000))
    assert len(caught.value.issues[0].message) < 200


def test_input_is_not_modified() -> None:
    resource = patient(name=[{"given": ["a", None], "_given": [None, {"id": "x"}]}], foo=1)
    before = copy.deepcopy(resource)
    issues(resource)
    assert resource == before


@pytest.mark.parametrize("name", ["Patient", "Observation", "Bundle", "OperationOutcome"])
def test_resource_type_name_valid(name: str) -> None:
    validate_resource_type_name(name)


@pytest.mark.parametrize("name", ["Foo", "patient", "Resource", "DomainResource", "HumanName", ""])
def test_resource_type_name_invalid(name: str) -> None:
    with pytest.raises(FhirError) as caught:
        validate_resource_type_name(name)
    assert caught.value.category is Category.INVALID
    assert "unknown resource type" in caught.value.message


def test_public_surface() -> None:
    assert sorted(validation.__all__) == [
        "MAX_ISSUES",
        "validate_resource",
        "validate_resource_type_name",
    ]


# --- every resource type: a minimal instance built from the definitions ------------------------

SAMPLES: dict[str, Any] = {
    "boolean": True,
    "integer": -1,
    "positiveInt": 1,
    "unsignedInt": 0,
    "decimal": 1.5,
    "string": "x",
    "markdown": "*x*",
    "code": "x",
    "id": "x-1",
    "uri": "urn:x",
    "url": "http://example.org/x",
    "canonical": "http://example.org/StructureDefinition/x",
    "oid": "urn:oid:1.2.3",
    "uuid": UUID,
    "base64Binary": "QUFB",
    "date": "2020-01-31",
    "dateTime": "2020-01-31T10:00:00+08:00",
    "instant": "2020-01-31T10:00:00.000Z",
    "time": "10:00:00",
    "xhtml": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
}


def _children(structure: str, path: str) -> Iterator[tuple[str, list[Any]]]:
    prefix = path + "."
    for element_path, element in structures()[structure]["elements"].items():
        if element_path.startswith(prefix) and "." not in element_path[len(prefix) :]:
            yield element_path[len(prefix) :], element


def _required(structure: str, path: str) -> dict[str, Any]:
    """Every required child of ``path`` with a valid value (first type of a choice)."""
    out: dict[str, Any] = {}
    for name, (min_, max_, types, content_ref, *_) in _children(structure, path):
        if min_ == 0:
            continue
        if content_ref is not None:
            ref = content_ref.lstrip("#")
            key, value = name, _non_empty(_required(ref.split(".")[0], ref))
        else:
            code = types[0]
            key = name[:-3] + code[0].upper() + code[1:] if name.endswith("[x]") else name
            value = _sample(structure, f"{path}.{name}", code)
        out[key] = value if max_ == "1" else [value]
    return out


def _non_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return obj or {"extension": [EXT]}  # FHIR JSON has no empty objects


def _sample(structure: str, path: str, code: str) -> Any:
    if code in SAMPLES:
        return SAMPLES[code]
    if code in ("BackboneElement", "Element"):
        return _non_empty(_required(structure, path))
    if code == "Resource":
        return {"resourceType": "Basic", "code": {"text": "x"}}
    return _non_empty(_required(code, code))


def minimal_instance(resource_type: str) -> dict[str, Any]:
    return {"resourceType": resource_type, **_required(resource_type, resource_type)}


ALL_TYPES = sorted(resource_types())


def test_there_are_146_resource_types() -> None:
    assert len(ALL_TYPES) == 146


@pytest.mark.parametrize("resource_type", ALL_TYPES)
def test_every_type_accepts_a_minimal_instance(resource_type: str) -> None:
    resource = orjson.loads(orjson.dumps(minimal_instance(resource_type)))
    assert issues(resource, expected_type=resource_type) == []
    assert issues({"resourceType": resource_type, "id": "a", "meta": {"versionId": "1"}}) == [
        (f"{resource_type}.{name}", "required")
        for name, (min_, *_) in _children(resource_type, resource_type)
        if min_ > 0
    ]


@pytest.mark.parametrize("resource_type", ALL_TYPES)
def test_every_type_rejects_unknown_elements(resource_type: str) -> None:
    resource = {**minimal_instance(resource_type), "notAnElement": True}
    assert issues(resource) == [(f"{resource_type}.notAnElement", "structure")]


# --- real data ------------------------------------------------------------------------------


def synthea_bundles(limit: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    if not SYNTHEA.is_file():
        pytest.skip(f"Synthea sample data not found at {SYNTHEA}")
    with tarfile.open(SYNTHEA, "r:gz") as archive:
        count = 0
        for member in archive:
            # Not filtered on ".json": 30 names end in '.json"' (mangled accents), and they
            # are bundles too.
            if not member.isfile():
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            yield member.name, orjson.loads(handle.read())
            count += 1
            if limit is not None and count >= limit:
                return


def _assert_synthea_valid(limit: int | None) -> int:
    """Validate every entry resource and every bundle; return how many bundles were read."""
    problems: list[str] = []
    bundles = 0
    for name, bundle in synthea_bundles(limit):
        bundles += 1
        assert bundle["entry"]
        for entry in bundle["entry"]:
            problems += [f"{name}: {e} {c}" for e, c in issues(entry["resource"])]
        problems += [f"{name}: {e} {c}" for e, c in issues(bundle, expected_type="Bundle")]
    assert problems == []
    return bundles


def test_synthea_first_bundles_are_valid() -> None:
    assert _assert_synthea_valid(20) == 20


@pytest.mark.slow
def test_synthea_all_bundles_are_valid() -> None:
    assert _assert_synthea_valid(None) == 617
