"""The search indexer (huitong.fhir.index): concrete rows per parameter type."""

from __future__ import annotations

import math
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huitong.fhir.dates import parse_date_range
from huitong.fhir.definitions import resource_types, structures
from huitong.fhir.index import index_resource
from huitong.fhir.index_model import DATE_MAX, DATE_MIN, IndexEntries

SYNTHEA = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "synthea-r4"
    / "synthea-r4-617-bundles.tar.gz"
)


def rows(entries: IndexEntries, table: str, param: str) -> list[tuple[Any, ...]]:
    """The rows of ``param`` in ``table``, without the leading param name."""
    return [row[1:] for row in getattr(entries, table) if row[0] == param]


def day(text: str) -> tuple[int, int]:
    return parse_date_range(text)


# --- Patient -------------------------------------------------------------------------------

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {
        "lastUpdated": "2024-01-01T00:00:00Z",
        "tag": [{"system": "urn:tags", "code": "demo"}],
        "security": [{"system": "urn:sec", "code": "R"}],
        "profile": ["http://example.org/StructureDefinition/p|2.0"],
    },
    "active": True,
    "identifier": [
        {"system": "urn:mrn", "value": "M-1", "type": {"text": "Medical Record Number"}},
        {"system": "urn:mrn", "value": "M-1", "type": {"text": "Medical Record Number"}},
        {"system": "urn:id", "value": "110", "type": {"coding": [{"display": "National ID"}]}},
    ],
    "name": [
        {"family": "Müller", "given": ["Peter", "James"], "prefix": ["Mr."],
         "text": "Peter Müller"},
        {"family": "王", "given": ["小明"]},
    ],
    "telecom": [
        {"system": "phone", "value": "+86 10 1234"},
        {"system": "email", "value": "Peter@Example.org"},
    ],
    "gender": "male",
    "birthDate": "1974-12",
    "address": [
        {"line": ["1 Main St", "Apt 2"], "city": "Hong Kong", "postalCode": "999077",
         "country": "CN", "state": "HK"},
    ],
    "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-extensions-Patient-mothersMaidenName",
         "valueString": "Lee"},
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("table", "param", "expected"),
    [
        ("string", "family", [(0, "muller", "Müller"), (0, "王", "王")]),
        ("string", "given", [(0, "peter", "Peter"), (0, "james", "James"), (0, "小明", "小明")]),
        ("string", "name", [(0, "muller", "Müller"), (0, "peter", "Peter"), (0, "james", "James"),
                            (0, "mr.", "Mr."), (0, "peter muller", "Peter Müller"),
                            (0, "王", "王"), (0, "小明", "小明")]),
        ("string", "address", [(0, "1 main st", "1 Main St"), (0, "apt 2", "Apt 2"),
                               (0, "hong kong", "Hong Kong"), (0, "hk", "HK"),
                               (0, "999077", "999077"), (0, "cn", "CN")]),
        ("string", "address-city", [(0, "hong kong", "Hong Kong")]),
        ("string", "address-postalcode", [(0, "999077", "999077")]),
        ("string", "mothersMaidenName", [(0, "lee", "Lee")]),
        ("token", "identifier", [(0, "urn:mrn", "M-1", "medical record number"),
                                 (0, "urn:id", "110", "national id")]),
        ("token", "telecom", [(0, None, "+86 10 1234", None),
                              (0, None, "Peter@Example.org", None)]),
        ("token", "phone", [(0, None, "+86 10 1234", None)]),
        ("token", "email", [(0, None, "Peter@Example.org", None)]),
        ("token", "gender", [(0, None, "male", None)]),
        ("token", "active", [(0, None, "true", None)]),
        ("token", "deceased", [(0, None, "false", None)]),
        ("token", "_tag", [(0, "urn:tags", "demo", None)]),
        ("token", "_security", [(0, "urn:sec", "R", None)]),
        ("token", "_id", []),
        ("date", "birthdate", [(0, day("1974-12")[0], day("1974-12")[1])]),
        ("date", "_lastUpdated", []),
        ("reference", "link", [(0, "Patient", "p2", None)]),
        ("uri", "_profile", [(0, "http://example.org/StructureDefinition/p|2.0"),
                             (0, "http://example.org/StructureDefinition/p")]),
    ],
)  # fmt: skip
def test_patient_rows(table: str, param: str, expected: list[tuple[Any, ...]]) -> None:
    assert rows(index_resource(PATIENT), table, param) == expected


