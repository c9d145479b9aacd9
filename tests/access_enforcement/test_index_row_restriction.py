"""A search of one plain clause under a compiled access restriction tests the restriction on
the clause's index rows, not on ``resources`` (store/search_sql.py, ``_row_restriction``):
the rows and Bundle.total must be exactly those of the form joined to ``resources``.

Every constraint of the compiled-constraint table (and the combined clinician ones), every
index table a plain clause reads, compiled all-SQL and (PostgreSQL) with the facts read
ahead; on data that would expose a wrong compartment: an Observation with no subject, one
moved to another patient by an update, one deleted, a labelled row of a consented patient,
a deleted Patient. The joined form is the same restriction without ``index_rows`` (the
store then keeps the join), so a wrong count on the index path shows as a difference; a few
totals are also stated outright, so that both forms being wrong would show too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from enforce_helpers import HEART_RATE, LOINC, T0, seed
from test_compiled_constraints import CONSENT_A, HIDE_A, TABLE

from huitong.access.constraints import (
    ConsentedPatients,
    Constraint,
    HideLabels,
    OrganizationPatients,
    ReferredPatients,
    all_of,
    any_of,
)
from huitong.access.sql import compile_groups
from huitong.fhir.search.model import SearchQuery
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository
from huitong.store.search_sql import search_count_sql, search_page_sql

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLINICIAN_A = all_of(
    any_of(OrganizationPatients("org-a"), ReferredPatients("pr-a", "org-a", T0), CONSENT_A),
    HIDE_A,
)
OPT_OUT_A = all_of(ConsentedPatients("org-a", "pr-a", "Observation", T0, True), HIDE_A)
# a label no patient's data carries: with the facts read ahead there is nothing to test
UNLABELLED_A = all_of(
    any_of(OrganizationPatients("org-a"), ReferredPatients("pr-a", "org-a", T0), CONSENT_A),
    HideLabels(frozenset({"ETH"}), "org-a", "pr-a", T0),
)
CONSTRAINTS: list[tuple[str, Constraint]] = [
    *((name, c) for name, c, _ in TABLE),
    ("clinician", CLINICIAN_A),
    ("opt-out-clinician", OPT_OUT_A),
    ("unlabelled-clinician", UNLABELLED_A),
    ("condition-consent", ConsentedPatients("org-b", "pr-b", "Condition", T0)),
]
# One plain clause on each index table, and forms of it (system|code, several values).
SEARCHES = [
    f"Observation?code={HEART_RATE}",
    f"Observation?code={LOINC}|{HEART_RATE}",
    f"Observation?code={HEART_RATE},9999-9",
    "Observation?category=vital-signs",
    f"Observation?_security={ACT}|PSY",
    "Observation?date=ge2026-01-01",
    "Observation?subject=Patient/pa1",
    "Observation?value-quantity=72",
    "Patient?gender=female",
    "Patient?name=zhang",
    "Patient?birthdate=1980-05-01",
    "Patient?identifier=urn:oid:2.16.156.10011.1.1|ID-pb2",
    "Patient?organization=Organization/org-a",
    "Consent?status=active",
    "Organization?name=医院",
]


def _observation(oid: str, pid: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": HEART_RATE}]},
        "effectiveDateTime": "2026-12-02",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
        **extra,
    }  # fmt: skip
    if pid is not None:
        body["subject"] = {"reference": f"Patient/{pid}"}
    return body


@pytest.fixture
def seeded(repo: Repository) -> Repository:
    seed(repo)
    with repo.transaction() as tx:
        tx.update(_observation("obs-nosubject", None))  # no compartment: patient_key NULL
        tx.update(_observation("obs-hiv-nosubject", None, meta={"security": [
            {"system": ACT, "code": "HIV"}]}))  # fmt: skip
        tx.update(_observation("obs-moved", "pa1"))
        tx.update(_observation("obs-gone", "pa1"))
        tx.update(_observation("obs-psy-pb2", "pb2", meta={"security": [
            {"system": ACT, "code": "PSY"}]}))  # fmt: skip
        tx.update({"resourceType": "Patient", "id": "pa-gone", "gender": "female",
                   "managingOrganization": {"reference": "Organization/org-a"}})  # fmt: skip
    with repo.transaction() as tx:
        # pa1 (org-a's) → pb1 (nobody's for org-a): its index rows must follow
        tx.update(_observation("obs-moved", "pb1"))
        tx.delete("Observation", "obs-gone")
        tx.delete("Patient", "pa-gone")
    return repo


class _Joined:
    """The same restriction without ``index_rows``: the store joins ``resources``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, r: str) -> tuple[str, list[Any]]:
        result: tuple[str, list[Any]] = self._inner(r)
        return result

    def for_types(self, r: str, types: Sequence[str]) -> tuple[str, list[Any]]:
        result: tuple[str, list[Any]] = self._inner.for_types(r, types)
        return result


