"""The FHIRPath subset compiler (huitong.fhir.fhirpath)."""

from __future__ import annotations

from typing import Any

import pytest

from huitong.fhir.definitions import resource_types, search_parameters
from huitong.fhir.fhirpath import (
    UNSUPPORTED_EXPRESSIONS,
    FhirPathError,
    compile_path,
    is_subtype,
    parse_literal_reference,
)

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "BP"},
    "subject": {"reference": "Patient/p1"},
    "performer": [
        {"reference": "https://other.example/fhir/Practitioner/d1/_history/3"},
        {"reference": "urn:uuid:9d4e1c0a-0000-4000-8000-000000000001"},
        {"type": "Patient", "identifier": {"system": "urn:mrn", "value": "42"}},
        {"reference": "#contained"},
    ],
    "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
    "component": [
        {"code": {"text": "systolic"}, "valueQuantity": {"value": 120}},
        {"code": {"text": "note"}, "valueString": "sitting"},
        {"code": {"text": "when"}, "valueDateTime": "2024-01-02"},
    ],
    "extension": [
        {"url": "http://example.org/a", "valueString": "A"},
        {"url": "http://example.org/b", "valueBoolean": True},
    ],
    "meta": {"tag": [{"system": "urn:t", "code": "x"}], "profile": ["http://p|1"]},
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b"}],
    "link": [{"other": {"reference": "Patient/p2"}}],
}


def _values(expression: str, resource: dict[str, Any], context: str | None = None) -> list[Any]:
    return [value for value, _ in compile_path(expression, context)(resource)]


def _types(expression: str, resource: dict[str, Any], context: str | None = None) -> list[Any]:
    return [t for _, t in compile_path(expression, context)(resource)]


# --- the whole registry --------------------------------------------------------------------


def _registry_expressions() -> list[tuple[str, str | None]]:
    """(expression, context) pairs: every registry expression for each base type and
    untyped, and each composite component for the type its base yields."""
    pairs: list[tuple[str, str | None]] = []
    for p in search_parameters():
        expression = p["expression"]
        if not expression:
            continue
        pairs.append((expression, None))
        for base in p["base"]:
            context = base if base in resource_types() else None
            pairs.append((expression, context))
            for component in p.get("component") or ():
                node_type = compile_path(expression, context).result_type
                pairs.append((component["expression"], node_type))
                pairs.append((component["expression"], None))
    return pairs


def test_every_registry_expression_compiles() -> None:
    failures = set()
    pairs = _registry_expressions()
    for expression, context in pairs:
        try:
            compile_path(expression, context)
        except FhirPathError:
            failures.add(expression)
    assert len(pairs) > 1390
    assert failures == set(UNSUPPORTED_EXPRESSIONS)


def test_unsupported_list_is_empty() -> None:
    # Documented contract: nothing in the R4 registry is outside the supported subset.
    assert not UNSUPPORTED_EXPRESSIONS


def test_every_registry_expression_runs_on_a_resource_of_its_type() -> None:
    for p in search_parameters():
        if not p["expression"]:
            continue
        for base in p["base"]:
            if base in resource_types():
                compile_path(p["expression"], base)({"resourceType": base, "id": "x"})


# --- paths and choice types ----------------------------------------------------------------


@pytest.mark.parametrize("context", [None, "Observation"])
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Observation.status", [("final", "code")]),
        ("status", [("final", "code")]),
        ("Observation.code.coding.code", [("85354-9", "code")]),
        ("Observation.value", [({"value": 120, "unit": "mm[Hg]"}, "Quantity")]),
        ("(Observation.value as Quantity)", [({"value": 120, "unit": "mm[Hg]"}, "Quantity")]),
        ("Observation.value.as(Quantity).unit", [("mm[Hg]", "string")]),
        ("(Observation.value as CodeableConcept)", []),
        ("Observation.value.ofType(string)", []),
        ("Observation.component.value.ofType(string)", [("sitting", "string")]),
        ("Observation.component.value.as(DateTime)", [("2024-01-02", "dateTime")]),
        ("Observation.component[1].code.text", [("note", "string")]),
        ("Observation.component.first().code.text", [("systolic", "string")]),
        ("Observation.component.where(code.text = 'note').value", [("sitting", "string")]),
        ("Observation.meta.tag.code | Observation.status", [("x", "code"), ("final", "code")]),
        ("Resource.meta.profile", [("http://p|1", "canonical")]),
        ("Condition.code", []),
        ("Observation.nonsense", []),
    ],
)
def test_paths(expression: str, expected: list[Any], context: str | None) -> None:
    assert compile_path(expression, context)(OBSERVATION) == expected


