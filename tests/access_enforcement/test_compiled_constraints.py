"""Each constraint leaf compiled to SQL and run by the real store, on both engines: a table of
(constraint, expected visible Observations), plus the paths break-glass, share codes and the
opt-out default take (they come from the policy, not from tokens)."""

from __future__ import annotations

import pytest
from enforce_helpers import ALL_PATIENTS, ORG_A_SEES, T0, FixedClock, obs_of, seed

from huitong.access.constraints import (
    BreakGlassPatient,
    ConsentedPatients,
    Constraint,
    HideLabels,
    MatchesSearch,
    OrganizationPatients,
    PatientsIn,
    ReferredPatients,
    SharedPatient,
    Unrestricted,
    all_of,
    any_of,
)
from huitong.access.policy import decide
from huitong.access.principal import (
    BreakGlass,
    PatientContext,
    Principal,
    Referral,
    Role,
    ShareGrant,
)
from huitong.access.sql import compile_by_type, compile_constraint
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.server.authorization import AuthorizedRepository
from huitong.store.repository import Repository

HIDE_A = HideLabels(frozenset({"HIV", "PSY"}), "org-a", "pr-a", T0)
CONSENT_A = ConsentedPatients("org-a", "pr-a", "Observation", T0)
EVERY_OBS = obs_of(ALL_PATIENTS) | {"obs-hiv-pa1"}

TABLE: list[tuple[str, Constraint, set[str]]] = [
    ("patients-in", PatientsIn(frozenset({"pa1", "pb1"})), {"obs-pa1", "obs-hiv-pa1", "obs-pb1"}),
    ("patients-in-none", PatientsIn(frozenset()), set()),
    ("registered-or-seen", OrganizationPatients("org-a"),
     {"obs-pa1", "obs-hiv-pa1", "obs-pa2"}),
    ("referred-to-practitioner", ReferredPatients("pr-a", None, T0), {"obs-pb5"}),
    ("referred-to-org", ReferredPatients(None, "org-a", T0), set()),
    ("consented", CONSENT_A, {"obs-pb2"}),
    ("consent-opt-out", ConsentedPatients("org-a", "pr-a", "Observation", T0, True), EVERY_OBS),
    ("hide-labels", HIDE_A, EVERY_OBS - {"obs-hiv-pa1"}),
    ("break-glass", BreakGlassPatient("pb1", T0 + 1), {"obs-pb1"}),
    ("share-code", all_of(SharedPatient("pa1", "code-1", T0 + 1), HIDE_A), {"obs-pa1"}),
    ("any-of", any_of(OrganizationPatients("org-b"), PatientsIn(frozenset({"pa2"}))),
     obs_of(ALL_PATIENTS - {"pa1"})),
    ("all-of", all_of(OrganizationPatients("org-b"), CONSENT_A), {"obs-pb2"}),
]


@pytest.fixture
def seeded(repo: Repository) -> Repository:
    seed(repo)
    return repo


def _visible(repo: Repository, c: Constraint, rtype: str = "Observation") -> set[str]:
    restrict = compile_by_type({rtype: c}, repo.dialect)  # type: ignore[arg-type]
    page = repo.search(parse_search(rtype, [("_count", "100")]), restrict=restrict)
    return {s.id for s in page.matches}


def test_each_constraint_admits_exactly_its_rows(seeded: Repository) -> None:
    wrong = [
        f"{name}: expected {sorted(expected)}, got {sorted(got)}"
        for name, c, expected in TABLE
        if (got := _visible(seeded, c)) != expected
    ]
    assert not wrong, "\n".join(wrong)


