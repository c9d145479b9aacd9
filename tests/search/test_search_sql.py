"""The search compiler on both engines, as tables: one small hand-indexed world, each case a
query and the exact res_ids (in order) it must select — https://hl7.org/fhir/R4/search.html.

Unsorted results come in rid order, which is the order the world inserts resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from huitong.fhir.dates import parse_date_range
from huitong.fhir.index_model import normalize_string
from huitong.fhir.search.model import Include, SearchQuery
from huitong.fhir.search.parse import parse_search
from huitong.store import search_sql
from huitong.store.search_sql import (
    everything_referenced_sql,
    everything_sql,
    include_sql,
    revinclude_sql,
    search_count_sql,
    search_page_sql,
)

from .conftest import SearchDb, open_search_db

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
INF = float("inf")


def name(param: str, *values: str) -> list[tuple[str, int, str, str]]:
    return [(param, 0, normalize_string(v), v) for v in values]


def date(param: str, text: str, grp: int = 0) -> tuple[str, int, int, int]:
    return (param, grp, *parse_date_range(text))


def period(param: str, start: str, end: str) -> tuple[str, int, int, int]:
    return (param, 0, parse_date_range(start)[0], parse_date_range(end)[1])


def ref(param: str, target: str, url: str | None = None, grp: int = 0) -> tuple[Any, ...]:
    target_type, _, target_id = target.partition("/")
    return (param, grp, target_type or None, target_id or None, url)


def subject(patient: str) -> list[tuple[Any, ...]]:
    return [ref("subject", f"Patient/{patient}"), ref("patient", f"Patient/{patient}")]


def qty(
    param: str, value: float, code: str | None, unit: str | None = None, grp: int = 0
) -> tuple[Any, ...]:
    half = 0.05 if value != int(value) else 0.5
    system = UCUM if code else None
    return (param, grp, system, code, unit or code, value, value - half, value + half)


def bp(grp: int, code: str, value: float) -> tuple[list[Any], list[Any]]:
    """One code-value-quantity composite value: its token and quantity component rows."""
    return (
        [("code-value-quantity$0", grp, LOINC, code, None)],
        [qty("code-value-quantity$1", value, "mm[Hg]", grp=grp)],
    )


def build_world(db: SearchDb) -> None:
    add = db.add
    # organisations, practitioners, medications -------------------------------------------
    add("Organization", "O3", string=name("name", "Acme Health Network"))
    add(
        "Organization",
        "O1",
        string=name("name", "Acme Hospital"),
        reference=[ref("partof", "Organization/O3")],
    )
    add("Organization", "O2", string=name("name", "General Clinic"))
    add("Practitioner", "D1", string=name("name", "Dr Who", "Who"))
    add("Medication", "M1", token=[("code", 0, RXNORM, "1000", "aspirin 100 mg")])
    add("Medication", "M2", deleted=True, token=[("code", 0, RXNORM, "2000", None)])
    # patients ------------------------------------------------------------------------------
    add(
        "Patient", "P1",
        string=name("name", "Peter", "Chalmers", "Peter James Chalmers"),
        date=[date("birthdate", "1974-12-25")],
        token=[
            ("gender", 0, "http://hl7.org/fhir/administrative-gender", "male", None),
            ("identifier", 0, "urn:oid:1.2.36.146.595.217.0.1", "12345", "medical record number"),
            ("identifier:of-type", 0, V2_0203, "MR|12345", None),
            ("_tag", 0, "http://example.org/tags", "vip", "very important"),
        ],
        reference=[ref("general-practitioner", "Practitioner/D1"), ref("organization", "Organization/O1")],
        uri=[("_profile", 0, "http://example.org/StructureDefinition/cn-patient")],
    )  # fmt: skip
    add(
        "Patient", "P2",
        string=name("name", "Petra", "Müller"),
        date=[date("birthdate", "1980-03")],
        token=[
            ("gender", 0, "http://hl7.org/fhir/administrative-gender", "female", None),
            ("identifier", 0, "urn:oid:1.2.36.146.595.217.0.1", "67890", None),
            ("identifier:of-type", 0, V2_0203, "DL|12345", None),
        ],
        reference=[ref("organization", "Organization/O2")],
    )  # fmt: skip
    add("Patient", "P3", string=name("name", "张三"), date=[date("birthdate", "2001-01-01")])
    add("Patient", "P4", deleted=True, string=name("name", "Peter Deleted"))
    add("Patient", "P5", string=name("name", "Pe_ter%x"))
    add("Patient", "P6", reference=[ref("link", "Patient/P1")])
    add("Group", "G1", token=[("type", 0, None, "person", None)])
    # observations --------------------------------------------------------------------------
    tok1, q1 = bp(1, "8480-6", 120)
    add(
        "Observation", "OB1",
        token=[("code", 0, LOINC, "8480-6", "systolic blood pressure"), *tok1,
               ("_tag", 0, "http://example.org/tags", "vip", None)],
        reference=[*subject("P1"), ref("performer", "Practitioner/D1")],
        date=[date("date", "2020-01-15T10:00:00Z")],
        quantity=[qty("value-quantity", 120, "mm[Hg]", "mmHg"), *q1],
    )  # fmt: skip
    tok2, q2 = bp(1, "8462-4", 80)
    add(
        "Observation", "OB2",
        token=[("code", 0, LOINC, "8462-4", "diastolic blood pressure"), *tok2],
        reference=subject("P1"),
        date=[date("date", "2020-06-01")],
        quantity=[qty("value-quantity", 80, "mm[Hg]", "mmHg"), *q2],
    )  # fmt: skip
    tok3, q3 = bp(1, "8480-6", 150)
    add(
        "Observation", "OB3",
        token=[("code", 0, LOINC, "8480-6", "systolic blood pressure"), *tok3],
        reference=subject("P2"),
        date=[date("date", "2019-12-31")],
        quantity=[qty("value-quantity", 150, "mm[Hg]", "mmHg"), *q3],
    )  # fmt: skip
    add(
        "Observation", "OB4",
        token=[("code", 0, LOINC, "29463-7", "body weight")],
        reference=subject("P1"),
        date=[period("date", "2021-01-01", "2021-12-31")],
        quantity=[qty("value-quantity", 70.5, "kg")],
    )  # fmt: skip
    add(
        "Observation", "OB5", deleted=True,
        token=[("code", 0, LOINC, "8480-6", None), ("code", 0, "urn:x", "only-deleted", None)],
        reference=subject("P1"),
        date=[date("date", "2020-01-15")],
    )  # fmt: skip
    add(
        "Observation", "OB6",
        token=[("code", 0, None, "8480-6", None)],
        reference=[ref("subject", "Group/G1")],
    )  # fmt: skip
    add(
        "Observation", "OB7",
        token=[("code", 0, "urn:x", "only-deleted", None)],
        reference=[*subject("P4")],
        date=[date("date", "2018")],
    )  # fmt: skip
    add(
        "Observation", "OB8",
        token=[("code", 0, LOINC, "2339-0", None)],
        reference=[ref("subject", "Patient/X", "http://other.org/fhir/Patient/X")],
    )  # fmt: skip
    # a panel: systolic 90 and diastolic 140 in different composite groups
    tok9a, q9a = bp(1, "8480-6", 90)
    tok9b, q9b = bp(2, "8462-4", 140)
    add(
        "Observation", "OB9",
        token=[("code", 0, LOINC, "85354-9", "blood pressure panel"), *tok9a, *tok9b],
        reference=subject("P2"),
        quantity=[*q9a, *q9b],
    )  # fmt: skip
    # encounters ----------------------------------------------------------------------------
    add(
        "Encounter",
        "E1",
        reference=subject("P1"),
        date=[period("date", "2020-01-15", "2020-01-16")],
    )
    add("Encounter", "E2", reference=subject("P1"), date=[date("date", "2021-03-01")])
    add("Encounter", "E3", reference=subject("P1"), date=[date("date", "2019-05-05")])
    add("Encounter", "E4", reference=subject("P2"), date=[date("date", "2020-02-02")])
    add("Encounter", "E5", reference=subject("P2"))
    # conditions, medication requests, provenance, lists, audit -----------------------------
    add(
        "Condition",
        "C1",
        reference=subject("P1"),
        token=[("code", 0, SNOMED, "44054006", "diabetes")],
    )
    add(
        "Condition",
        "C2",
        reference=subject("P2"),
        token=[("code", 0, SNOMED, "38341003", "hypertension")],
    )
    add("MedicationRequest", "MR1", reference=[*subject("P1"), ref("medication", "Medication/M1")])
    add("MedicationRequest", "MR2", reference=[*subject("P1"), ref("medication", "Medication/M2")])
    add(
        "MedicationRequest", "MR3",
        reference=[*subject("P2"), ref("medication", "Medication/M1")],
        token=[("subject:identifier", 0, "urn:sys", "abc", None)],
    )  # fmt: skip
    add("Provenance", "PV1", reference=[ref("target", "Patient/P1")])
    add("Provenance", "PV2", deleted=True, reference=[ref("target", "Patient/P1")])
    add("Provenance", "PV3", reference=[ref("target", "Observation/OB1")])
    add("List", "L1", reference=[ref("item", "Observation/OB1"), ref("item", "Observation/OB3")])
    add(
        "AuditEvent", "AE1",
        reference=[ref("entity", "Observation/OB1"), ref("agent", "Practitioner/D1")],
    )  # fmt: skip
    # uri, number, canonical references --------------------------------------------------------
    add("ValueSet", "VS1", uri=[("url", 0, "http://acme.org/fhir/ValueSet/123")])
    add("ValueSet", "VS2", uri=[("url", 0, "http://acme.org/fhir/ValueSet/123-x")])
    add("ValueSet", "VS3", uri=[("url", 0, "http://other.org/vs_1")])
    add("RiskAssessment", "RA1", number=[("probability", 0, 0.8, 0.75, 0.85)])
    add("RiskAssessment", "RA2", number=[("probability", 0, 100.0, 99.5, 100.5)])
    add("RiskAssessment", "RA3", number=[("probability", 0, 99.5, 99.45, 99.55)])
    add(
        "QuestionnaireResponse", "QR1",
        reference=[ref("questionnaire", "", "http://acme.org/Questionnaire/q1")],
    )  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[SearchDb]:
    world = open_search_db(request.param, request)
    build_world(world)
    yield world
    if world.dialect == "sqlite":
        world.conn.close()


def query(url: str, **kwargs: Any) -> SearchQuery:
    """``Type?a=b``, ``?a=b`` (system) or ``Patient/P1/Type?a=b`` (compartment) parsed."""
    path, _, qs = url.partition("?")
    pairs = parse_qsl(qs, keep_blank_values=True)
    segments = path.split("/") if path else []
    if len(segments) == 3:
        rtype = None if segments[2] == "*" else segments[2]
        return parse_search(rtype, pairs, compartment=(segments[0], segments[1]), **kwargs)
    return parse_search(segments[0] if segments else None, pairs, **kwargs)


CASES: list[tuple[str, list[str]]] = [
    # string: starts-with on the normalised value, :exact, :contains, escapes, OR and AND
    ("Patient?name=pet", ["P1", "P2"]),
    ("Patient?name=PETER", ["P1"]),
    ("Patient?name=m%C3%BCller", ["P2"]),
    ("Patient?name=muller", ["P2"]),
    ("Patient?name:exact=Müller", ["P2"]),
    ("Patient?name:exact=muller", []),
    ("Patient?name:contains=alme", ["P1"]),
    ("Patient?name:contains=_", ["P5"]),
    ("Patient?name=pe_", ["P5"]),
    ("Patient?name=pe_ter%25", ["P5"]),
    ("Patient?name=张", ["P3"]),
    ("Patient?name=peter,petra", ["P1", "P2"]),
    ("Patient?name=pet&name=chal", ["P1"]),
    ("Patient?name:missing=true", ["P6"]),
    ("Patient?name:missing=false", ["P1", "P2", "P3", "P5"]),
    # token
    ("Observation?code=8480-6", ["OB1", "OB3", "OB6"]),
    ("Observation?code=http://loinc.org|8480-6", ["OB1", "OB3"]),
    ("Observation?code=|8480-6", ["OB6"]),
    ("Observation?code=http://loinc.org|", ["OB1", "OB2", "OB3", "OB4", "OB8", "OB9"]),
    ("Observation?code=8480-6,29463-7", ["OB1", "OB3", "OB4", "OB6"]),
    ("Observation?code:text=blood", ["OB1", "OB2", "OB3", "OB9"]),
    ("Observation?code:text=SYSTOLIC", ["OB1", "OB3"]),
    ("Observation?code:text=lood", []),
    ("Observation?code:not=8480-6", ["OB2", "OB4", "OB7", "OB8", "OB9"]),
    ("Observation?code:not=8480-6,85354-9", ["OB2", "OB4", "OB7", "OB8"]),
    ("Observation?code=only-deleted", ["OB7"]),
    ("Patient?gender=male", ["P1"]),
    ("Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|67890", ["P2"]),
    (f"Patient?identifier:of-type={V2_0203}|MR|12345", ["P1"]),
    (f"Patient?identifier:of-type={V2_0203}|DL|12345", ["P2"]),
    ("Patient?identifier:of-type=|MR|12345", []),
    ("Patient?_tag=http://example.org/tags|vip", ["P1"]),
    ("Patient?_tag:missing=true", ["P2", "P3", "P5", "P6"]),
    ("Patient?_id=P2,P1,P4", ["P1", "P2"]),
    ("Patient?_id:not=P1&name=pet", ["P2"]),
    # reference
    ("Observation?subject=Patient/P1", ["OB1", "OB2", "OB4"]),
    ("Observation?subject=P1", ["OB1", "OB2", "OB4"]),
    ("Observation?patient=P1&patient=Patient/P1", ["OB1", "OB2", "OB4"]),
    ("Observation?subject:Patient=P1", ["OB1", "OB2", "OB4"]),
    ("Observation?subject:Group=P1", []),
    ("Observation?subject:Group=G1", ["OB6"]),
    ("Observation?subject=Patient/P1/_history/3", ["OB1", "OB2", "OB4"]),
    ("Observation?subject=http://other.org/fhir/Patient/X", ["OB8"]),
    ("Observation?subject=Patient/P1,Group/G1", ["OB1", "OB2", "OB4", "OB6"]),
    ("Observation?performer:missing=false", ["OB1"]),
    ("QuestionnaireResponse?questionnaire=http://acme.org/Questionnaire/q1|2.0", ["QR1"]),
    ("QuestionnaireResponse?questionnaire=http://acme.org/Questionnaire/q1", ["QR1"]),
    ("MedicationRequest?subject:identifier=urn:sys|abc", ["MR3"]),
    ("MedicationRequest?subject:identifier=abc", ["MR3"]),
    # date prefixes against ranges (https://hl7.org/fhir/R4/search.html#prefix)
    ("Observation?date=2020", ["OB1", "OB2"]),
    ("Observation?date=eq2020-01-15", ["OB1"]),
    ("Observation?date=2020-01-15T10:00:00Z", ["OB1"]),
    ("Observation?date=2020-01-15T10:00:00.5Z", []),
    ("Observation?date=ne2020", ["OB3", "OB4", "OB7"]),
    ("Observation?date=gt2020", ["OB4"]),
    ("Observation?date=lt2020", ["OB3", "OB7"]),
    ("Observation?date=ge2020", ["OB1", "OB2", "OB4"]),
    ("Observation?date=le2020", ["OB1", "OB2", "OB3", "OB7"]),
    ("Observation?date=ge2021-06-01", ["OB4"]),
    ("Observation?date=le2021-06-01", ["OB1", "OB2", "OB3", "OB4", "OB7"]),
    ("Observation?date=sa2020-01-15", ["OB2", "OB4"]),
    ("Observation?date=eb2020-01-15", ["OB3", "OB7"]),
    ("Observation?date=ap2020-06-02", ["OB2"]),
    ("Observation?date=ap2020-06-03", []),
    ("Observation?date=2019-12-31,2021", ["OB3", "OB4"]),
    ("Observation?date=ge2020&date=lt2021", ["OB1", "OB2"]),
    ("Observation?date:missing=true", ["OB6", "OB8", "OB9"]),
    ("Encounter?date=2020-01-15", []),
    ("Encounter?date=2020-01", ["E1"]),
    # E1 (15-16 Jan) neither reaches past 16 Jan nor lies inside it: the spec's ge
    ("Encounter?date=ge2020-01-16", ["E2", "E4"]),
    ("Encounter?date=ge2020-01-15", ["E1", "E2", "E4"]),
    ("Patient?birthdate=1980", ["P2"]),
    ("Patient?birthdate=1980-03-05", []),
    # _lastUpdated against resources.last_updated (the world's rid n was updated at n seconds)
    ("Patient?_lastUpdated=lt1970-01-01T00:00:10Z", ["P1", "P2", "P3"]),
    (
        "Patient?_lastUpdated=ge1970-01-01T00:00:10Z&_lastUpdated=le1970-01-01T00:00:13Z",
        ["P5", "P6"],
    ),
    ("Patient?_lastUpdated=1970-01-01T00:00:09Z", ["P3"]),
    ("Patient?_lastUpdated=1970-01-01", ["P1", "P2", "P3", "P5", "P6"]),
    # number: implicit precision for eq/ne/ap, exact for the comparisons
    ("RiskAssessment?probability=100", ["RA2", "RA3"]),
    ("RiskAssessment?probability=100.0", ["RA2"]),
    ("RiskAssessment?probability=ne100", ["RA1"]),
    ("RiskAssessment?probability=gt99.5", ["RA2"]),
    ("RiskAssessment?probability=ge99.5", ["RA2", "RA3"]),
    ("RiskAssessment?probability=lt100", ["RA1", "RA3"]),
    ("RiskAssessment?probability=le0.8", ["RA1"]),
    ("RiskAssessment?probability=sa99.5", []),
    ("RiskAssessment?probability=sa99", ["RA2"]),
    ("RiskAssessment?probability=eb99.5", ["RA1"]),
    ("RiskAssessment?probability=ap0.8", ["RA1"]),
    ("RiskAssessment?probability=ap91", ["RA2", "RA3"]),
    ("RiskAssessment?probability:missing=true", []),
    # quantity
    ("Observation?value-quantity=120", ["OB1"]),
    ("Observation?value-quantity=120||mm[Hg]", ["OB1"]),
    ("Observation?value-quantity=120||mmHg", ["OB1"]),
    (f"Observation?value-quantity=120|{UCUM}|mm[Hg]", ["OB1"]),
    (f"Observation?value-quantity=120|{UCUM}|kg", []),
    (f"Observation?value-quantity=70.5|{UCUM}|kg", ["OB4"]),
    ("Observation?value-quantity=gt100", ["OB1", "OB3"]),
    ("Observation?value-quantity=lt100||mm[Hg]", ["OB2"]),
    ("Observation?value-quantity=ap130", ["OB1"]),
    ("Observation?value-quantity=ne120", ["OB2", "OB3", "OB4"]),
    ("Observation?value-quantity:missing=true", ["OB6", "OB7", "OB8", "OB9"]),
    # uri
    ("ValueSet?url=http://acme.org/fhir/ValueSet/123", ["VS1"]),
    ("ValueSet?url:below=http://acme.org/fhir", ["VS1", "VS2"]),
    ("ValueSet?url:below=http://other.org/vs_", ["VS3"]),
    ("ValueSet?url:below=http://other.org/vs%25", []),
    ("ValueSet?url:above=http://acme.org/fhir/ValueSet/123/_history/5", ["VS1"]),
    ("Patient?_profile=http://example.org/StructureDefinition/cn-patient", ["P1"]),
    # composite: components of one value joined on grp
    (f"Observation?code-value-quantity={LOINC}|8480-6$gt130", ["OB3"]),
    ("Observation?code-value-quantity=8480-6$120", ["OB1"]),
    ("Observation?code-value-quantity=8480-6$lt100", ["OB9"]),
    ("Observation?code-value-quantity=8462-4$gt100", ["OB9"]),
    ("Observation?code-value-quantity=8480-6$140", []),
    ("Observation?code-value-quantity=8480-6$120,8462-4$80", ["OB1", "OB2"]),
    ("Observation?code-value-quantity:missing=true", ["OB4", "OB6", "OB7", "OB8"]),
    # chains: deleted targets never match
    ("Observation?subject:Patient.name=peter", ["OB1", "OB2", "OB4"]),
    ("Observation?patient.name=petra", ["OB3", "OB9"]),
    ("Observation?subject.name=pet", ["OB1", "OB2", "OB3", "OB4", "OB9"]),
    ("Observation?subject:Patient.name=peter&code=29463-7", ["OB4"]),
    ("Observation?code=8480-6&subject:Patient.gender=female", ["OB3"]),
    ("Patient?organization.partof.name=acme", ["P1"]),
    ("Patient?organization.name=acme", ["P1"]),
    ("Encounter?patient.organization.name=general", ["E4", "E5"]),
    ("Encounter?date=2020&patient.organization.name=general", ["E4"]),
    ("Observation?patient._id=P2", ["OB3", "OB9"]),
    ("Observation?patient.name:missing=true", []),
    # reverse chains: deleted sources never match
    ("Patient?_has:Observation:patient:code=8462-4", ["P1"]),
    ("Patient?_has:Observation:patient:code=http://loinc.org|8480-6", ["P1", "P2"]),
    ("Patient?_has:Observation:patient:code=29463-7", ["P1"]),
    ("Patient?_has:Observation:patient:code=only-deleted", []),
    ("Patient?_has:Observation:patient:code=29463-7&gender=male", ["P1"]),
    ("Patient?gender=female&_has:Observation:patient:code=29463-7", []),
    ("Patient?_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/D1", ["P1"]),
    ("Patient?_has:Observation:subject:subject.name=petra", ["P2"]),
    ("Practitioner?_has:Observation:performer:code=8480-6", ["D1"]),
    ("Organization?_has:Patient:organization:name=pet", ["O1", "O2"]),
    ("Patient?_has:Observation:patient:code=http://loinc.org|&_count=1&_offset=1", ["P2"]),
    ("Patient?_has:Observation:patient:code=http://loinc.org|&_sort=-name", ["P2", "P1"]),
    ("Patient?_has:Observation:patient:code:not=8480-6", ["P1", "P2"]),
    # _list
    ("Observation?_list=L1", ["OB1", "OB3"]),
    ("Observation?_list=L1&code=8480-6&patient=P2", ["OB3"]),
    ("Observation?_list=nope", []),
    # compartments (Patient CompartmentDefinition)
    ("Patient/P1/Observation", ["OB1", "OB2", "OB4"]),
    ("Patient/P1/Observation?code=8480-6", ["OB1"]),
    ("Patient/P2/Encounter?date=2020", ["E4"]),
    ("Patient/P1/Patient", ["P1", "P6"]),
    ("Patient/P4/Observation", ["OB7"]),
    (
        "Patient/P1/*",
        ["P1", "P6", "OB1", "OB2", "OB4", "E1", "E2", "E3", "C1", "MR1", "MR2"],
    ),
    ("Patient/P1/*?_lastUpdated=gt1970-01-01T00:00:29Z", ["MR1", "MR2"]),
    ("Practitioner/D1/Observation", ["OB1"]),
    # system-wide search: only the Resource-level parameters
    ("?_tag=vip", ["P1", "OB1"]),
    ("?_type=Observation&_tag=vip", ["OB1"]),
    ("?_id=P1,OB2,M2", ["P1", "OB2"]),
    (
        "?_type=Patient,Group&_lastUpdated=lt1970-01-01T00:00:20Z",
        ["P1", "P2", "P3", "P5", "P6", "G1"],
    ),
    # sort: min ascending / max descending, missing values last, rid breaks ties
    ("Encounter?patient=P1&_sort=-date", ["E2", "E1", "E3"]),
    ("Encounter?_sort=date", ["E3", "E1", "E4", "E2", "E5"]),
    ("Encounter?_sort=-date", ["E2", "E4", "E1", "E3", "E5"]),
    ("Patient?_sort=birthdate", ["P1", "P2", "P3", "P5", "P6"]),
    ("Patient?_sort=-birthdate", ["P3", "P2", "P1", "P5", "P6"]),
    ("Patient?_sort=name", ["P1", "P2", "P5", "P3", "P6"]),
    ("Patient?_sort=-name", ["P3", "P2", "P1", "P5", "P6"]),
    ("Patient?_sort=-_id", ["P6", "P5", "P3", "P2", "P1"]),
    ("Patient?_sort=-_lastUpdated&_count=2", ["P6", "P5", "P3"]),
    (
        "Observation?code=http://loinc.org|&_sort=code,-date",
        ["OB8", "OB4", "OB2", "OB1", "OB3", "OB9"],
    ),
    ("Observation?_sort=-value-quantity,_id&_count=3", ["OB3", "OB1", "OB2", "OB4"]),
    ("Observation?_sort=subject&_count=4", ["OB6", "OB1", "OB2", "OB4", "OB3"]),
    ("ValueSet?_sort=-url", ["VS3", "VS2", "VS1"]),
    # paging: count + 1 rows from the offset
    ("Observation?_count=3", ["OB1", "OB2", "OB3", "OB4"]),
    ("Observation?_count=3&_offset=3", ["OB4", "OB6", "OB7", "OB8"]),
    ("Observation?_count=3&_offset=6", ["OB8", "OB9"]),
    ("Observation?_count=0", ["OB1"]),
]


@pytest.mark.parametrize(("url", "expected"), CASES, ids=[c[0] for c in CASES])
def test_search(db: SearchDb, url: str, expected: list[str]) -> None:
    q = query(url)
    sql, params = search_page_sql(q, db.dialect)
    assert sql.count("?" if db.dialect == "sqlite" else "%s") == len(params)
    assert db.ids((sql, params)) == expected


@pytest.mark.parametrize(
    ("url", "adaptive"),
    [
        ("Patient?_has:Observation:patient:code=x", True),
        ("Patient?_has:Observation:patient:code=x&name:missing=false", True),
        ("Patient?_has:Observation:patient:code=x&gender=male", False),  # gender leads
        ("Patient?_has:Observation:patient:code=x&_sort=name", False),
        ("Patient?_has:Observation:patient:_has:AuditEvent:entity:agent=x", False),
        ("Patient?_has:Observation:patient:code=x&_id=P1", False),
    ],
)
def test_which_has_pages_are_adaptive(url: str, adaptive: bool) -> None:
    sql, _ = search_page_sql(query(url), "sqlite")
    assert ("UNION ALL" in sql) is adaptive


HAS_CASES = [case for case in CASES if "_has:" in case[0]]


@pytest.mark.parametrize("dense", [True, False], ids=["many-sources", "few-sources"])
@pytest.mark.parametrize(("url", "expected"), HAS_CASES, ids=[c[0] for c in HAS_CASES])
def test_has_read_either_way(
    db: SearchDb, monkeypatch: pytest.MonkeyPatch, url: str, expected: list[str], dense: bool
) -> None:
    """A page led by ``_has`` is read from the sources (few) or candidate by candidate in rid
    order (many); both give the same rids."""
    monkeypatch.setattr(search_sql, "_HAS_DENSE", 1 if dense else 10**9)
    monkeypatch.setattr(search_sql, "_HAS_SPREAD", 1 if dense else 10**9)
    q = query(url)
    sql, params = search_page_sql(q, db.dialect)
    assert db.ids((sql, params)) == expected


@pytest.mark.parametrize("dense", [True, False], ids=["many-sources", "few-sources"])
@pytest.mark.parametrize(
    ("url", "hidden", "expected"),
    [
        ("Patient?_has:Observation:patient:code=http://loinc.org|", ["P1"], ["P2"]),
        ("Patient?_has:Observation:patient:code=http://loinc.org|", ["OB3", "OB9"], ["P1"]),
        ("Organization?_has:Patient:organization:name=pet", ["P1"], ["O2"]),
    ],
)
def test_has_keeps_to_the_restriction(
    db: SearchDb,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    hidden: list[str],
    expected: list[str],
    dense: bool,
) -> None:
    monkeypatch.setattr(search_sql, "_HAS_DENSE", 1 if dense else 10**9)
    monkeypatch.setattr(search_sql, "_HAS_SPREAD", 1 if dense else 10**9)
    assert db.ids(search_page_sql(query(url), db.dialect, restrict=_hide(*hidden))) == expected


@pytest.mark.parametrize(
    ("url", "total"),
    [
        ("Observation?code=8480-6", 3),
        ("Observation?_count=1", 8),
        ("Patient?name=pet", 2),
        ("Patient/P1/*", 11),
        ("Patient?_has:Observation:patient:code=8480-6", 2),
    ],
)
def test_count(db: SearchDb, url: str, total: int) -> None:
    q = query(url)
    assert db.scalar(search_count_sql(q, db.dialect)) == total


@pytest.mark.parametrize(
    ("url", "count"),
    [
        ("Observation?_sort=code", 2),
        ("Encounter?_sort=-date", 1),
        ("Observation?code=http://loinc.org|", 2),  # one clause: read from its index alone
        ("Patient?name=pet", 1),
    ],
)
def test_paging_is_stable(db: SearchDb, url: str, count: int) -> None:
    """Every match appears on exactly one page, in the order of the one-page result."""
    q = query(url + "&_count=1000")
    everything = db.ids(search_page_sql(q, db.dialect))
    pages: list[str] = []
    offset = 0
    while True:
        q = query(f"{url}&_count={count}&_offset={offset}")
        rows = db.ids(search_page_sql(q, db.dialect))
        pages += rows[:count]
        if len(rows) <= count:
            break
        offset += count
    assert pages == everything


def run_includes(db: SearchDb, q: SearchQuery, rids: list[int]) -> list[str]:
    """The include loop the store runs: every include once, then the :iterate ones to a
    fixed point over what the previous round added."""
    seen, found, frontier, first = set(rids), [], list(rids), True
    while frontier:
        inc = q.include if first else [i for i in q.include if i.iterate]
        rev = q.revinclude if first else [i for i in q.revinclude if i.iterate]
        new: list[int] = []
        if inc:
            new += db.rids(include_sql(inc, frontier, db.dialect))
        if rev:
            new += db.rids(revinclude_sql(rev, frontier, db.dialect))
        frontier = [r for r in dict.fromkeys(new) if r not in seen]
        seen.update(frontier)
        found += frontier
        first = False
    return [db.names[r] for r in found]


INCLUDE_CASES = [
    ("MedicationRequest?patient=P1&_include=MedicationRequest:medication", ["MR1", "MR2"], ["M1"]),
    (
        "MedicationRequest?_include=MedicationRequest:medication:Medication",
        ["MR1", "MR2", "MR3"],
        ["M1"],
    ),
    ("Observation?_id=OB1&_include=Observation:performer", ["OB1"], ["D1"]),
    ("Observation?_id=OB1&_include=*", ["OB1"], ["D1", "P1"]),
    ("Observation?_id=OB1&_include=Observation:*", ["OB1"], ["D1", "P1"]),
    ("Observation?_id=OB1&_include=Observation:subject:Group", ["OB1"], []),
    ("Patient?_id=P1&_revinclude=Provenance:target", ["P1"], ["PV1"]),
    ("Patient?_id=P1&_revinclude=Provenance:target:Patient", ["P1"], ["PV1"]),
    ("Patient?_id=P1&_revinclude=Provenance:target:Observation", ["P1"], []),
    ("Observation?_id=OB1&_revinclude=*", ["OB1"], ["PV3", "L1", "AE1"]),
    (
        "Patient?_id=P1&_revinclude=MedicationRequest:patient"
        "&_include:iterate=MedicationRequest:medication",
        ["P1"],
        ["MR1", "MR2", "M1"],
    ),
    (
        "Patient?_id=P1&_revinclude=MedicationRequest:patient"
        "&_include=MedicationRequest:medication",
        ["P1"],
        ["MR1", "MR2"],
    ),
    (
        "Organization?_id=O3&_revinclude:iterate=Organization:partof"
        "&_revinclude:iterate=Patient:organization",
        ["O3"],
        ["O1", "P1"],
    ),
    (
        "Observation?_id=OB1&_revinclude=Provenance:target&_revinclude:iterate=List:item",
        ["OB1"],
        ["PV3", "L1"],
    ),
]


@pytest.mark.parametrize(
    ("url", "matches", "included"), INCLUDE_CASES, ids=[c[0] for c in INCLUDE_CASES]
)
def test_include(db: SearchDb, url: str, matches: list[str], included: list[str]) -> None:
    q = query(url)
    rids = db.rids(search_page_sql(q, db.dialect))
    assert [db.names[r] for r in rids] == matches
    assert run_includes(db, q, rids) == included


def test_include_takes_a_query_or_a_list(db: SearchDb) -> None:
    q = query("MedicationRequest?_include=MedicationRequest:medication")
    rids = db.rids(search_page_sql(q, db.dialect))
    assert db.ids(include_sql(q, rids, db.dialect)) == ["M1"]
    assert db.ids(include_sql([Include("MedicationRequest", "medication")], rids, db.dialect)) == [
        "M1"
    ]
    assert db.ids(include_sql([], rids, db.dialect)) == []
    assert db.ids(revinclude_sql(q, [], db.dialect)) == []


def test_everything(db: SearchDb) -> None:
    sql = everything_sql("P1", since_us=None, types=None, count=100, offset=0, dialect=db.dialect)
    rids = db.rids(sql)
    assert [db.names[r] for r in rids] == [
        "P1", "P6", "OB1", "OB2", "OB4", "E1", "E2", "E3", "C1", "MR1", "MR2",
    ]  # fmt: skip
    # referenced resources outside every Patient compartment; deleted M2 and other
    # patients' records never come in
    assert db.ids(everything_referenced_sql(rids, db.dialect)) == ["O1", "D1", "M1"]
    assert db.ids(everything_referenced_sql(rids, db.dialect, types=["Medication"])) == ["M1"]
    assert db.ids(everything_referenced_sql([], db.dialect)) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"count": 3, "offset": 0}, ["P1", "P6", "OB1"]),
        ({"count": 3, "offset": 9}, ["MR1", "MR2"]),
        ({"types": ["Encounter", "Condition"]}, ["E1", "E2", "E3", "C1"]),
        ({"types": ["Patient"]}, ["P1", "P6"]),
        ({"since_us": 28_000_000}, ["C1", "MR1", "MR2"]),
    ],
)
def test_everything_paging_and_filters(
    db: SearchDb, kwargs: dict[str, Any], expected: list[str]
) -> None:
    args: dict[str, Any] = {"since_us": None, "types": None, "count": 100, "offset": 0}
    args.update(kwargs)
    assert db.ids(everything_sql("P1", dialect=db.dialect, **args)) == expected


def test_everything_of_a_deleted_or_unknown_patient_is_empty_of_its_record(db: SearchDb) -> None:
    sql = everything_sql("P4", since_us=None, types=None, count=10, offset=0, dialect=db.dialect)
    assert db.ids(sql) == ["OB7"]  # its own resource is deleted; OB7 still points at it
    sql = everything_sql(
        "nobody", since_us=None, types=None, count=10, offset=0, dialect=db.dialect
    )
    assert db.ids(sql) == []


def _hide(*hidden: str) -> Any:
    """An access restriction that hides the resources with these ids."""

    def restrict(alias: str) -> tuple[str, list[Any]]:
        return f"{alias}.res_id NOT IN ({', '.join('?' * len(hidden))})", list(hidden)

    return restrict


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Patient?name=pet", ["P1"]),
        ("Observation?patient.name=petra", []),
        ("Patient?_has:Observation:patient:code=http://loinc.org|8480-6", ["P1"]),
        ("Observation?_list=L1", ["OB1", "OB3"]),
    ],
)
def test_restrict_applies_to_every_resource_touched(
    db: SearchDb, url: str, expected: list[str]
) -> None:
    """Access control as SQL: hiding P2 hides it from results, chains and _has alike."""
    hide = "P2" if "_list" not in url else "L1"
    q = query(url)
    got = db.ids(search_page_sql(q, db.dialect, restrict=_hide(hide)))
    assert got == (expected if hide == "P2" else [])
    assert db.scalar(search_count_sql(q, db.dialect, restrict=_hide(hide))) == len(got)


@pytest.mark.parametrize(
    ("url", "alone"),
    [
        ("Observation?code=8480-6", True),
        ("?_tag=vip", True),
        ("Observation?code=8480-6&_sort=date", False),  # a sort reads the rows
        ("Observation?code=8480-6&patient=P1", False),
        ("Observation?code:missing=true", False),
        ("Patient/P1/Observation?code=8480-6", False),
    ],
)
def test_one_clause_is_read_from_its_index(url: str, alone: bool) -> None:
    """A search of one plain clause never joins ``resources`` (index rows exist only for live
    current versions); an access restriction brings the join back, because it is a
    condition on the resource rows."""
    sql, _ = search_page_sql(query(url), "sqlite")
    assert ("FROM resources" not in sql) is alone
    restricted, _ = search_page_sql(query(url), "sqlite", restrict=_hide("x"))
    assert "FROM resources" in restricted


def test_restrict_on_includes(db: SearchDb) -> None:
    q = query("Observation?_id=OB1&_include=*")
    rids = db.rids(search_page_sql(q, db.dialect))
    assert db.ids(include_sql(q, rids, db.dialect, restrict=_hide("D1"))) == ["P1"]


def test_user_values_are_bound_never_inlined(db: SearchDb) -> None:
    evil = "x' OR '1'='1"
    q = query(f"Patient?name={evil}&_id={evil}&gender={evil}")
    sql, params = search_page_sql(q, db.dialect)
    assert evil not in sql and "1'='1" not in sql
    assert db.ids((sql, params)) == []
