"""Parsing FHIR searches — https://hl7.org/fhir/R4/search.html — as tables: query → model,
and query → error (category and exact message)."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl

import pytest

from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.model import (
    Chain,
    Clause,
    Has,
    Include,
    Prefix,
    SearchQuery,
    SortKey,
    Value,
)
from huitong.fhir.search.params import param_for, params_for, supported_params
from huitong.fhir.search.parse import PAGING_PARAM, parse_search
from huitong.store.search_sql import Dialect, search_count_sql, search_page_sql

DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgresql")


def parse(url: str, **kwargs: Any) -> SearchQuery:
    """``Type?a=b`` or ``?a=b`` (system-wide), decoded like a query string."""
    path, _, qs = url.partition("?")
    return parse_search(path or None, parse_qsl(qs, keep_blank_values=True), **kwargs)


def only(url: str, **kwargs: Any) -> Clause:
    q = parse(url, **kwargs)
    assert len(q.clauses) == 1, q.clauses
    return q.clauses[0]


def V(text: str, prefix: str = "eq", *parts: Value) -> Value:
    """A Value, briefly."""
    return Value(text, cast(Prefix, prefix), tuple(parts))


OBS = ("Observation",)
PAT = ("Patient",)

CLAUSES: list[tuple[str, Clause]] = [
    # string
    ("Patient?name=peter", Clause("name", "string", (V("peter"),), None, PAT)),
    ("Patient?name=peter,paul", Clause("name", "string", (V("peter"), V("paul")), None, PAT)),
    (r"Patient?name=a\,b,c", Clause("name", "string", (V("a,b"), V("c")), None, PAT)),
    (r"Patient?name=a\\b", Clause("name", "string", (V("a\\b"),), None, PAT)),
    ("Patient?name:exact=Peter", Clause("name", "string", (V("Peter"),), "exact", PAT)),
    ("Patient?name:contains=ete", Clause("name", "string", (V("ete"),), "contains", PAT)),
    ("Patient?name:missing=true", Clause("name", "string", (V("true"),), "missing", PAT)),
    # token
    ("Observation?code=1234-5", Clause("code", "token", (V("1234-5"),), None, OBS)),
    (
        "Observation?code=http://loinc.org|1234-5",
        Clause(
            "code",
            "token",
            (V("http://loinc.org|1234-5", "eq", V("http://loinc.org"), V("1234-5")),),
            None,
            OBS,
        ),
    ),
    (
        "Observation?code=|1234-5",
        Clause("code", "token", (V("|1234-5", "eq", V(""), V("1234-5")),), None, OBS),
    ),
    (
        "Observation?code=sys|",
        Clause("code", "token", (V("sys|", "eq", V("sys"), V("")),), None, OBS),
    ),
    (r"Observation?code=a\|b", Clause("code", "token", (V("a|b"),), None, OBS)),
    (
        r"Observation?code=s|a\|b",
        Clause("code", "token", (V("s|a|b", "eq", V("s"), V("a|b")),), None, OBS),
    ),
    (
        "Observation?code:text=Blood pressure",
        Clause("code", "token", (V("Blood pressure"),), "text", OBS),
    ),
    ("Observation?code:not=1234-5", Clause("code", "token", (V("1234-5"),), "not", OBS)),
    (
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
        Clause(
            "identifier",
            "token",
            (
                V(
                    "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
                    "eq",
                    V("http://terminology.hl7.org/CodeSystem/v2-0203"),
                    V("MR"),
                    V("446053"),
                ),
            ),
            "of-type",
            PAT,
        ),
    ),
    ("Patient?gender:missing=false", Clause("gender", "token", (V("false"),), "missing", PAT)),
    # reference
    (
        "Observation?subject=Patient/123",
        Clause("subject", "reference", (V("Patient/123"),), None, OBS),
    ),
    ("Observation?subject=123", Clause("subject", "reference", (V("123"),), None, OBS)),
    (
        "Observation?subject:Patient=123",
        Clause("subject", "reference", (V("123"),), "Patient", OBS),
    ),
    (
        "Observation?subject=http://other.org/fhir/Patient/1",
        Clause("subject", "reference", (V("http://other.org/fhir/Patient/1"),), None, OBS),
    ),
    (
        "QuestionnaireResponse?questionnaire=http://a.org/Q/1|2.0",
        Clause(
            "questionnaire",
            "reference",
            (V("http://a.org/Q/1|2.0", "eq", V("http://a.org/Q/1"), V("2.0")),),
            None,
            ("QuestionnaireResponse",),
        ),
    ),
    (
        "Observation?subject:identifier=urn:oid:1.2|99",
        Clause(
            "subject",
            "reference",
            (V("urn:oid:1.2|99", "eq", V("urn:oid:1.2"), V("99")),),
            "identifier",
            OBS,
        ),
    ),
    # date: every prefix
    *[
        (f"Observation?date={p}2020-01", Clause("date", "date", (V("2020-01", p),), None, OBS))
        for p in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
    ],
    (
        "Observation?date=2020-01-02T10:00:00Z",
        Clause("date", "date", (V("2020-01-02T10:00:00Z"),), None, OBS),
    ),
    (
        "Observation?date=2020,ge2021",
        Clause("date", "date", (V("2020"), V("2021", "ge")), None, OBS),
    ),
    # number: every prefix
    *[
        (
            f"RiskAssessment?probability={p}0.8",
            Clause("probability", "number", (V("0.8", p),), None, ("RiskAssessment",)),
        )
        for p in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
    ],
    (
        "RiskAssessment?probability=1e2",
        Clause("probability", "number", (V("1e2"),), None, ("RiskAssessment",)),
    ),
    (
        "RiskAssessment?probability=-5",
        Clause("probability", "number", (V("-5"),), None, ("RiskAssessment",)),
    ),
    # quantity
    (
        "Observation?value-quantity=5.4",
        Clause("value-quantity", "quantity", (V("5.4"),), None, OBS),
    ),
    (
        "Observation?value-quantity=le5.4|http://unitsofmeasure.org|mg",
        Clause(
            "value-quantity",
            "quantity",
            (
                V(
                    "5.4|http://unitsofmeasure.org|mg",
                    "le",
                    V("5.4"),
                    V("http://unitsofmeasure.org"),
                    V("mg"),
                ),
            ),
            None,
            OBS,
        ),
    ),
    (
        "Observation?value-quantity=ap5.4||mg",
        Clause(
            "value-quantity", "quantity", (V("5.4||mg", "ap", V("5.4"), V(""), V("mg")),), None, OBS
        ),
    ),
    # uri
    (
        "ValueSet?url=http://a.org/vs",
        Clause("url", "uri", (V("http://a.org/vs"),), None, ("ValueSet",)),
    ),
    (
        "ValueSet?url:below=http://a.org/",
        Clause("url", "uri", (V("http://a.org/"),), "below", ("ValueSet",)),
    ),
    (
        "ValueSet?url:above=http://a.org/x/y",
        Clause("url", "uri", (V("http://a.org/x/y"),), "above", ("ValueSet",)),
    ),
    # composite: one part per component, each parsed as its type
    (
        "Observation?code-value-quantity=http://loinc.org|8480-6$gt150|http://unitsofmeasure.org|mm[Hg]",
        Clause(
            "code-value-quantity",
            "composite",
            (
                V(
                    "http://loinc.org|8480-6$gt150|http://unitsofmeasure.org|mm[Hg]",
                    "eq",
                    V("http://loinc.org|8480-6", "eq", V("http://loinc.org"), V("8480-6")),
                    V(
                        "150|http://unitsofmeasure.org|mm[Hg]",
                        "gt",
                        V("150"),
                        V("http://unitsofmeasure.org"),
                        V("mm[Hg]"),
                    ),
                ),
            ),
            None,
            OBS,
            components=("token", "quantity"),
        ),
    ),
    (
        r"Observation?code-value-string=abc$x\$y",
        Clause(
            "code-value-string",
            "composite",
            (V("abc$x$y", "eq", V("abc"), V("x$y")),),
            None,
            OBS,
            components=("token", "string"),
        ),
    ),
    (
        "Observation?code-value-quantity:missing=true",
        Clause(
            "code-value-quantity",
            "composite",
            (V("true"),),
            "missing",
            OBS,
            components=("token", "quantity"),
        ),
    ),
    # Resource-level parameters
    ("Patient?_id=a,b", Clause("_id", "token", (V("a"), V("b")), None, PAT)),
    ("Patient?_id:not=a", Clause("_id", "token", (V("a"),), "not", PAT)),
    (
        "Patient?_lastUpdated=gt2020-01-01",
        Clause("_lastUpdated", "date", (V("2020-01-01", "gt"),), None, PAT),
    ),
    (
        "Patient?_tag=http://t|vip",
        Clause("_tag", "token", (V("http://t|vip", "eq", V("http://t"), V("vip")),), None, PAT),
    ),
    ("Patient?_security=R", Clause("_security", "token", (V("R"),), None, PAT)),
    ("Patient?_profile=http://p", Clause("_profile", "uri", (V("http://p"),), None, PAT)),
    ("Patient?_source=urn:src", Clause("_source", "uri", (V("urn:src"),), None, PAT)),
    ("Patient?_list=42", Clause("_list", "special", (V("42"),), None, PAT)),
    # chains
    (
        "Observation?subject:Patient.name=peter",
        Clause(
            "subject",
            "reference",
            (),
            None,
            OBS,
            chain=Chain(PAT, Clause("name", "string", (V("peter"),), None, PAT)),
        ),
    ),
    (
        # clinical-patient (shared by Observation and others) targets Group and Patient
        "Observation?patient.identifier=urn:x|1",
        Clause(
            "patient",
            "reference",
            (),
            None,
            OBS,
            chain=Chain(
                ("Group", "Patient"),
                Clause(
                    "identifier",
                    "token",
                    (V("urn:x|1", "eq", V("urn:x"), V("1")),),
                    None,
                    ("Group", "Patient"),
                ),
            ),
        ),
    ),
    (
        # Patient.general-practitioner targets Organization, Practitioner, PractitionerRole:
        # the chain keeps the types that define `name`
        "Patient?general-practitioner.name=who",
        Clause(
            "general-practitioner",
            "reference",
            (),
            None,
            PAT,
            chain=Chain(
                ("Organization", "Practitioner"),
                Clause("name", "string", (V("who"),), None, ("Organization", "Practitioner")),
            ),
        ),
    ),
    (
        "Encounter?patient.organization.name=acme",
        Clause(
            "patient",
            "reference",
            (),
            None,
            ("Encounter",),
            chain=Chain(
                PAT,
                Clause(
                    "organization",
                    "reference",
                    (),
                    None,
                    PAT,
                    chain=Chain(
                        ("Organization",),
                        Clause("name", "string", (V("acme"),), None, ("Organization",)),
                    ),
                ),
            ),
        ),
    ),
    (
        "Observation?subject:Patient.birthdate=ge1970",
        Clause(
            "subject",
            "reference",
            (),
            None,
            OBS,
            chain=Chain(PAT, Clause("birthdate", "date", (V("1970", "ge"),), None, PAT)),
        ),
    ),
    # reverse chains
    (
        "Patient?_has:Observation:patient:code=1234-5",
        Clause(
            "_has",
            "reference",
            (),
            None,
            PAT,
            has=Has("Observation", "patient", Clause("code", "token", (V("1234-5"),), None, OBS)),
        ),
    ),
    (
        "Patient?_has:Observation:patient:_has:AuditEvent:entity:agent=MyUserId",
        Clause(
            "_has",
            "reference",
            (),
            None,
            PAT,
            has=Has(
                "Observation",
                "patient",
                Clause(
                    "_has",
                    "reference",
                    (),
                    None,
                    OBS,
                    has=Has(
                        "AuditEvent",
                        "entity",
                        Clause("agent", "reference", (V("MyUserId"),), None, ("AuditEvent",)),
                    ),
                ),
            ),
        ),
    ),
    (
        "Patient?_has:Observation:subject:code:text=glucose",
        Clause(
            "_has",
            "reference",
            (),
            None,
            PAT,
            has=Has(
                "Observation", "subject", Clause("code", "token", (V("glucose"),), "text", OBS)
            ),
        ),
    ),
]


@pytest.mark.parametrize(("url", "expected"), CLAUSES, ids=[c[0] for c in CLAUSES])
def test_clause(url: str, expected: Clause) -> None:
    assert only(url) == expected


def test_repeated_parameters_and_their_values() -> None:
    q = parse("Observation?date=ge2020&date=lt2021&code=a,b")
    assert [(c.param, [v.text for v in c.values]) for c in q.clauses] == [
        ("date", ["2020"]),
        ("date", ["2021"]),
        ("code", ["a", "b"]),
    ]


def test_result_parameters() -> None:
    q = parse(
        "Observation?code=x&_sort=-date,_id,status&_count=5&_offset=10&_total=none"
        "&_summary=data&_elements=status,code&_include=Observation:subject:Patient"
        "&_include:iterate=Patient:general-practitioner&_revinclude=Provenance:target"
        "&_format=json&_pretty=true&_contained=false"
    )
    assert q.sort == [
        SortKey("date", "date", True),
        SortKey("_id", "token", False),
        SortKey("status", "token", False),
    ]
    assert (q.count, q.offset, q.total, q.summary) == (5, 10, "none", "data")
    assert q.elements == ["status", "code"]
    assert q.include == [
        Include("Observation", "subject", "Patient"),
        Include("Patient", "general-practitioner", None, iterate=True),
    ]
    assert q.revinclude == [Include("Provenance", "target")]
    # _offset, _format and _pretty are not "applied": the paging links set _offset themselves
    assert q.applied == [
        ("code", "x"),
        ("_sort", "-date,_id,status"),
        ("_count", "5"),
        ("_total", "none"),
        ("_summary", "data"),
        ("_elements", "status,code"),
        ("_include", "Observation:subject:Patient"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_revinclude", "Provenance:target"),
        ("_contained", "false"),
    ]
    assert PAGING_PARAM == "_offset"


@pytest.mark.parametrize(
    ("url", "kwargs", "count"),
    [
        ("Patient", {}, 20),
        ("Patient", {"default_count": 50}, 50),
        ("Patient?_count=0", {}, 0),
        ("Patient?_count=5000", {}, 1000),
        ("Patient?_count=5000", {"max_count": 200}, 200),
    ],
)
def test_count(url: str, kwargs: dict[str, Any], count: int) -> None:
    q = parse(url, **kwargs)
    assert q.count == count
    if "_count" in url:
        assert q.applied == [("_count", str(count))]


def test_include_forms() -> None:
    q = parse(
        "Observation?_include=*&_revinclude=*&_include=Observation:*&_include:recurse=Observation:subject"
    )
    assert q.include == [
        Include("*", "*"),
        Include("Observation", "*"),
        Include("Observation", "subject", iterate=True),
    ]
    assert q.revinclude == [Include("*", "*")]


def test_empty_values_are_ignored() -> None:
    q = parse("Patient?name=&gender=male&_count=")
    assert [c.param for c in q.clauses] == ["gender"]
    assert q.count == 20


def test_system_search() -> None:
    q = parse("?_id=1&_lastUpdated=gt2020")
    assert q.resource_types == ()
    assert [(c.param, c.resource_types) for c in q.clauses] == [("_id", ()), ("_lastUpdated", ())]
    q = parse("?_tag=vip&_type=Patient,Observation")
    assert q.resource_types == ("Observation", "Patient")
    assert q.clauses[0].resource_types == ("Observation", "Patient")
    # with _type, parameters defined on every listed type are allowed
    assert parse("?_type=Observation,Condition&patient=1").clauses[0].resource_types == (
        "Condition",
        "Observation",
    )


def test_compartment_search() -> None:
    q = parse_search("Observation", [("code", "x")], compartment=("Patient", "123"))
    assert q.compartment == ("Patient", "123")
    assert q.resource_types == ("Observation",)
    q = parse_search(None, [], compartment=("Patient", "123"))
    assert "Patient" in q.resource_types and "Observation" in q.resource_types
    assert "Organization" not in q.resource_types
    assert parse_search("Patient", [], compartment=("Patient", "1")).resource_types == PAT


def test_base_url_makes_local_references_relative() -> None:
    c = only(
        "Observation?subject=https://hie.example/fhir/Patient/1",
        base_url="https://hie.example/fhir/",
    )
    assert c.values == (V("Patient/1"),)
    c = only(
        "Observation?subject=https://other.example/fhir/Patient/1",
        base_url="https://hie.example/fhir",
    )
    assert c.values[0].text == "https://other.example/fhir/Patient/1"


def test_lenient_records_unknown_and_unsupported_parameters() -> None:
    q = parse("Location?foo=1&near=1|2|3|km&_text=x&name=a&_filter=x", lenient=True)
    assert q.ignored == ["foo", "near", "_text", "_filter"]
    assert [c.param for c in q.clauses] == ["name"]
    assert q.applied == [("name", "a")]


ERRORS: list[tuple[str, str]] = [
    ("Patient?foo=1", "Unknown search parameter 'foo' for resource type Patient"),
    ("Location?near=1|2|3|km", "Search parameter 'near' (type special) is not supported"),
    ("Patient?_text=x", "Search parameter '_text' (type string) is not supported"),
    ("Patient?_content=x", "Search parameter '_content' (type string) is not supported"),
    ("Patient?_query=x", "Search parameter '_query' (type token) is not supported"),
    ("?name=x", "Unknown search parameter 'name' for a system-wide search"),
    (
        "?_type=Patient,Observation&name=x",
        "Unknown search parameter 'name' for resource type Observation/Patient",
    ),
    (
        "Patient?name:text=x",
        "Modifier ':text' is not supported for parameter 'name' of type string",
    ),
    (
        "Observation?code:exact=x",
        "Modifier ':exact' is not supported for parameter 'code' of type token",
    ),
    (
        "Observation?code:in=http://vs",
        "Modifier ':in' is not supported for parameter 'code' of type token",
    ),
    (
        "Observation?code:below=x",
        "Modifier ':below' is not supported for parameter 'code' of type token",
    ),
    (
        "Observation?date:exact=2020",
        "Modifier ':exact' is not supported for parameter 'date' of type date",
    ),
    (
        "Observation?status:of-type=a|b|c",
        "Modifier ':of-type' applies only to Identifier parameters, not 'status'",
    ),
    (
        "Patient?_id:missing=true",
        "Modifier ':missing' is not supported for parameter '_id' of type token",
    ),
    ("Patient?name:=x", "Empty modifier in parameter 'name:'"),
    ("Patient?name:missing=maybe", "Parameter 'name:missing' needs the value true or false"),
    ("Patient?name=a,,b", "Empty value in the list 'a,,b' for parameter 'name'"),
    (
        "Observation?date=2020-13",
        "Invalid date '2020-13' for parameter 'date': month out of range in '2020-13'",
    ),
    (
        "Observation?date=xx2020",
        "Invalid date 'xx2020' for parameter 'date': not a FHIR date/dateTime: 'xx2020'",
    ),
    (
        "Observation?date=ge",
        "Invalid date 'ge' for parameter 'date': not a FHIR date/dateTime: 'ge'",
    ),
    ("RiskAssessment?probability=gtabc", "Invalid number 'gtabc' for parameter 'probability'"),
    ("RiskAssessment?probability=NaN", "Invalid number 'NaN' for parameter 'probability'"),
    (
        "Observation?value-quantity=5|mg",
        "Invalid quantity '5|mg' for parameter 'value-quantity': expected number, number|system|code or number||code",
    ),
    ("Observation?value-quantity=x||mg", "Invalid number 'x' for parameter 'value-quantity'"),
    ("Observation?code=a|b|c", "Invalid token 'a|b|c' for parameter 'code': more than one '|'"),
    (
        "Patient?identifier:of-type=a|b",
        "Invalid value 'a|b' for 'identifier:of-type': :of-type needs system|code|value",
    ),
    (
        "Observation?subject=Foo/1",
        "Invalid reference 'Foo/1' for parameter 'subject': expected [id], [type]/[id] or an absolute URL",
    ),
    (
        "Observation?subject=Patient/",
        "Invalid reference 'Patient/' for parameter 'subject': expected [id], [type]/[id] or an absolute URL",
    ),
    (
        "Observation?subject:Medication=1",
        "Resource type 'Medication' is not a target of reference parameter 'subject' (targets: Device, Group, Location, Patient)",
    ),
    (
        "Observation?code-value-quantity=8480-6",
        "Invalid value '8480-6' for composite parameter 'code-value-quantity': expected 2 components separated by '$'",
    ),
    (
        "Observation?code-value-quantity=8480-6$",
        "Empty component in '8480-6$' for parameter 'code-value-quantity'",
    ),
    # chains
    ("Observation?code.name=x", "Cannot chain on 'code': only reference parameters can be chained"),
    (
        "Observation?subject:missing.name=x",
        "Modifier ':missing' cannot be used in a chain ('subject:missing.name')",
    ),
    ("Observation?subject.=x", "Empty chained parameter in 'subject.'"),
    (
        "Observation?subject:Patient.foo=x",
        "Unknown search parameter 'foo' for resource type Patient",
    ),
    (
        "DiagnosticReport?assessed-condition.code=x",
        "Chained parameter 'assessed-condition.code' needs a target type ('assessed-condition:[type].…'): 'assessed-condition' may refer to any resource type",
    ),
    (
        "Patient?organization.partof.partof.partof.partof.partof.name=x",
        "Parameter 'organization.partof.partof.partof.partof.partof.name' chains more than 4 levels",
    ),
    # reverse chains
    (
        "Patient?_has:Observation:patient=x",
        "Invalid reverse chain '_has:Observation:patient': expected _has:[type]:[reference]:[parameter]",
    ),
    ("Patient?_has:Foo:patient:code=x", "Unknown resource type 'Foo' in '_has:Foo:patient:code'"),
    (
        "Patient?_has:Observation:code:code=x",
        "'code' is not a reference parameter of Observation (in '_has:Observation:code:code')",
    ),
    (
        "Organization?_has:Observation:patient:code=x",
        "Observation.patient cannot refer to Organization (in '_has:Observation:patient:code')",
    ),
    (
        "?_has:Observation:patient:code=x",
        "'_has:Observation:patient:code' needs a resource type: _has is not a system-wide search",
    ),
    (
        "Patient?_has:Observation:patient:foo=x",
        "Unknown search parameter 'foo' for resource type Observation",
    ),
    # result parameters
    ("Patient?_count=-1", "Parameter '_count' needs a whole number from 0 to 999999999, not '-1'"),
    (
        "Patient?_count=ten",
        "Parameter '_count' needs a whole number from 0 to 999999999, not 'ten'",
    ),
    (
        "Patient?_offset=1.5",
        "Parameter '_offset' needs a whole number from 0 to 999999999, not '1.5'",
    ),
    ("Patient?_count=1&_count=2", "Parameter '_count' may appear only once"),
    ("Patient?_count:exact=1", "Parameter '_count' takes no modifier ('_count:exact')"),
    ("Patient?_total=some", "_total must be none, estimate or accurate, not 'some'"),
    ("Patient?_summary=short", "_summary must be true, text, data, count or false, not 'short'"),
    ("Patient?_elements=name,1x", "Invalid element name '1x' in _elements"),
    (
        "Patient?_sort=foo",
        "Cannot sort on 'foo': Unknown search parameter '_sort=foo' for resource type Patient",
    ),
    ("Patient?_sort=-", "Empty sort key in _sort=-"),
    (
        "Observation?_sort=code-value-quantity",
        "Cannot sort on 'code-value-quantity': parameters of type composite are not sortable",
    ),
    (
        "Observation?_sort=_list",
        "Cannot sort on '_list': parameters of type special are not sortable",
    ),
    (
        "Patient?_include=Patient",
        "Invalid _include 'Patient': expected [type]:[parameter] or [type]:[parameter]:[target type]",
    ),
    ("Patient?_include=Foo:bar", "Unknown resource type 'Foo' in _include=Foo:bar"),
    (
        "Patient?_include=Patient:name",
        "'name' is not a reference parameter of Patient (in _include=Patient:name)",
    ),
    (
        "Patient?_include=Patient:organization:Patient",
        "'Patient' is not a target of Patient:organization (in _include=Patient:organization:Patient)",
    ),
    (
        "Patient?_include:deep=Patient:organization",
        "Unknown modifier in '_include:deep': only :iterate is allowed",
    ),
    (
        "Patient?_revinclude=Provenance:target:Nope",
        "Unknown resource type 'Nope' in _revinclude=Provenance:target:Nope",
    ),
    ("Patient?_type=Patient", "_type is only allowed in a system-wide search"),
    ("?_type=Patient,Nope", "Unknown resource type 'Nope' in _type"),
    ("Patient?_contained=true", "_contained is not supported (only _contained=false)"),
    ("Patient?_containedType=contained", "Parameter '_containedType' is not supported"),
]


@pytest.mark.parametrize(("url", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_error(url: str, message: str) -> None:
    with pytest.raises(FhirError) as info:
        parse(url)
    assert info.value.category is Category.INVALID
    assert info.value.message == message
    assert info.value.status == 400


def test_error_names_the_parameter() -> None:
    with pytest.raises(FhirError) as info:
        parse("Observation?code:exact=x")
    assert info.value.issues[0].expression == "code:exact"


@pytest.mark.parametrize(
    ("resource_type", "kwargs", "message"),
    [
        ("Nope", {}, "Unknown resource type 'Nope'"),
        ("Observation", {"compartment": ("Nope", "1")}, "'Nope' is not a compartment type"),
        (
            "Organization",
            {"compartment": ("Patient", "1")},
            "Resource type Organization is not in the Patient compartment",
        ),
        ("Observation", {"compartment": ("Patient", "a/b")}, "Invalid compartment id 'a/b'"),
    ],
)
def test_bad_target(resource_type: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(FhirError) as info:
        parse_search(resource_type, [], **kwargs)
    assert (info.value.category, info.value.message) == (Category.INVALID, message)


def test_bad_values_are_errors_even_when_lenient() -> None:
    with pytest.raises(FhirError, match="Invalid date"):
        parse("Observation?date=soon&foo=1", lenient=True)


# -- the registry is the single truth of what is supported ------------------------------------


def test_registry_shapes() -> None:
    code = param_for("Observation", "code")
    assert code is not None and (code.type, code.url) == (
        "token",
        "http://hl7.org/fhir/SearchParameter/clinical-code",
    )
    cvq = param_for("Observation", "code-value-quantity")
    assert cvq is not None
    assert [(c.code, c.type) for c in cvq.components] == [
        ("code", "token"),
        ("value-quantity", "quantity"),
    ]
    subject = param_for("Observation", "subject")
    assert subject is not None and subject.targets == ("Group", "Device", "Patient", "Location")
    assert param_for("Patient", "_id") is param_for(None, "_id")
    assert param_for("Patient", "nope") is None
    assert set(params_for(None)) >= {
        "_id",
        "_lastUpdated",
        "_tag",
        "_profile",
        "_security",
        "_source",
        "_list",
    }


def test_supported_params_exclude_what_cannot_run() -> None:
    location = {p.code for p in supported_params("Location")}
    assert "name" in location and "near" not in location
    patient = {p.code for p in supported_params("Patient")}
    assert {"_id", "_lastUpdated", "_list", "name", "birthdate"} <= patient
    assert not patient & {"_text", "_content", "_query", "_filter", "_has"}
    assert [p.code for p in supported_params(None)] == [
        "_id", "_lastUpdated", "_list", "_profile", "_security", "_source", "_tag",
    ]  # fmt: skip
    assert supported_params("Nope") == ()


@pytest.mark.parametrize("resource_type", sorted(resource_types()))
def test_every_supported_parameter_parses_and_compiles(resource_type: str) -> None:
    """What the CapabilityStatement lists, the parser accepts and both SQL dialects compile;
    what it leaves out, the parser refuses."""
    for definition in params_for(resource_type).values():
        modifier = "" if definition.code in ("_id", "_list") else ":missing"
        pairs = [(definition.code + modifier, "true" if modifier else "x")]
        if not definition.supported:
            with pytest.raises(FhirError, match="is not supported"):
                parse_search(resource_type, pairs)
            continue
        q = parse_search(resource_type, pairs)
        for dialect in DIALECTS:
            sql, params = search_page_sql(q, dialect)
            assert sql.count("?" if dialect == "sqlite" else "%s") == len(params)
            sql, params = search_count_sql(q, dialect)
            assert sql.count("?" if dialect == "sqlite" else "%s") == len(params)
