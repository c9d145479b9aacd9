"""SMART App Launch v2 scope parsing vectors and what a scope set grants."""

from __future__ import annotations

import pytest

from huitong.access import ResourceScope, ScopeAlternative, ScopeError, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "context", "rtype", "perms", "restriction", "v1"),
    [
        ("patient/Observation.rs", "patient", "Observation", "rs", (), False),
        ("user/*.cruds", "user", "*", "cruds", (), False),
        ("system/*.read", "system", "*", "rs", (), True),
        ("patient/*.read", "patient", "*", "rs", (), True),
        ("user/Encounter.write", "user", "Encounter", "cud", (), True),
        ("user/Patient.*", "user", "Patient", "cruds", (), True),
        ("patient/Observation.c", "patient", "Observation", "c", (), False),
        ("user/Condition.ud", "user", "Condition", "ud", (), False),
        ("patient/Observation.rs?category=laboratory", "patient", "Observation", "rs",
         (("category", "laboratory"),), False),
        ("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
         "observation-category|vital-signs", "patient", "Observation", "rs",
         (("category", "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"),),
         False),
        ("user/Observation.rs?status=final&category=laboratory", "user", "Observation", "rs",
         (("category", "laboratory"), ("status", "final")), False),
    ],
)  # fmt: skip
def test_clinical_scope_vectors(
    text: str, context: str, rtype: str, perms: str, restriction: tuple, v1: bool
) -> None:
    scope = parse_scope(text)
    assert isinstance(scope, ResourceScope)
    assert (scope.context, scope.resource_type, scope.v1) == (context, rtype, v1)
    assert scope.permissions == frozenset(perms)
    assert scope.restriction == restriction
    assert scope.text == text


@pytest.mark.parametrize(
    "text",
    [
        "patient/Observation.sr",  # out of order
        "patient/Observation.rrs",  # repeated
        "patient/Observation.x",
        "patient/Observation.",
        "patient/Observation",
        "patient/Nonsense.rs",  # not an R4 type
        "patient/observation.rs",
        "patient/Observation.read?category=laboratory",  # v1 has no restrictions
        "patient/Observation.rs?",
        "patient/Observation.rs?category",
        "group/Observation.rs",  # not a context: an unknown scope, kept aside
    ],
)
def test_malformed_clinical_scopes(text: str) -> None:
    if text.startswith("group/"):
        assert parse_scope(text) == text
        return
    with pytest.raises(ScopeError) as err:
        parse_scope(text)
    assert err.value.en and err.value.zh


def test_flags_and_unknown_scopes() -> None:
    s = parse_scopes(
        "openid fhirUser profile launch launch/patient launch/encounter offline_access "
        "online_access patient/Observation.rs launch/patient custom:thing"
    )
    assert s.openid and s.fhir_user and s.profile and s.launch
    assert s.launch_patient and s.launch_encounter and s.offline_access and s.online_access
    assert s.other == ("custom:thing",)
    assert len(s.resources) == 1
    assert parse_scopes("").resources == () and not parse_scopes("").openid


@pytest.mark.parametrize(
    ("scopes", "interaction", "rtype", "allowed"),
    [
        ("patient/Observation.rs", "read", "Observation", True),
        ("patient/Observation.rs", "vread", "Observation", True),
        ("patient/Observation.rs", "history-instance", "Observation", True),
        ("patient/Observation.rs", "search-type", "Observation", True),
        ("patient/Observation.rs", "create", "Observation", False),
        ("patient/Observation.rs", "read", "Condition", False),
        ("patient/Observation.r", "search-type", "Observation", False),
        ("patient/Observation.s", "read", "Observation", False),
        ("user/*.cruds", "delete", "Encounter", True),
        ("user/*.cruds", "patch", "Encounter", True),
        ("system/*.read", "search-system", "Patient", True),
        ("system/*.read", "update", "Patient", False),
        ("user/Patient.write", "update", "Patient", True),
        ("user/Patient.write", "read", "Patient", False),
        ("user/Patient.*", "history-type", "Patient", True),
        ("openid fhirUser", "read", "Patient", False),
    ],
)
def test_allows(scopes: str, interaction: str, rtype: str, allowed: bool) -> None:
    assert parse_scopes(scopes).allows(interaction, rtype) is allowed


def test_restrictions_add_up_and_unrestricted_wins_within_a_context() -> None:
    s = parse_scopes(
        "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs "
        "user/Observation.rs?category=laboratory"
    )
    g = s.grant("search-type", "Observation")
    assert g.alternatives == (
        ScopeAlternative("patient", (("category", "laboratory"),)),
        ScopeAlternative("patient", (("category", "vital-signs"),)),
        ScopeAlternative("user", (("category", "laboratory"),)),
    )
    wider = parse_scopes("patient/Observation.rs?category=laboratory patient/Observation.rs")
    assert wider.grant("read", "Observation").alternatives == (ScopeAlternative("patient"),)
    assert parse_scopes("user/*.rs").grant("create", "Observation").allowed is False
    with pytest.raises(ValueError):
        s.grant("teleport", "Observation")
