"""Searches answered through the compartment key, on both engines: ``_has`` on Patient
(search_sql._keyed_probe) and ``patient=x`` with a code (search_sql._keyed_reference).

A small world where index rows carry ``patient_key`` as the store writes it, with the cases
the compartment key alone would miss and the cross-compartment rows must supply: sources
filed under the patient they refer to, filed under another patient, filed under none, a
source filed under a patient it does not refer to, a golden record's links, a Group,
deleted patients and sources. Every query is checked against a brute-force answer computed
from the world's own description, on both page arms (read every match / walk the
candidates in rid order), page by page, and as counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest

from huitong.fhir.search.parse import parse_search
from huitong.store import search_sql
from huitong.store.search_sql import search_count_sql, search_page_sql

from .conftest import SearchDb, open_search_db

LOINC = "http://loinc.org"
GENDER = "http://hl7.org/fhir/administrative-gender"


@dataclass
class Source:
    """An Observation: its codes, the patient it refers to (``patient``/``subject``) and the
    compartment its index rows are filed under."""

    id: str
    codes: list[str]
    subject: str  # "Patient/x" or "Group/x"
    key: str | None
    deleted: bool = False


@dataclass
class Person:
    id: str
    gender: str
    deleted: bool = False
    links: list[str] = field(default_factory=list)  # a golden record's sources


PEOPLE = [
    Person("PA", "female"),
    Person("PB", "male"),
    Person("PC", "female"),
    Person("PD", "male", deleted=True),
    Person("PE", "male"),
    Person("PF", "female"),
    Person("PG", "male", links=["PA", "PB"]),  # a golden record: its links cross compartments
    Person("PH", "female"),  # no observations at all
]
SOURCES = [
    Source("OA1", ["c1"], "Patient/PA", "PA"),
    Source("OA2", ["c2"], "Patient/PA", "PA"),
    Source("OB1", ["c1"], "Patient/PB", "PB"),
    Source("OX1", ["c3"], "Patient/PC", "PA"),  # filed under PA, about PC
    Source("OX2", ["c2"], "Patient/PB", None),  # filed under no compartment
    Source("OD1", ["c1"], "Patient/PD", "PD"),  # its patient is deleted
    Source("OF1", ["c1", "c4"], "Patient/PF", "PF"),
    Source("OE0", ["c1", "c5"], "Patient/PE", "PE", deleted=True),  # deleted: no index rows
    Source("OG1", ["c1"], "Group/G1", None),  # about a Group, not a patient
    Source("OE1", ["c3"], "Patient/PE", "PA"),  # filed under PA, about PE
    Source("OC1", ["c6"], "Patient/PC", "PC"),
    Source("OC2", ["c6"], "Patient/PC", "PC"),
    # PA's first c7 source (by rid) is about PC; its second is about PA itself
    Source("OX3", ["c7"], "Patient/PC", "PA"),
    Source("OA3", ["c7"], "Patient/PA", "PA"),
]


def build(db: SearchDb) -> None:
    """People first, then sources, interleaved as a load would (rid order = this order)."""
    for p in PEOPLE:
        db.add(
            "Patient", p.id, deleted=p.deleted, patient_key=p.id,
            token=[("gender", 0, GENDER, p.gender, None)],
            reference=[("link", i, "Patient", t, None) for i, t in enumerate(p.links)],
        )  # fmt: skip
    db.add("Group", "G1")
    for s in SOURCES:
        ttype, _, tid = s.subject.partition("/")
        refs = [("subject", 0, ttype, tid, None)]
        if ttype == "Patient":
            refs.append(("patient", 0, ttype, tid, None))
        db.add(
            "Observation", s.id, deleted=s.deleted, patient_key=s.key,
            token=[("code", i, LOINC, c, None) for i, c in enumerate(s.codes)],
            reference=refs,
        )  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[SearchDb]:
    world = open_search_db(request.param, request)
    build(world)
    yield world
    if world.dialect == "sqlite":
        world.conn.close()


def expected(
    codes: set[str],
    *,
    gender: str | None = None,
    hidden: frozenset[str] = frozenset(),
) -> list[str]:
    """Patients (in rid order) that a live, visible Observation with one of ``codes`` refers
    to through ``patient``: the definition of the search, straight from the world."""
    targets = {
        s.subject.partition("/")[2]
        for s in SOURCES
        if not s.deleted
        and s.id not in hidden
        and s.subject.startswith("Patient/")
        and codes & set(s.codes)
    }
    return [
        p.id
        for p in PEOPLE
        if p.id in targets
        and not p.deleted
        and p.id not in hidden
        and (gender is None or p.gender == gender)
    ]


def query(url: str) -> Any:
    path, _, qs = url.partition("?")
    return parse_search(path, parse_qsl(qs, keep_blank_values=True))


def _hide(*hidden: str) -> Any:
    def restrict(alias: str) -> tuple[str, list[Any]]:
        return f"{alias}.res_id NOT IN ({', '.join('?' * len(hidden))})", list(hidden)

    return restrict


@pytest.fixture(params=["walk", "all-matches"])
def arm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force a page's arm: walk the candidates in rid order, or read every match."""
    walk = request.param == "walk"
    monkeypatch.setattr(search_sql, "_HAS_SPREAD", 1 if walk else 10**9)
    monkeypatch.setattr(search_sql, "_HAS_DENSE", 1 if walk else 10**9)
    return str(request.param)


