"""A compiled restriction builds each statement's condition once (``Restriction`` keeps it
per alias and type list): later statements — and later requests that reuse the restriction
— get the same SQL and parameters, and a caller changing the parameters it was given
cannot change what the next caller gets."""

from __future__ import annotations

from typing import Any

from enforce_helpers import T0

from huitong.access.constraints import (
    ConsentedPatients,
    HideLabels,
    OrganizationPatients,
    Unrestricted,
    all_of,
    any_of,
)
from huitong.access.sql import Restriction, compile_groups

Sql = tuple[str, list[Any]]


def _counting() -> tuple[list[str], Any]:
    calls: list[str] = []

    def cond(r: str) -> Sql:
        calls.append(r)
        return f"{r}.patient_key = ANY(string_to_array(?, ','))", ["p1,p2"]

    return calls, cond


def test_each_condition_is_built_once_per_alias_and_types() -> None:
    calls, cond = _counting()
    restriction = Restriction("postgresql", [(frozenset({"Observation", "Condition"}), cond)], None)
    first = restriction.for_types("r", ["Observation"])
    assert restriction.for_types("r", ["Observation"]) == first
    assert restriction("r") == restriction("r")
    restriction.for_types("s2", ["Observation"])
    # one build each for (r, Observation), (r, every type), (s2, Observation): without the
    # kept conditions every call builds again (5 here)
    assert calls == ["r", "r", "s2"]


def test_a_caller_changing_its_params_does_not_reach_the_next_caller() -> None:
    _, cond = _counting()
    restriction = Restriction("postgresql", [(frozenset({"Observation"}), cond)], None)
    sql, params = restriction.for_types("r", ["Observation"])
    params.append("extra")  # the store extends the lists it is given
    whole_sql, whole = restriction("r")
    whole.clear()
    assert restriction.for_types("r", ["Observation"]) == (sql, ["p1,p2"])
    assert restriction("r") == (whole_sql, ["Observation", "p1,p2"])


def test_kept_conditions_equal_freshly_compiled_ones() -> None:
    clinician = all_of(
        any_of(OrganizationPatients("org-a"), ConsentedPatients("org-a", "pr-a", "", T0)),
        HideLabels(frozenset({"HIV"}), "org-a", "pr-a", T0),
    )
    groups = [(("Observation",), clinician), (("Organization",), Unrestricted())]
    for dialect in ("sqlite", "postgresql"):
        kept = compile_groups(groups, dialect)  # type: ignore[arg-type]
        assert isinstance(kept, Restriction)
        for alias, types in (("r", ["Observation"]), ("s1", ["Organization"]), ("r", [])):
            for _ in range(2):  # built, then kept
                fresh = compile_groups(groups, dialect)  # type: ignore[arg-type]
                assert isinstance(fresh, Restriction)
                assert kept.for_types(alias, types) == fresh.for_types(alias, types)
                assert kept(alias) == fresh(alias)