def test_patient_is_its_own_compartment_first() -> None:
    assert index_resource(PATIENT).patients == ["p1", "p2"]
    assert index_resource({"resourceType": "Patient"}).patients == []


# --- Observation ---------------------------------------------------------------------------

LOINC = "http://loinc.org"
GLUCOSE_CODE = [(0, LOINC, "15074-8", "glucose"), (0, None, None, "blood glucose")]
UCUM = "http://unitsofmeasure.org"
GLUCOSE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "laboratory"}]}],
    "code": {"coding": [{"system": LOINC, "code": "15074-8", "display": "Glucose"}],
             "text": "Blood glucose"},
    "subject": {"reference": "Patient/p1"},
    "performer": [{"reference": "Practitioner/d1"}, {"reference": "Patient/p3"}],
    "effectiveDateTime": "2024-01-02T03:04:05+08:00",
    "issued": "2024-01-02T04:00:00.123Z",
    "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
}  # fmt: skip
BP_PANEL: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "bp",
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
    "subject": {"reference": "Patient/p1"},
    "effectivePeriod": {"start": "2024-01-02", "end": "2024-01-03"},
    "component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "9999-9"}]},
         "dataAbsentReason": {"text": "not measured"}},
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "table", "param", "expected"),
    [
        (GLUCOSE, "token", "code", GLUCOSE_CODE),
        (GLUCOSE, "token", "status", [(0, None, "final", None)]),
        (GLUCOSE, "token", "category", [(0, "http://terminology.hl7.org/CodeSystem/observation-category",
                                         "laboratory", None)]),
        (GLUCOSE, "quantity", "value-quantity", [(0, UCUM, "mmol/L", "mmol/L", 5.4, 5.35, 5.45)]),
        (GLUCOSE, "date", "date", [(0, *day("2024-01-02T03:04:05+08:00"))]),
        (GLUCOSE, "reference", "subject", [(0, "Patient", "p1", None)]),
        (GLUCOSE, "reference", "patient", [(0, "Patient", "p1", None)]),
        (GLUCOSE, "reference", "performer", [(0, "Practitioner", "d1", None),
                                             (0, "Patient", "p3", None)]),
        (GLUCOSE, "token", "code-value-quantity$0", [(1, LOINC, "15074-8", "glucose"),
                                                     (1, None, None, "blood glucose")]),
        (GLUCOSE, "quantity", "code-value-quantity$1",
         [(1, UCUM, "mmol/L", "mmol/L", 5.4, 5.35, 5.45)]),
        (GLUCOSE, "token", "code-value-concept$0", []),
        (GLUCOSE, "token", "combo-code", GLUCOSE_CODE),
        (BP_PANEL, "date", "date", [(0, day("2024-01-02")[0], day("2024-01-03")[1])]),
        (BP_PANEL, "quantity", "value-quantity", []),
        (BP_PANEL, "quantity", "component-value-quantity", [
            (0, UCUM, "mm[Hg]", "mmHg", 120.0, 119.5, 120.5),
            (0, UCUM, "mm[Hg]", "mmHg", 80.0, 79.5, 80.5)]),
        (BP_PANEL, "token", "component-code", [(0, LOINC, "8480-6", None),
                                               (0, LOINC, "8462-4", None),
                                               (0, LOINC, "9999-9", None)]),
        (BP_PANEL, "token", "component-code-value-quantity$0", [(1, LOINC, "8480-6", None),
                                                               (2, LOINC, "8462-4", None)]),
        (BP_PANEL, "quantity", "component-code-value-quantity$1", [
            (1, UCUM, "mm[Hg]", "mmHg", 120.0, 119.5, 120.5),
            (2, UCUM, "mm[Hg]", "mmHg", 80.0, 79.5, 80.5)]),
        (BP_PANEL, "token", "combo-code-value-quantity$0", [(1, LOINC, "8480-6", None),
                                                           (2, LOINC, "8462-4", None)]),
        (BP_PANEL, "token", "code-value-quantity$0", []),
        (BP_PANEL, "token", "combo-code", [(0, LOINC, "85354-9", None), (0, LOINC, "8480-6", None),
                                           (0, LOINC, "8462-4", None), (0, LOINC, "9999-9", None)]),
    ],
)  # fmt: skip
def test_observation_rows(
    resource: dict[str, Any], table: str, param: str, expected: list[tuple[Any, ...]]
) -> None:
    assert rows(index_resource(resource), table, param) == expected