def test_a_consent_granting_a_sensitive_label_opens_it(seeded: Repository) -> None:
    consent = seeded.read("Consent", "cons-pb2").resource
    with seeded.transaction() as tx:
        tx.update({**consent, "id": "cons-pa1-hiv", "patient": {"reference": "Patient/pa1"},
                   "provision": {**consent["provision"], "securityLabel": [{
                       "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                       "code": "HIV"}]}})  # fmt: skip
    assert "obs-hiv-pa1" in _visible(seeded, HIDE_A)
    other = HideLabels(frozenset({"HIV"}), "org-b", "pr-b", T0)
    assert "obs-hiv-pa1" not in _visible(seeded, other)
    # a label-scoped permit covers the labelled data only
    assert _visible(seeded, all_of(PatientsIn(frozenset({"pa1"})), CONSENT_A)) == {
        "obs-hiv-pa1"
    }


def test_a_deny_consent_overrides_the_opt_out_default(seeded: Repository) -> None:
    consent = seeded.read("Consent", "cons-pb2").resource
    with seeded.transaction() as tx:
        tx.update({**consent, "id": "deny-pb1", "patient": {"reference": "Patient/pb1"},
                   "provision": {"type": "deny"}})  # fmt: skip
    opt_out = ConsentedPatients("org-a", "pr-a", "Observation", T0, True)
    assert _visible(seeded, opt_out) == EVERY_OBS - {"obs-pb1"}


def test_unrestricted_compiles_to_nothing_and_types_left_out_are_hidden(
    seeded: Repository,
) -> None:
    assert compile_constraint(Unrestricted(), "sqlite") is None
    assert compile_by_type({"Observation": Unrestricted()}, "sqlite") is None
    assert compile_by_type({"Observation": Unrestricted(), "Patient": None}, "sqlite")
    assert _visible(seeded, Unrestricted()) == EVERY_OBS
    assert _visible(seeded, Unrestricted(), "Patient") == ALL_PATIENTS
    # Patients are not in this mapping: a Patient search under it finds nothing
    restrict = compile_by_type(
        {"Observation": Unrestricted(), "Patient": None},
        seeded.dialect,  # type: ignore[arg-type]
    )
    page = seeded.search(parse_search("Patient", []), restrict=restrict)
    assert page.matches == [] and page.total == 0


def test_search_parameter_scopes_are_refused_rather_than_ignored() -> None:
    with pytest.raises(FhirError) as err:
        compile_constraint(MatchesSearch((("category", "laboratory"),)), "sqlite")
    assert err.value.category is Category.NOT_SUPPORTED


def test_break_glass_and_share_codes_reach_through_the_policy(seeded: Repository) -> None:
    clock = FixedClock()
    rows = [
        # (principal, patient ids whose heart-rate Observations are visible)
        (Principal(Role.CLINICIAN, organization_id="org-a", practitioner_id="pr-a"),
         set(ORG_A_SEES)),
        (Principal(Role.CLINICIAN, organization_id="org-a", practitioner_id="pr-a",
                   break_glass=(BreakGlass("pb1", "车祸急救 emergency", T0 - 1, T0 + 60),)),
         set(ORG_A_SEES) | {"pb1"}),
        (Principal(Role.CLINICIAN, organization_id="org-a", practitioner_id="pr-a",
                   break_glass=(BreakGlass("pb1", "expired", T0 - 100, T0 - 1),)),
         set(ORG_A_SEES)),
        (Principal(Role.CLINICIAN, organization_id="org-b",
                   share_grants=(ShareGrant("pa1", "code-7", T0 + 60),)),
         set(ORG_B_ONLY) | {"pa1"}),
        (Principal(Role.CLINICIAN, organization_id="org-b",
                   share_grants=(ShareGrant("pa1", "code-8", T0 - 1),)),
         set(ORG_B_ONLY)),
    ]  # fmt: skip
    wrong = []
    for principal, patients in rows:
        view = AuthorizedRepository(seeded, principal, clock)
        got = {s.id for s in view.search(parse_search("Observation", [("_count", "100")])).matches}
        if got != obs_of(patients):
            wrong.append(f"{principal}: expected {sorted(obs_of(patients))}, got {sorted(got)}")
    assert not wrong, "\n".join(wrong)


ORG_B_ONLY = frozenset({"pb1", "pb2", "pb3", "pb4", "pb5", "pb6"})


def _facts(repo: Repository, pid: str) -> PatientContext:
    """The patient's facts as the store holds them, for a per-patient decision."""
    def find(rtype: str, param: str) -> list[dict]:
        page = repo.search(parse_search(rtype, [(param, f"Patient/{pid}"), ("_count", "100")]))
        return [s.resource for s in page.matches]

    org = repo.read("Patient", pid).resource.get("managingOrganization", {}).get("reference")
    orgs = {org} | {e["serviceProvider"]["reference"] for e in find("Encounter", "subject")}
    referrals = tuple(
        Referral(sr["id"], practitioner_id=sr["performer"][0]["reference"].split("/")[1])
        for sr in find("ServiceRequest", "subject")
    )
    return PatientContext(
        pid, frozenset(o.split("/")[1] for o in orgs if o), referrals,
        tuple(find("Consent", "patient")),
    )


def test_the_search_constraint_agrees_with_per_patient_decisions(seeded: Repository) -> None:
    """A search shows a patient's (unlabelled) Observation exactly when ``decide`` with the
    patient's facts allows reading it."""
    principal = Principal(Role.CLINICIAN, organization_id="org-a", practitioner_id="pr-a")
    decision = decide(principal, "search-type", "Observation", now=T0)
    assert decision.constraint is not None
    visible = _visible(seeded, decision.constraint) - {"obs-hiv-pa1"}
    allowed = {
        pid for pid in ALL_PATIENTS
        if decide(principal, "read", "Observation", _facts(seeded, pid), now=T0)
    }
    assert visible == obs_of(allowed) == obs_of(ORG_A_SEES)