def _restriction(repo: Repository, c: Constraint, *, resolved: bool) -> Any:
    groups = [(("Observation", "Patient", "Condition"), c),
              (("Consent",), c), (("Organization", "Practitioner"), None)]  # fmt: skip
    resolve = getattr(repo, "access_query", None) if resolved else None
    restriction = compile_groups(groups, repo.dialect, resolve=resolve)  # type: ignore[arg-type]
    assert restriction is not None and restriction.index_rows
    return restriction


def _query(url: str, *extra: tuple[str, str]) -> SearchQuery:
    rtype, _, q = url.partition("?")
    params = [tuple(p.split("=", 1)) for p in q.split("&") if p]
    return parse_search(rtype, [*params, *extra])  # type: ignore[arg-type]


def _seen(repo: Repository, url: str, restrict: Any) -> tuple[list[str], int | None, int | None]:
    """(every match by id, Bundle.total of a one-row page, an exact COUNT)."""
    everything = repo.search(_query(url, ("_count", "100")), restrict=restrict)
    # a one-row page: the total comes from the COUNT statement, not from a short page
    one = repo.search(_query(url, ("_count", "1"), ("_total", "accurate")), restrict=restrict)
    estimate = repo.search(_query(url, ("_count", "1"), ("_total", "estimate")),
                           restrict=restrict)  # fmt: skip
    assert one.total == estimate.total
    return sorted(s.id for s in everything.matches), everything.total, one.total