def test_backbone_nodes_carry_their_element_path() -> None:
    assert set(_types("Observation.component", OBSERVATION, "Observation")) == {
        "Observation.component"
    }
    assert compile_path("Observation.component", "Observation").result_type == (
        "Observation.component"
    )


def test_component_expression_relative_to_a_backbone_node_with_resource_variable() -> None:
    component = OBSERVATION["component"][0]
    path = compile_path("value.as(Quantity) | %resource.status", "Observation.component")
    assert path(component, OBSERVATION) == [({"value": 120}, "Quantity"), ("final", "code")]


def test_union_for_other_types_is_pruned_when_the_root_type_is_known() -> None:
    path = compile_path("Condition.code | Observation.code", "Observation")
    assert path.root_keys == frozenset({"code"})
    assert compile_path("Condition.code | Procedure.code", "Observation").never_matches


@pytest.mark.parametrize(
    ("expression", "keys"),
    [
        ("Observation.code", {"code"}),
        ("Observation.effective", {"effectiveDateTime", "effectivePeriod", "effectiveTiming",
                                   "effectiveInstant"}),
        ("(Observation.value as Quantity) | Observation.component.value", {"valueQuantity",
                                                                         "component"}),
        ("Observation.extension('http://x')", {"extension"}),
        ("Observation", None),
        ("Observation.code.exists()", None),
    ],
)  # fmt: skip
def test_root_keys(expression: str, keys: set[str] | None) -> None:
    expected = None if keys is None else frozenset(keys)
    assert compile_path(expression, "Observation").root_keys == expected


# --- functions and operators ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Observation.performer.where(resolve() is Practitioner).reference",
         ["https://other.example/fhir/Practitioner/d1/_history/3"]),
        ("Observation.performer.where(resolve() is Patient).identifier.value", ["42"]),
        ("Observation.subject.where(resolve() is Patient).reference", ["Patient/p1"]),
        ("Observation.subject.where(resolve() is Group)", []),
        ("Observation.extension('http://example.org/b').value", [True]),
        ("Observation.extension.where(url = 'http://example.org/a').value", ["A"]),
        ("Observation.where(hasExtension('http://example.org/a')).id", ["o1"]),
        ("Observation.where(hasExtension('http://example.org/zz')).id", []),
        ("Observation.component.exists()", [True]),
        ("Observation.note.exists()", [False]),
        ("Observation.note.empty()", [True]),
        ("Observation.component.count()", [3]),
        ("Observation.component.code.text.last()", ["when"]),
        ("Observation.status = 'final'", [True]),
        ("Observation.status != 'final'", [False]),
        ("Observation.status = true", [False]),
        ("Observation.note = 'x'", []),
        ("Observation.code.exists() and Observation.note.exists()", [False]),
        ("Observation.code.exists() or Observation.note.exists()", [True]),
        ("Observation.code.exists() xor Observation.status.exists()", [False]),
        ("Observation.note.exists().not()", [True]),
        ("Observation.status is code", [True]),
        ("Observation.value is Quantity", [True]),
        ("Observation.value.value.hasValue()", [True]),
        ("Observation.valueQuantity", []),
        ("{}", []),
        ("Observation.component.code.text[5]", []),
    ],
)  # fmt: skip
def test_functions(expression: str, expected: list[Any]) -> None:
    assert _values(expression, OBSERVATION, "Observation") == expected
    assert _values(expression, OBSERVATION) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Patient.telecom.where(system='phone').value", ["555"]),
        ("Patient.telecom.where(system='email').value", ["a@b"]),
        ("Patient.link.other.where(resolve() is Patient).reference", ["Patient/p2"]),
        ("Patient.deceased.exists() and Patient.deceased != false", [False]),
    ],
)
def test_patient_expressions(expression: str, expected: list[Any]) -> None:
    assert _values(expression, PATIENT, "Patient") == expected