def test_observation_compartment_follows_subject_and_performer() -> None:
    assert index_resource(GLUCOSE).patients == ["p1", "p3"]


@pytest.mark.parametrize(
    ("value", "table", "param", "expected"),
    [
        ({"valueString": "Positive  Result"}, "string", "value-string",
         [(0, "positive result", "Positive  Result")]),
        ({"valueCodeableConcept": {"coding": [{"system": "urn:s", "code": "POS"}]}}, "token",
         "value-concept", [(0, "urn:s", "POS", None)]),
        ({"valueCodeableConcept": {"text": "Present"}}, "string", "value-string",
         [(0, "present", "Present")]),
        ({"valueDateTime": "2020-05"}, "date", "value-date", [(0, *day("2020-05"))]),
        ({"valuePeriod": {"start": "2020-05-01"}}, "date", "value-date",
         [(0, day("2020-05-01")[0], DATE_MAX)]),
        ({"valueQuantity": {"value": 100, "comparator": "<", "unit": "mg"}}, "quantity",
         "value-quantity", [(0, None, "mg", "mg", 100.0, -math.inf, 100.5)]),
        ({"valueQuantity": {"value": 0.001, "code": "g", "system": UCUM}}, "quantity",
         "value-quantity", [(0, UCUM, "g", None, 0.001, 0.0005, 0.0015)]),
        ({"valueQuantity": {"unit": "mg"}}, "quantity", "value-quantity", []),
        ({"valueCodeableConcept": {"coding": [{"code": "POS"}]}}, "token", "code-value-concept$1",
         [(1, None, "POS", None)]),
        ({"valueString": "high"}, "string", "code-value-string$1", [(1, "high", "high")]),
        ({"valueDateTime": "2021"}, "date", "code-value-date$1", [(1, *day("2021"))]),
    ],
)  # fmt: skip
def test_observation_value_choices(
    value: dict[str, Any], table: str, param: str, expected: list[tuple[Any, ...]]
) -> None:
    resource = {"resourceType": "Observation", "code": {"coding": [{"code": "x"}]}, **value}
    assert rows(index_resource(resource), table, param) == expected


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effective", "expected"),
    [
        ({"effectiveDateTime": "2020"}, [day("2020")]),
        ({"effectiveDateTime": "2020-02"}, [day("2020-02")]),
        ({"effectiveDateTime": "2020-02-03"}, [day("2020-02-03")]),
        ({"effectiveDateTime": "2020-02-03T04:05:06Z"}, [day("2020-02-03T04:05:06Z")]),
        ({"effectiveInstant": "2020-02-03T04:05:06.789+01:00"},
         [day("2020-02-03T04:05:06.789+01:00")]),
        ({"effectiveDateTime": "2020-02-30"}, []),
        ({"effectiveDateTime": "yesterday"}, []),
        ({"effectivePeriod": {"end": "2020-02"}}, [(DATE_MIN, day("2020-02")[1])]),
        ({"effectivePeriod": {"start": "2020", "end": "2021"}}, [(day("2020")[0], day("2021")[1])]),
        ({"effectivePeriod": {"start": "bad", "end": "2021"}}, []),
        ({"effectivePeriod": {}}, []),
        ({"effectiveTiming": {"event": ["2020-01-01", "2020-01-08"],
                              "repeat": {"boundsPeriod": {"start": "2020-01-01"}}}},
         [day("2020-01-01"), day("2020-01-08"), (day("2020-01-01")[0], DATE_MAX)]),
    ],
)  # fmt: skip
def test_date_precisions(effective: dict[str, Any], expected: list[tuple[int, int]]) -> None:
    entries = index_resource({"resourceType": "Observation", **effective})
    assert [(lo, hi) for _, lo, hi in rows(entries, "date", "date")] == expected