@pytest.mark.parametrize("resolved", [False, True], ids=["sql", "resolved"])
def test_index_rows_admit_exactly_what_resource_rows_admit(
    seeded: Repository, resolved: bool
) -> None:
    if resolved and seeded.dialect != "postgresql":
        pytest.skip("facts are read ahead on PostgreSQL only")
    wrong = []
    for name, c in CONSTRAINTS:
        restriction = _restriction(seeded, c, resolved=resolved)
        for url in SEARCHES:
            page_sql, _ = search_page_sql(_query(url), seeded.dialect, restrict=restriction)
            count_sql, _ = search_count_sql(_query(url), seeded.dialect, restrict=restriction)
            # the index path is taken (else this test would compare the join with itself)
            for sql in (page_sql, count_sql):
                assert "FROM resources r " not in sql, (name, url)
            on_rows = _seen(seeded, url, restriction)
            joined = _seen(seeded, url, _Joined(restriction))
            if on_rows != joined:
                wrong.append(f"{name} {url}: index rows {on_rows} != joined {joined}")
            if resolved:  # the facts read ahead admit what the all-SQL form admits
                plain = _seen(seeded, url, _restriction(seeded, c, resolved=False))
                if on_rows != plain:
                    wrong.append(f"{name} {url}: resolved {on_rows} != all-SQL {plain}")
            if on_rows[1] != len(on_rows[0]) or on_rows[2] != len(on_rows[0]):
                wrong.append(f"{name} {url}: totals {on_rows[1:]} for {on_rows[0]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("resolved", [False, True], ids=["sql", "resolved"])
def test_a_clinicians_broad_counts(seeded: Repository, resolved: bool) -> None:
    """Stated outright: org-a's clinician sees pa1, pa2 (own organization), pb2 (consent)
    and pb5 (referral); never the HIV or PSY row, the subject-less row, the row moved to
    pb1, the deleted row or the deleted Patient."""
    if resolved and seeded.dialect != "postgresql":
        pytest.skip("facts are read ahead on PostgreSQL only")
    restriction = _restriction(seeded, CLINICIAN_A, resolved=resolved)
    expected_obs = ["obs-pa1", "obs-pa2", "obs-pb2", "obs-pb5"]
    expected_patients = ["pa1", "pa2", "pb2", "pb5"]
    assert _seen(seeded, f"Observation?code={HEART_RATE}", restriction) == (
        expected_obs, 4, 4)
    assert _seen(seeded, "Patient?gender=female", restriction) == (expected_patients, 4, 4)
    assert _seen(seeded, f"Observation?_security={ACT}|PSY", restriction) == ([], 0, 0)
    # labels alone (no care relationship): a row of no patient passes unless labelled
    hide = _restriction(seeded, HIDE_A, resolved=resolved)
    assert "obs-nosubject" in _seen(seeded, f"Observation?code={HEART_RATE}", hide)[0]
    assert _seen(seeded, f"Observation?_security={ACT}|HIV", hide) == ([], 0, 0)
    # opt-out: every patient's rows but the labelled ones; still not the row of no patient
    opt_out = _restriction(seeded, OPT_OUT_A, resolved=resolved)
    every = sorted({f"obs-{p}" for p in ("pa1", "pa2", "pb1", "pb2", "pb3", "pb4", "pb5",
                                         "pb6")} | {"obs-moved"})  # fmt: skip
    assert _seen(seeded, f"Observation?code={HEART_RATE}", opt_out) == (every, 9, 9)


def test_the_resolved_condition_is_one_key_set(seeded: Repository) -> None:
    """With the facts read ahead, a clinician's condition for a label nobody's data carries
    is one array of patient keys: no OR per relationship, no label probe, no constants."""
    if seeded.dialect != "postgresql":
        pytest.skip("facts are read ahead on PostgreSQL only")
    # pb6's consent is limited to Conditions: it keeps its per-row test, so it goes first
    limited = _restriction(seeded, UNLABELLED_A, resolved=True).for_types("x", ("Observation",))
    assert "EXISTS" in limited[0] and "FROM idx_token ht" not in limited[0]  # no label probe
    with seeded.transaction() as tx:
        tx.delete("Consent", "cons-pb6")
    restriction = _restriction(seeded, UNLABELLED_A, resolved=True)
    sql, params = restriction.for_types("x", ("Observation",))
    # a hashed sub-plan, not ``= ANY(array)``, which the planner estimates key by key
    # against the column's statistics (access/sql.py ``_key_in``)
    assert sql == "(x.patient_key IN (SELECT unnest(string_to_array(?, ',')))) IS TRUE"
    # pa1 and pa2 (own organization), pb2 (consent), pb5 (referral)
    assert params == ["pa1,pa2,pb2,pb5"]


def test_other_restrictions_keep_the_join(seeded: Repository) -> None:
    """A restriction that does not declare ``index_rows`` may read any column of the
    resource row: the store joins ``resources`` for it."""

    def hide_pa1(r: str) -> tuple[str, list[Any]]:
        return f"{r}.res_id <> ?", ["obs-pa1"]

    q = _query(f"Observation?code={HEART_RATE}", ("_count", "1"), ("_total", "accurate"))
    sql, _ = search_count_sql(q, seeded.dialect, restrict=hide_pa1)
    assert "FROM resources r " in sql
    page = seeded.search(q, restrict=hide_pa1)
    # 8 patients' rows + HIV + 2 subject-less + moved + PSY, less obs-pa1
    assert page.total == 12