HAS = "Patient?_has:Observation:patient:code="
CODE_CASES = [
    ("c1", {"c1"}),  # own compartments; a deleted patient; a Group
    ("c2", {"c2"}),  # PA filed under itself, PB through a source with no compartment
    ("c3", {"c3"}),  # both sources filed under PA, neither about PA
    ("c4", {"c4"}),  # a second code on the same source
    ("c5", {"c5"}),  # only a deleted source
    ("c6", {"c6"}),  # two sources for one patient
    ("c7", {"c7"}),  # a compartment's first source refers elsewhere, its second home
    (f"{LOINC}|c3", {"c3"}),
    ("c1,c3", {"c1", "c3"}),
    ("c9", set()),
]


def test_the_keyed_path_is_the_one_under_test() -> None:
    """The queries below take the compartment-key SQL (or the tests would prove nothing
    about it); a value without a code does not."""
    assert "patient_key" in search_page_sql(query(HAS + "c1"), "sqlite")[0]
    assert "patient_key" in search_count_sql(query(HAS + "c1"), "sqlite", limit=5)[0]
    assert "patient_key" not in search_page_sql(query(HAS + f"{LOINC}|"), "sqlite")[0]
    assert "patient_key" not in search_page_sql(query(HAS + "c1&_sort=gender"), "sqlite")[0]


@pytest.mark.parametrize(("value", "codes"), CODE_CASES, ids=[c[0] for c in CODE_CASES])
def test_page_and_count(db: SearchDb, arm: str, value: str, codes: set[str]) -> None:
    q = query(HAS + value)
    want = expected(codes)
    assert db.ids(search_page_sql(q, db.dialect)) == want
    assert db.scalar(search_count_sql(q, db.dialect)) == len(want)
    for limit in (1, 2, 100):
        got = db.scalar(search_count_sql(q, db.dialect, limit=limit))
        assert got == min(limit, len(want))


@pytest.mark.parametrize("value", ["c1", "c1,c2,c3"])
def test_pages_in_turn_make_the_whole(db: SearchDb, arm: str, value: str) -> None:
    """Page by page (one per page, then two), every match exactly once, in rid order."""
    want = expected(set(value.split(",")))
    for size in (1, 2):
        got: list[str] = []
        offset = 0
        while True:
            rows = db.ids(search_page_sql(query(f"{HAS}{value}&_count={size}&_offset={offset}"),
                                          db.dialect))  # fmt: skip
            got += rows[:size]
            if len(rows) <= size:
                break
            offset += size
        assert got == want


@pytest.mark.parametrize(("gender", "value"), [("male", "c1"), ("female", "c1,c3"), ("male", "c3")])
def test_with_another_clause(db: SearchDb, arm: str, gender: str, value: str) -> None:
    q = query(f"{HAS}{value}&gender={gender}")
    want = expected(set(value.split(",")), gender=gender)
    assert db.ids(search_page_sql(q, db.dialect)) == want
    assert db.scalar(search_count_sql(q, db.dialect, limit=100)) == len(want)


def test_two_has_clauses_intersect(db: SearchDb, arm: str) -> None:
    q = query(f"{HAS}c1&_has:Observation:patient:code=c2")
    want = [p for p in expected({"c1"}) if p in expected({"c2"})]
    assert want == ["PA", "PB"]
    assert db.ids(search_page_sql(q, db.dialect)) == want
    assert db.scalar(search_count_sql(q, db.dialect, limit=100)) == len(want)


def test_sorted(db: SearchDb) -> None:
    q = query(f"{HAS}c1,c2,c3&_sort=-_id")
    assert db.ids(search_page_sql(q, db.dialect)) == sorted(expected({"c1", "c2", "c3"}))[::-1]