@pytest.mark.parametrize(
    ("deceased", "expected"),
    [({}, [False]), ({"deceasedBoolean": False}, [False]),
     ({"deceasedBoolean": True}, [True]), ({"deceasedDateTime": "2020-01-01"}, [True])],
)  # fmt: skip
def test_registry_deceased_expression(deceased: dict[str, Any], expected: list[bool]) -> None:
    patient = {"resourceType": "Patient", **deceased}
    path = compile_path("Patient.deceased.exists() and Patient.deceased != false", "Patient")
    assert [v for v, _ in path(patient)] == expected


def test_string_literal_escapes_and_backticks() -> None:
    resource = {"resourceType": "Patient", "telecom": [{"system": "it's", "value": "1"}]}
    assert _values(r"Patient.`telecom`.where(system = 'it\'s').value", resource) == ["1"]


def test_malformed_data_never_raises() -> None:
    odd = {
        "resourceType": "Observation",
        "code": ["x", 3, None, {"coding": "nope"}],
        "performer": {"reference": 5},
        "component": "text",
        "valueQuantity": [[{"value": 1}]],
        "extension": {"url": 1},
    }
    for p in search_parameters():
        if p["expression"] and "Observation" in p["base"]:
            compile_path(p["expression"], "Observation")(odd)
            compile_path(p["expression"])(odd)


@pytest.mark.parametrize(
    "expression",
    [
        "Observation.value + 1",
        "Observation.code.coding.select(code)",
        "Observation.value as Nonsense",
        "Observation.code.where(",
        "Observation..code",
        "Observation.code )",
        "Observation.code # x",
        "$index",
        "%ucum",
        "Observation.component[code]",
        "Observation.extension(url)",
    ],
)
def test_unsupported_or_malformed_expressions_raise(expression: str) -> None:
    with pytest.raises(FhirPathError):
        compile_path(expression, "Observation")


# --- references and types ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient/123", ("Patient", "123", None)),
        ("Patient/123/_history/4", ("Patient", "123", None)),
        ("https://h.example/fhir/Patient/a.b-1", ("Patient", "a.b-1", "https://h.example/fhir/Patient/a.b-1")),
        ("http://h/fhir/Observation/1/_history/2", ("Observation", "1", "http://h/fhir/Observation/1")),
        ("http://hl7.org/fhir/ValueSet/my-vs", ("ValueSet", "my-vs", "http://hl7.org/fhir/ValueSet/my-vs")),
        ("urn:uuid:9d4e1c0a-0000-4000-8000-000000000001", None),
        ("#contained", None),
        ("Unicorn/1", None),
        ("Patient/", None),
        ("Patient/has space", None),
        ("ftp://h/Patient/1", None),
        ("patient/1", None),
    ],
)  # fmt: skip
def test_parse_literal_reference(text: str, expected: tuple[str, str, str | None] | None) -> None:
    assert parse_literal_reference(text) == expected


@pytest.mark.parametrize(
    ("type_name", "base", "expected"),
    [
        ("Age", "Quantity", True),
        ("code", "string", True),
        ("canonical", "uri", True),
        ("Observation", "Resource", True),
        ("Observation", "DomainResource", True),
        ("Bundle", "DomainResource", False),
        ("Observation.component", "BackboneElement", True),
        ("Quantity", "Age", False),
        (None, "Quantity", False),
    ],
)
def test_is_subtype(type_name: str | None, base: str, expected: bool) -> None:
    assert is_subtype(type_name, base) is expected