def test_encounter_period() -> None:
    encounter = {
        "resourceType": "Encounter",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-03-01T08:00:00+08:00", "end": "2024-03-01T09:30:00+08:00"},
    }
    entries = index_resource(encounter)
    start = day("2024-03-01T08:00:00+08:00")[0]
    end = day("2024-03-01T09:30:00+08:00")[1]
    assert rows(entries, "date", "date") == [(0, start, end)]
    assert rows(entries, "reference", "patient") == [(0, "Patient", "p1", None)]
    assert entries.patients == ["p1"]


# --- references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "references", "tokens"),
    [
        ({"reference": "Patient/123"}, [(0, "Patient", "123", None)], []),
        ({"reference": "Patient/123/_history/7"}, [(0, "Patient", "123", None)], []),
        ({"reference": "https://hie.example/fhir/Patient/123"},
         [(0, "Patient", "123", "https://hie.example/fhir/Patient/123")], []),
        ({"reference": "https://hie.example/fhir/Patient/123/_history/2"},
         [(0, "Patient", "123", "https://hie.example/fhir/Patient/123")], []),
        # another server's Patient/123 is not ours: URL only
        ({"reference": "https://other.example/fhir/Patient/123"},
         [(0, None, None, "https://other.example/fhir/Patient/123")], []),
        ({"reference": "urn:uuid:2a3c1b0e-1111-4222-8333-444455556666"},
         [(0, None, None, "urn:uuid:2a3c1b0e-1111-4222-8333-444455556666")], []),
        ({"reference": "#p1"}, [], []),
        ({"identifier": {"system": "urn:mrn", "value": "M-1"}}, [],
         [(0, "urn:mrn", "M-1", None)]),
        ({"reference": "Group/g1", "identifier": {"value": "G"}}, [(0, "Group", "g1", None)],
         [(0, None, "G", None)]),
        ({"display": "somebody"}, [], []),
    ],
)  # fmt: skip
def test_reference_forms(
    subject: dict[str, Any], references: list[tuple[Any, ...]], tokens: list[tuple[Any, ...]]
) -> None:
    entries = index_resource(
        {"resourceType": "Condition", "subject": subject}, local_base="https://hie.example/fhir"
    )
    assert rows(entries, "reference", "subject") == references
    assert rows(entries, "token", "subject:identifier") == tokens


@pytest.mark.parametrize("local_base", [None, "https://hie.example/fhir/", "https://hie.example/fhi"])
def test_absolute_references_outside_this_server_stay_out_of_the_compartment(
    local_base: str | None,
) -> None:
    # Without a base every absolute URL is remote; a base is matched as a whole path segment.
    condition = {"resourceType": "Condition",
                 "subject": {"reference": "https://hie.example/fhir/Patient/123"}}
    entries = index_resource(condition, local_base=local_base)
    local = local_base == "https://hie.example/fhir/"
    assert entries.patients == (["123"] if local else [])
    assert rows(entries, "reference", "subject") == [
        (0, "Patient" if local else None, "123" if local else None,
         "https://hie.example/fhir/Patient/123")
    ]


def test_canonical_reference_drops_the_version() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://forms.example/Questionnaire/phq9|2.1",
    }
    assert rows(index_resource(response), "reference", "questionnaire") == [
        (0, None, None, "http://forms.example/Questionnaire/phq9")
    ]


def test_patient_compartment_ignores_non_patient_and_unresolvable_references() -> None:
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Group/g1"},
        "asserter": {"reference": "urn:uuid:2a3c1b0e-1111-4222-8333-444455556666"},
    }
    assert index_resource(condition).patients == []


@pytest.mark.parametrize(
    ("medication", "table", "param", "expected", "absent"),
    [
        ({"medicationReference": {"reference": "Medication/m1"}}, "reference", "medication",
         [(0, "Medication", "m1", None)], "code"),
        ({"medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049630",
             "display": "Acetaminophen 325 MG"}]}}, "token", "code",
         [(0, "http://www.nlm.nih.gov/research/umls/rxnorm", "1049630", "acetaminophen 325 mg")],
         "medication"),
    ],
)  # fmt: skip
def test_medication_request_medication(
    medication: dict[str, Any], table: str, param: str, expected: list[Any], absent: str
) -> None:
    request = {"resourceType": "MedicationRequest", "subject": {"reference": "Patient/p"},
               **medication}  # fmt: skip
    entries = index_resource(request)
    assert rows(entries, table, param) == expected
    assert rows(entries, "token", absent) == rows(entries, "reference", absent) == []
    assert entries.patients == ["p"]


