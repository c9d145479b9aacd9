"""Access restrictions with their patient sets read once per request (``resolve``, see
:func:`huitong.access.sql.compile_groups`) admit exactly the rows the all-SQL form admits.

The region and the constraint table are the access-enforcement suite's own
(tests/access_enforcement): every constraint, alone and combined, is compiled both ways and
run by the real store; then the cases the resolved form special-cases — a consent limited to
one type, a consent that lifts a hidden label, a deny, sets past ``MAX_RESOLVED_KEYS`` —
are changed in the data and compared again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "access_enforcement"))

from enforce_helpers import T0, seed
from test_compiled_constraints import CONSENT_A, HIDE_A, TABLE

import huitong.access.sql as access_sql
from huitong.access.constraints import (
    ConsentedPatients,
    Constraint,
    HideLabels,
    OrganizationPatients,
    PatientsIn,
    ReferredPatients,
    all_of,
    any_of,
)
from huitong.access.sql import compile_groups
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository

CLINICIAN_A = any_of(
    all_of(
        any_of(OrganizationPatients("org-a"), ReferredPatients("pr-a", "org-a", T0), CONSENT_A),
        HIDE_A,
    ),
)
OPT_OUT_A = all_of(ConsentedPatients("org-a", "pr-a", "Observation", T0, True), HIDE_A)
CASES: list[tuple[str, Constraint]] = [
    *((name, c) for name, c, _ in TABLE),
    ("clinician", CLINICIAN_A),
    ("opt-out-clinician", OPT_OUT_A),
    ("condition-consent", ConsentedPatients("org-b", "pr-b", "Condition", T0)),
]


@pytest.fixture
def seeded(repo: Repository) -> Repository:
    seed(repo)
    return repo


def _visible(
    repo: Repository, c: Constraint, *, resolved: bool, rtype: str = "Observation"
) -> set[str]:
    groups = [((rtype,), c), (("Patient", "Condition"), c)]
    resolve = getattr(repo, "access_query", None) if resolved else None
    restrict = compile_groups(groups, repo.dialect, resolve=resolve)  # type: ignore[arg-type]
    found = set()
    for query in (rtype, "Patient", f"{rtype}?_include={rtype}:subject"):
        t, _, q = query.partition("?")
        params = [tuple(p.split("=", 1)) for p in q.split("&") if p]
        page = repo.search(parse_search(t, [*params, ("_count", "100")]), restrict=restrict)
        found |= {f"{s.resource_type}/{s.id}" for s in [*page.matches, *page.included]}
        found.add(f"total={page.total}")
    return found


def _mismatches(repo: Repository) -> list[str]:
    return [
        f"{name}: sql {sorted(a)} != resolved {sorted(b)}"
        for name, c in CASES
        if (a := _visible(repo, c, resolved=False)) != (b := _visible(repo, c, resolved=True))
    ]


def _edit_consent(repo: Repository, new_id: str, patient: str, **provision: object) -> None:
    consent = repo.read("Consent", "cons-pb2").resource
    merged = {k: v for k, v in {**consent["provision"], **provision}.items() if v is not None}
    with repo.transaction() as tx:
        tx.update(
            {
                **consent,
                "id": new_id,
                "patient": {"reference": f"Patient/{patient}"},
                "provision": merged,
            }
        )


def test_resolved_and_sql_forms_admit_the_same_rows(seeded: Repository) -> None:
    assert not _mismatches(seeded)


@pytest.mark.parametrize(
    ("new_id", "patient", "provision"),
    [
        # a permit limited to labelled data: the correlated test must stay
        (
            "cons-pa1-hiv",
            "pa1",
            {
                "securityLabel": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}
                ]
            },
        ),
        # a permit limited to one type
        (
            "cons-pb1-cond",
            "pb1",
            {"class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]},
        ),
        # a deny naming nobody: excludes the patient for everyone
        ("deny-pb2", "pb2", {"type": "deny", "actor": None}),
        # a deny naming org-a only
        ("deny-pa2", "pa2", {"type": "deny"}),
    ],
)
def test_special_consents_keep_both_forms_equal(
    seeded: Repository, new_id: str, patient: str, provision: dict[str, object]
) -> None:
    _edit_consent(seeded, new_id, patient, **provision)
    assert not _mismatches(seeded)


def test_large_sets_fall_back_to_the_subquery(
    seeded: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_sql, "MAX_RESOLVED_KEYS", 0)
    assert not _mismatches(seeded)


@pytest.mark.parametrize("limited_consent", [True, False])
def test_one_statement_reads_the_facts(seeded: Repository, limited_consent: bool) -> None:
    if not limited_consent:
        with seeded.transaction() as tx:  # pb6's consent is limited to Condition
            tx.delete("Consent", "cons-pb6")
    calls: list[str] = []

    def counting(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        calls.append(sql)
        return seeded.access_query(sql, params)  # type: ignore[attr-defined]

    restrict = compile_groups(
        [(("Observation",), CLINICIAN_A)],
        seeded.dialect,  # type: ignore[arg-type]
        resolve=counting,
    )
    assert restrict is not None
    sql, _ = restrict("r")
    if seeded.dialect == "postgresql":
        assert len(calls) == 1
        # the per-row consent probe stays only while a type- or label-limited consent exists
        assert ("idx_reference ca" in sql) is limited_consent
        assert "idx_reference ga" not in sql  # no consent lifts a hidden label here
    else:
        assert calls == []  # SQLite plans the subqueries cheaply: left as SQL


def test_access_query_runs_selects_only(seeded: Repository) -> None:
    with pytest.raises(ValueError):
        seeded.access_query("DELETE FROM resources")  # type: ignore[attr-defined]
    assert (
        seeded.access_query(
            "SELECT COUNT(*) FROM idx_token WHERE param = ?",  # type: ignore[attr-defined]
            ["code"],
        )[0][0]
        > 0
    )


def test_patients_in_and_hide_labels_only_need_no_facts(seeded: Repository) -> None:
    calls: list[str] = []
    restrict = compile_groups(
        [
            (
                ("Observation",),
                all_of(PatientsIn(frozenset({"pa1"})), HideLabels(frozenset(), "org-a", None, T0)),
            )
        ],
        seeded.dialect,  # type: ignore[arg-type]
        resolve=lambda sql, params=(): calls.append(sql) or [],  # type: ignore[func-returns-value]
    )
    assert restrict is not None and calls == []
