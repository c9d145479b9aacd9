"""A restriction applied to a statement that already limits its rows to some types leaves
its own type test out (``Restriction.for_types``): the rows admitted are exactly those of
the full condition, for every constraint of the enforcement table, on both engines."""

from __future__ import annotations

from typing import Any

from enforce_helpers import T0, seed
from test_compiled_constraints import TABLE

from huitong.access.constraints import (
    ConsentedPatients,
    HideLabels,
    OrganizationPatients,
    ReferredPatients,
    Unrestricted,
    all_of,
    any_of,
)
from huitong.access.sql import Restriction, compile_groups
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository

CLINICIAN = all_of(
    any_of(OrganizationPatients("org-a"), ReferredPatients("pr-a", "org-a", T0),
           ConsentedPatients("org-a", "pr-a", "Observation", T0)),
    HideLabels(frozenset({"HIV"}), "org-a", "pr-a", T0),
)  # fmt: skip
QUERIES = ["Observation", "Patient", "Observation?_include=Observation:subject",
           "Patient?_revinclude=Observation:subject", "Observation?subject:Patient.gender=male"]


def _found(repo: Repository, restrict: Any) -> set[str]:
    out = set()
    for query in QUERIES:
        t, _, q = query.partition("?")
        params = [tuple(p.split("=", 1)) for p in q.split("&") if p]
        page = repo.search(parse_search(t, [*params, ("_count", "100")]), restrict=restrict)
        out |= {f"{query} {s.resource_type}/{s.id}" for s in [*page.matches, *page.included]}
        out.add(f"{query} total={page.total}")
    return out


def test_for_types_admits_what_the_full_condition_admits(repo: Repository) -> None:
    seed(repo)
    resolve = getattr(repo, "access_query", None)
    wrong = []
    for name, c in [*((n, c) for n, c, _ in TABLE), ("clinician", CLINICIAN)]:
        # Observation and Patient under the constraint, Organization open, the rest denied
        groups = [(("Observation",), c), (("Patient",), c), (("Organization",), Unrestricted())]
        restrict = compile_groups(groups, repo.dialect, resolve=resolve)  # type: ignore[arg-type]
        if restrict is None:
            continue
        assert isinstance(restrict, Restriction)

        def full(r: str, restrict: Restriction = restrict) -> tuple[str, list[Any]]:
            return restrict(r)  # a plain function: the store cannot narrow it

        if (a := _found(repo, restrict)) != (b := _found(repo, full)):
            wrong.append(f"{name}: typed {sorted(a - b)} vs full {sorted(b - a)}")
    assert not wrong, "\n".join(wrong)


def test_a_denied_type_admits_nothing(repo: Repository) -> None:
    restrict = compile_groups([(("Observation",), None), (("Patient",), Unrestricted())], repo.dialect)  # type: ignore[arg-type]
    assert isinstance(restrict, Restriction)
    assert restrict.for_types("r", ["Observation"]) == ("1 = 0", [])
    assert restrict.for_types("r", ["Patient"]) == ("1 = 1", [])
    mixed_sql, _ = restrict.for_types("r", ["Observation", "Patient"])
    assert "res_type" in mixed_sql  # types on both sides of a rule: the full test