# --- Condition, numbers, money, uri, composites ---------------------------------------------

CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006",
                         "display": "Diabetes"}], "text": "Diabetes"},
    "subject": {"reference": "Patient/p1"},
    "onsetString": "Childhood",
    "abatementAge": {"value": 12, "unit": "a", "system": UCUM, "code": "a"},
    "recordedDate": "2019-06-01",
}  # fmt: skip


@pytest.mark.parametrize(
    ("table", "param", "expected"),
    [
        ("token", "code", [(0, "http://snomed.info/sct", "44054006", "diabetes")]),
        ("string", "onset-info", [(0, "childhood", "Childhood")]),
        ("date", "onset-date", []),
        ("quantity", "abatement-age", [(0, UCUM, "a", "a", 12.0, 11.5, 12.5)]),
        ("date", "recorded-date", [(0, *day("2019-06-01"))]),
        ("reference", "patient", [(0, "Patient", "p1", None)]),
    ],
)
def test_condition_rows(table: str, param: str, expected: list[tuple[Any, ...]]) -> None:
    assert rows(index_resource(CONDITION), table, param) == expected


@pytest.mark.parametrize(
    ("probability", "expected"),
    [
        ({"probabilityDecimal": 0.25}, [(0, 0.25, 0.245, 0.255)]),
        ({"probabilityDecimal": 2}, [(0, 2.0, 1.5, 2.5)]),
        ({"probabilityRange": {"low": {"value": 0.1}, "high": {"value": 0.3}}},
         [(0, 0.1, 0.05, 0.35)]),
        ({"probabilityRange": {"high": {"value": 0.3}}}, [(0, 0.3, -math.inf, 0.35)]),
        ({"probabilityDecimal": True}, []),
    ],
)  # fmt: skip
def test_number_rows(probability: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assessment = {"resourceType": "RiskAssessment", "prediction": [probability]}
    got = rows(index_resource(assessment), "number", "probability")
    assert [tuple(pytest.approx(v) for v in row) for row in got] == expected


def test_money_uses_the_currency_as_code() -> None:
    invoice = {"resourceType": "Invoice", "totalGross": {"value": 10.5, "currency": "CNY"}}
    assert rows(index_resource(invoice), "quantity", "totalgross") == [
        (0, "urn:iso:std:iso:4217", "CNY", None, 10.5, 10.45, 10.55)
    ]


def test_uri_rows() -> None:
    value_set = {"resourceType": "ValueSet", "url": "http://example.org/ValueSet/vs"}
    assert rows(index_resource(value_set), "uri", "url") == [(0, "http://example.org/ValueSet/vs")]


def test_document_reference_relationship_composite_uses_corrected_components() -> None:
    document = {
        "resourceType": "DocumentReference",
        "relatesTo": [
            {"code": "replaces", "target": {"reference": "DocumentReference/d0"}},
            {"code": "appends", "target": {"reference": "DocumentReference/d1"}},
        ],
    }
    entries = index_resource(document)
    assert rows(entries, "reference", "relationship$0") == [
        (1, "DocumentReference", "d0", None),
        (2, "DocumentReference", "d1", None),
    ]
    assert rows(entries, "token", "relationship$1") == [
        (1, None, "replaces", None),
        (2, None, "appends", None),
    ]


def test_use_context_composite() -> None:
    value_set = {
        "resourceType": "ValueSet",
        "useContext": [
            {"code": {"code": "age"},
             "valueRange": {"low": {"value": 18, "code": "a"}, "high": {"value": 65, "code": "a"}}},
            {"code": {"code": "focus"}, "valueCodeableConcept": {"coding": [{"code": "diabetes"}]}},
        ],
    }  # fmt: skip
    entries = index_resource(value_set)
    assert rows(entries, "token", "context-type-quantity$0") == [(1, None, "age", None)]
    assert rows(entries, "quantity", "context-type-quantity$1") == [
        (1, None, "a", None, 18.0, 17.5, 65.5)
    ]
    assert rows(entries, "token", "context-type-value$0") == [(1, None, "focus", None)]
    assert rows(entries, "token", "context-type-value$1") == [(1, None, "diabetes", None)]


def test_every_resource_type_gets_the_resource_level_parameters() -> None:
    meta = {"tag": [{"system": "urn:t", "code": "x"}], "source": "urn:src#1",
            "lastUpdated": "2024-01-01T00:00:00Z"}  # fmt: skip
    for resource_type in sorted(resource_types()):
        entries = index_resource({"resourceType": resource_type, "id": "a", "meta": meta})
        assert rows(entries, "token", "_tag") == [(0, "urn:t", "x", None)], resource_type
        assert rows(entries, "uri", "_source") == [(0, "urn:src#1")], resource_type
        assert entries.date == [], resource_type  # _lastUpdated is a column, not a row


def test_unknown_resource_type_gives_no_rows() -> None:
    assert index_resource({"resourceType": "Unicorn", "id": "x"}) == IndexEntries()
    assert index_resource({"id": "x"}) == IndexEntries()


# --- robustness ----------------------------------------------------------------------------


@cache
def _element_names(prefix: str = "") -> list[str]:
    """JSON property names of every element (choices expanded), or only of the direct
    children of ``prefix`` (``Observation``)."""
    names: set[str] = set()
    for definition in structures().values():
        for path, element in (definition.get("elements") or {}).items():
            parent, _, name = path.rpartition(".")
            if prefix and parent != prefix:
                continue
            if name.endswith("[x]"):
                names.update(name[:-3] + t[:1].upper() + t[1:] for t in element[2])
            elif parent:
                names.add(name)
    return sorted(names)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["2020", "2020-02-30", "2020-01-01T10:00:00Z", "Patient/1", "#x",
                     "urn:uuid:1", "http://h/Patient/1/_history/2", "phone", "http://a|1"]),
)  # fmt: skip
_KEYS = st.one_of(st.sampled_from(_element_names()), st.text(max_size=6))
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    resource_type=st.sampled_from(sorted(resource_types())),
    body=st.dictionaries(_KEYS, _JSON, max_size=8),
)
def test_arbitrary_json_never_raises(resource_type: str, body: dict[str, Any]) -> None:
    entries = index_resource({**body, "resourceType": resource_type})
    assert isinstance(entries, IndexEntries)