@pytest.mark.parametrize(
    ("value", "hidden"),
    [
        ("c1", {"PB"}),  # a matching patient
        ("c3", {"OX1"}),  # the only source of PC's match, filed under another patient
        ("c2", {"OX2"}),  # the only source of PB's match, filed under none
        ("c1,c2", {"OA1", "PF"}),
    ],
)
def test_the_restriction_holds_for_patients_and_sources(
    db: SearchDb, arm: str, value: str, hidden: set[str]
) -> None:
    q = query(HAS + value)
    want = expected(set(value.split(",")), hidden=frozenset(hidden))
    restrict = _hide(*hidden)
    assert db.ids(search_page_sql(q, db.dialect, restrict=restrict)) == want
    assert db.scalar(search_count_sql(q, db.dialect, restrict=restrict)) == len(want)
    assert db.scalar(search_count_sql(q, db.dialect, restrict=restrict, limit=100)) == len(want)


def test_links_across_compartments(db: SearchDb, arm: str) -> None:
    """A golden record's links point at patients other than its own compartment: only the
    cross-compartment half can see them."""
    q = query("Patient?_has:Patient:link:gender=male")
    assert "patient_key" in search_page_sql(q, db.dialect)[0]
    assert db.ids(search_page_sql(q, db.dialect)) == ["PA", "PB"]
    assert db.scalar(search_count_sql(q, db.dialect, limit=1)) == 1
    assert db.ids(search_page_sql(query("Patient?_has:Patient:link:gender=female"), db.dialect)) == []


def expected_sources(subject: str, codes: set[str], hidden: frozenset[str] = frozenset()) -> list[str]:
    """Observations (rid order) about ``subject`` (``Patient/x``, or a bare id of any type)
    with one of ``codes``, live and visible."""
    def about(s: Source) -> bool:
        return s.subject == subject if "/" in subject else s.subject.endswith("/" + subject)

    return [
        s.id for s in SOURCES
        if not s.deleted and s.id not in hidden and about(s) and codes & set(s.codes)
    ]  # fmt: skip


REFERENCE_CASES = [
    ("patient=PA&code=c1,c2,c7", "PA", {"c1", "c2", "c7"}),  # filed under PA
    ("patient=PC&code=c3", "PC", {"c3"}),  # filed under PA, about PC
    ("patient=PB&code=c2", "PB", {"c2"}),  # one filed under PB, one under none
    ("subject=Patient/PE&code=c1,c3", "Patient/PE", {"c1", "c3"}),  # deleted + cross
    ("subject:Patient=PC&code=c6,c7", "Patient/PC", {"c6", "c7"}),
    ("subject=G1&code=c1", "G1", {"c1"}),  # a bare id that is a Group
    ("subject=Group/G1&code=c1", "Group/G1", {"c1"}),  # typed, not a Patient: not keyed
    ("patient=PD&code=c1", "PD", {"c1"}),  # the patient is deleted, its Observation is not
    ("patient=PA&code=c3", "PA", set()),  # c3 filed under PA, but about others
]


@pytest.mark.parametrize(("params", "subject", "codes"), REFERENCE_CASES,
                         ids=[c[0] for c in REFERENCE_CASES])  # fmt: skip
def test_reference_and_code(db: SearchDb, params: str, subject: str, codes: set[str]) -> None:
    q = query(f"Observation?{params}")
    want = expected_sources(subject, codes)
    assert ("patient_key" in search_page_sql(q, db.dialect)[0]) is ("Group/" not in params)
    assert db.ids(search_page_sql(q, db.dialect)) == want
    assert db.scalar(search_count_sql(q, db.dialect)) == len(want)
    for size in (1, 2):
        paged = db.ids(search_page_sql(query(f"Observation?{params}&_count={size}"), db.dialect))
        assert paged == want[: size + 1]


@pytest.mark.parametrize(
    ("params", "subject", "codes", "hidden"),
    [
        ("patient=PC&code=c3,c6", "PC", {"c3", "c6"}, {"OX1"}),
        ("patient=PA&code=c1,c2", "PA", {"c1", "c2"}, {"OA2"}),
        ("patient=PA&code=c1,c2", "PA", {"c1", "c2"}, {"PA"}),  # the patient itself hidden
    ],
)
def test_reference_and_code_keep_to_the_restriction(
    db: SearchDb, params: str, subject: str, codes: set[str], hidden: set[str]
) -> None:
    """Hiding a source hides it; hiding the patient does not hide what refers to it (the
    restriction applies to each resource the search returns or goes through)."""
    q = query(f"Observation?{params}")
    want = expected_sources(subject, codes, frozenset(hidden))
    restrict = _hide(*hidden)
    assert db.ids(search_page_sql(q, db.dialect, restrict=restrict)) == want
    assert db.scalar(search_count_sql(q, db.dialect, restrict=restrict)) == len(want)