@st.composite
def _shaped_resources(draw: st.DrawFn) -> dict[str, Any]:
    """Resources whose top-level keys are real elements of their type, so that every
    parameter's expression gets to see odd values."""
    resource_type = draw(st.sampled_from(sorted(resource_types())))
    keys = st.sampled_from(_element_names(resource_type))
    body = draw(st.dictionaries(keys, _JSON, max_size=10))
    return {**body, "resourceType": resource_type}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_shaped_resources())
def test_shaped_odd_resources_never_raise(resource: dict[str, Any]) -> None:
    assert isinstance(index_resource(resource), IndexEntries)


# --- real data -----------------------------------------------------------------------------


def _synthea_patient_bundles(limit: int) -> list[dict[str, Any]]:
    if not SYNTHEA.exists():
        pytest.skip(f"shared Synthea data not found at {SYNTHEA}")
    bundles: list[dict[str, Any]] = []
    with tarfile.open(SYNTHEA, "r:gz") as archive:
        for member in archive:  # streamed: stop after the first few patients
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json"):
                continue
            if name.startswith(("hospitalInformation", "practitionerInformation")):
                continue
            f = archive.extractfile(member)
            assert f is not None
            bundles.append(orjson.loads(f.read()))
            if len(bundles) == limit:
                break
    return bundles


def test_synthea_bundles_index_cleanly() -> None:
    counts: dict[str, int] = {}
    for bundle in _synthea_patient_bundles(5):
        for entry in bundle["entry"]:
            resource = entry["resource"]
            entries = index_resource(resource)
            kind = resource["resourceType"]
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "Observation":
                assert rows(entries, "token", "code"), resource["id"]
                assert rows(entries, "reference", "subject"), resource["id"]
            if kind == "Patient":
                assert entries.patients == [resource["id"]]
                assert rows(entries, "string", "family")
                assert rows(entries, "date", "birthdate")
            if kind == "Encounter":
                assert rows(entries, "date", "date")
    assert counts.get("Patient") == 5
    assert counts.get("Observation", 0) > 100
