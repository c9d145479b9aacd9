"""The authorization matrix: role × interaction × consent state → decision and reason."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from huitong.access import (
    AllOf,
    AnyOf,
    BreakGlass,
    BreakGlassPatient,
    ConsentedPatients,
    Decision,
    HideLabels,
    MatchesSearch,
    OrganizationPatients,
    PatientContext,
    PatientsIn,
    PolicySettings,
    Principal,
    Referral,
    ReferredPatients,
    Role,
    SharedPatient,
    ShareGrant,
    Unrestricted,
    decide,
    is_clinical,
    parse_scopes,
)

HOUR = 3_600_000_000
NOW = 1_717_243_200_000_000  # 2024-06-01T12:00:00Z


def consent(
    cid: str, status: str = "active", period: dict[str, str] | None = None
) -> dict[str, Any]:
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [{"reference": {"reference": "Organization/org-a"}}],
    }
    if period:
        provision["period"] = period
    return {
        "resourceType": "Consent", "id": cid, "status": status,
        "scope": {"coding": [{"code": "patient-privacy"}]}, "provision": provision,
    }  # fmt: skip


DR_WANG = Principal(Role.CLINICIAN, user_id="u-wang", organization_id="org-a",
                    practitioner_id="dr-wang")  # fmt: skip
GLASS = BreakGlass("p1", "unconscious, no relatives reachable", NOW - HOUR, NOW + HOUR)
OLD_GLASS = BreakGlass("p1", "chest pain in ED", NOW - 5 * HOUR, NOW - 4 * HOUR)
SHARE = ShareGrant("p1", "share-77", NOW + HOUR)
OLD_SHARE = ShareGrant("p1", "share-76", NOW - 1)

PRINCIPALS = {
    "clinician": DR_WANG,
    "clinician+break-glass": replace(DR_WANG, break_glass=(GLASS,)),
    "clinician+expired-glass": replace(DR_WANG, break_glass=(OLD_GLASS,)),
    "clinician+share": replace(DR_WANG, share_grants=(SHARE,)),
    "clinician+expired-share": replace(DR_WANG, share_grants=(OLD_SHARE,)),
    "patient": Principal(Role.PATIENT, user_id="u-p1", patient_ids=frozenset({"p1", "p1-hosp2"})),
    "other-patient": Principal(Role.PATIENT, user_id="u-p2", patient_ids=frozenset({"p2"})),
    "public-health": Principal(Role.PUBLIC_HEALTH, user_id="u-cdc", organization_id="cdc"),
    "researcher": Principal(Role.RESEARCHER, user_id="u-res", organization_id="uni"),
    "platform-admin": Principal(Role.PLATFORM_ADMIN, user_id="u-admin"),
    "auditor": Principal(Role.AUDITOR, user_id="u-audit"),
}  # fmt: skip

# Consent states for patient p1, who is registered at org-b (not Dr Wang's org-a).
STATES: dict[str, PatientContext] = {
    "none": PatientContext("p1", frozenset({"org-b"})),
    "own-organization": PatientContext("p1", frozenset({"org-a"})),
    "referred": PatientContext("p1", frozenset({"org-b"}),
                               referrals=(Referral("ref-5", practitioner_id="dr-wang"),)),
    "granted": PatientContext("p1", frozenset({"org-b"}), consents=(consent("c-ok"),)),
    "expired": PatientContext("p1", frozenset({"org-b"}), consents=(
        consent("c-old", period={"start": "2023-01-01", "end": "2023-12-31"}),)),
    "revoked": PatientContext("p1", frozenset({"org-b"}),
                              consents=(consent("c-rev", status="inactive"),)),
    "sensitive-not-granted": PatientContext("p1", frozenset({"org-b"}), consents=(
        consent("c-ok"),), security_labels=frozenset({"PSY"})),
    "own-organization-sensitive": PatientContext("p1", frozenset({"org-a"}),
                                                 security_labels=frozenset({"HIV"})),
}  # fmt: skip

ALLOW = True
DENY = False
NO_CLINICAL = {"public-health": "no-identified-clinical-reads",
               "researcher": "no-identified-clinical-reads",
               "platform-admin": "platform-admin-no-clinical", "auditor": "auditor-audit-only"}  # fmt: skip

# (principal, state) -> (allowed, reason kind, reason code, ref)
EXPECTED: dict[tuple[str, str], tuple[bool, str, str, str | None]] = {
    ("clinician", "none"): (DENY, "denied", "clinician-no-relationship", None),
    ("clinician", "own-organization"): (ALLOW, "role", "clinician-own-organization", None),
    ("clinician", "referred"): (ALLOW, "referral", "clinician-referral", "ref-5"),
    ("clinician", "granted"): (ALLOW, "consent", "consent-permit", "c-ok"),
    ("clinician", "expired"): (DENY, "denied", "consent-expired", "c-old"),
    ("clinician", "revoked"): (DENY, "denied", "consent-revoked", "c-rev"),
    ("clinician", "sensitive-not-granted"): (DENY, "denied", "sensitive-not-granted", "c-ok"),
    ("clinician", "own-organization-sensitive"): (DENY, "denied", "sensitive-not-granted", None),
    ("clinician+break-glass", "none"): (ALLOW, "break-glass", "break-glass", None),
    ("clinician+break-glass", "revoked"): (ALLOW, "break-glass", "break-glass", None),
    ("clinician+break-glass", "sensitive-not-granted"): (ALLOW, "break-glass", "break-glass", None),
    ("clinician+break-glass", "own-organization"): (ALLOW, "role", "clinician-own-organization", None),
    ("clinician+expired-glass", "none"): (DENY, "denied", "break-glass-expired", None),
    ("clinician+expired-glass", "granted"): (ALLOW, "consent", "consent-permit", "c-ok"),
    ("clinician+share", "none"): (ALLOW, "share-code", "share-code", "share-77"),
    ("clinician+share", "sensitive-not-granted"): (DENY, "denied", "sensitive-not-granted", "c-ok"),
    ("clinician+expired-share", "none"): (DENY, "denied", "clinician-no-relationship", None),
}  # fmt: skip
for state in STATES:
    EXPECTED[("patient", state)] = (ALLOW, "role", "patient-own-record", None)
    EXPECTED[("other-patient", state)] = (DENY, "denied", "patient-other-record", None)
    for role, code in NO_CLINICAL.items():
        EXPECTED[(role, state)] = (DENY, "denied", code, None)

MATRIX = sorted(EXPECTED.items())


@pytest.mark.parametrize(("key", "expected"), MATRIX, ids=[f"{k[0]}|{k[1]}" for k, _ in MATRIX])
@pytest.mark.parametrize("action", ["read", "search-type"])
def test_read_matrix(
    key: tuple[str, str], expected: tuple[bool, str, str, str | None], action: str
) -> None:
    principal, state = PRINCIPALS[key[0]], STATES[key[1]]
    d = decide(principal, action, "Observation", state, now=NOW)
    allowed, kind, code, ref = expected
    assert (d.allowed, d.reason.kind, d.reason.code, d.reason.ref) == (allowed, kind, code, ref)
    assert d.reason.en and d.reason.zh and d.reason.en != d.reason.zh
    if d.allowed:
        assert d.constraint == PatientsIn(frozenset({"p1"}))
    else:
        assert d.constraint is None


def test_break_glass_reason_carries_justification_and_window() -> None:
    d = decide(PRINCIPALS["clinician+break-glass"], "read", "Observation", STATES["none"], now=NOW)
    assert d.reason.justification == GLASS.justification and d.reason.until == GLASS.until
    assert GLASS.justification in d.reason.en and "2024-06-01T13:00:00" in d.reason.zh
    blank = BreakGlass("p1", "   ", NOW - HOUR, NOW + HOUR)
    p = Principal(Role.CLINICIAN, organization_id="org-a", break_glass=(blank,))
    assert not decide(p, "read", "Observation", STATES["none"], now=NOW)


def test_opt_out_region() -> None:
    opt_out = PolicySettings(consent_default="opt-out")
    d = decide(DR_WANG, "read", "Observation", STATES["none"], now=NOW, settings=opt_out)
    assert (d.allowed, d.reason.code) == (True, "opt-out-default")
    d = decide(DR_WANG, "read", "Observation", STATES["revoked"], now=NOW, settings=opt_out)
    assert (d.allowed, d.reason.code) == (False, "consent-revoked")


# --- type level: deny before searching, or the constraint the store adds --------------------


TYPE_CASES: list[tuple[str, str, str, bool, str]] = [
    # principal, action, type, allowed, reason code
    ("platform-admin", "search-type", "Organization", ALLOW, "platform-admin-configuration"),
    ("platform-admin", "update", "Practitioner", ALLOW, "platform-admin-configuration"),
    ("platform-admin", "search-type", "Observation", DENY, "platform-admin-no-clinical"),
    ("platform-admin", "read", "Patient", DENY, "platform-admin-no-clinical"),
    ("platform-admin", "search-type", "AuditEvent", DENY, "audit-log-auditors-only"),
    ("auditor", "search-type", "AuditEvent", ALLOW, "auditor-audit-log"),
    ("auditor", "read", "Organization", DENY, "auditor-audit-only"),
    ("auditor", "create", "AuditEvent", DENY, "audit-log-append-only"),
    ("auditor", "delete", "AuditEvent", DENY, "audit-log-append-only"),
    ("clinician", "search-type", "AuditEvent", DENY, "audit-log-auditors-only"),
    ("clinician", "read", "Organization", ALLOW, "directory-read"),
    ("clinician", "update", "Organization", DENY, "configuration-by-admin"),
    ("clinician", "create", "Consent", DENY, "consent-managed-by-patient"),
    ("public-health", "search-type", "ValueSet", ALLOW, "directory-read"),
    ("public-health", "search-type", "Condition", DENY, "no-identified-clinical-reads"),
    ("researcher", "operation-everything", "Patient", DENY, "no-identified-clinical-reads"),
    ("patient", "search-type", "AuditEvent", ALLOW, "patient-own-access-log"),
    ("patient", "create", "Consent", ALLOW, "patient-manages-consent"),
    ("patient", "update", "Consent", ALLOW, "patient-manages-consent"),
    ("patient", "create", "Observation", DENY, "patient-read-only"),
    ("patient", "create", "AuditEvent", DENY, "audit-log-append-only"),
    ("patient", "update", "Organization", DENY, "configuration-by-admin"),
]


@pytest.mark.parametrize(("who", "action", "rtype", "allowed", "code"), TYPE_CASES)
def test_type_level_decisions(who: str, action: str, rtype: str, allowed: bool, code: str) -> None:
    d = decide(PRINCIPALS[who], action, rtype, now=NOW)
    assert (d.allowed, d.reason.code) == (allowed, code)
    assert (d.constraint is not None) is allowed


def test_clinician_search_constraint() -> None:
    d = decide(DR_WANG, "search-type", "Observation", now=NOW)
    labels = PolicySettings().sensitive_labels
    assert d.reason.code == "clinician-care-relationship"
    assert d.constraint == AllOf((
        AnyOf((
            OrganizationPatients("org-a"),
            ReferredPatients("dr-wang", "org-a", NOW),
            ConsentedPatients("org-a", "dr-wang", "Observation", NOW, False),
        )),
        HideLabels(labels, "org-a", "dr-wang", NOW),
    ))  # fmt: skip


def test_clinician_search_with_break_glass_and_share_code() -> None:
    p = replace(DR_WANG, break_glass=(GLASS, OLD_GLASS),
                     share_grants=(SHARE, OLD_SHARE))  # fmt: skip
    d = decide(p, "search-type", "Observation", now=NOW)
    assert isinstance(d.constraint, AnyOf)
    care, glass, shared = d.constraint.parts
    assert isinstance(care, AllOf)  # the care relationships, sensitive labels hidden
    assert glass == BreakGlassPatient("p1", GLASS.until)  # the expired one is gone
    assert isinstance(shared, AllOf) and shared.parts[0] == SharedPatient(
        "p1", "share-77", SHARE.until
    )


def test_clinician_writes_need_organization_referral_or_break_glass() -> None:
    d = decide(DR_WANG, "create", "Observation", now=NOW)
    assert d.constraint == AnyOf(
        (OrganizationPatients("org-a"), ReferredPatients("dr-wang", "org-a", NOW))
    )
    assert decide(DR_WANG, "update", "Observation", STATES["own-organization"], now=NOW)
    assert decide(DR_WANG, "update", "Observation", STATES["referred"], now=NOW)
    # consent grants viewing, not writing
    d = decide(DR_WANG, "update", "Observation", STATES["granted"], now=NOW)
    assert (d.allowed, d.reason.code) == (False, "clinician-no-relationship")
    lone = Principal(Role.CLINICIAN, user_id="u-x")
    assert decide(lone, "create", "Observation", now=NOW).reason.code == "clinician-no-relationship"


def test_patient_id_without_facts_narrows_the_constraint() -> None:
    d = decide(DR_WANG, "search-type", "Observation", "p9", now=NOW)
    assert isinstance(d.constraint, AllOf) and d.constraint.parts[0] == PatientsIn(
        frozenset({"p9"})
    )
    d = decide(PRINCIPALS["patient"], "search-type", "Observation", now=NOW)
    assert d.constraint == PatientsIn(frozenset({"p1", "p1-hosp2"}))  # every linked record
    assert not decide(PRINCIPALS["patient"], "read", "Observation", "p2", now=NOW)
    unlinked = Principal(Role.PATIENT, user_id="u-new")
    assert decide(unlinked, "read", "Observation", now=NOW).reason.code == "patient-not-linked"


# --- SMART scopes intersected with the role --------------------------------------------------


def test_patient_scopes_narrow_to_the_launch_patient() -> None:
    p = replace(DR_WANG, scopes=parse_scopes("launch patient/Observation.rs"),
                     launch_patient="p1")  # fmt: skip
    d = decide(p, "search-type", "Observation", now=NOW)
    assert isinstance(d.constraint, AllOf) and d.constraint.parts[0] == PatientsIn(
        frozenset({"p1"})
    )
    assert d.reason.code == "clinician-care-relationship"
    assert decide(p, "search-type", "Condition", now=NOW).reason.code == "scope-not-granted"
    assert decide(p, "create", "Observation", now=NOW).reason.code == "scope-not-granted"
    other = decide(p, "read", "Observation", "p2", now=NOW)
    assert (other.allowed, other.reason.code) == (False, "scope-context-unusable")
    no_launch = replace(DR_WANG, scopes=parse_scopes("patient/*.rs"))
    assert decide(no_launch, "read", "Observation", now=NOW).reason.code == "scope-context-unusable"


def test_scope_restrictions_become_search_constraints() -> None:
    p = replace(DR_WANG, scopes=parse_scopes("user/Observation.rs?category=laboratory"))  # fmt: skip
    d = decide(p, "search-type", "Observation", STATES["own-organization"], now=NOW)
    assert d.constraint == AllOf((PatientsIn(frozenset({"p1"})),
                                  MatchesSearch((("category", "laboratory"),))))  # fmt: skip


def test_scopes_never_widen_the_role() -> None:
    admin = Principal(Role.PLATFORM_ADMIN, scopes=parse_scopes("user/*.cruds"))
    assert decide(admin, "read", "Observation", now=NOW).reason.code == "platform-admin-no-clinical"
    p = replace(PRINCIPALS["patient"], scopes=parse_scopes("user/*.cruds"))
    assert decide(p, "delete", "Observation", now=NOW).reason.code == "patient-read-only"


def test_system_clients() -> None:
    bulk = Principal(Role.SYSTEM, client_id="cdc-export", scopes=parse_scopes("system/*.read"))
    d = decide(bulk, "search-type", "Observation", now=NOW)
    assert (d.allowed, d.reason.kind, d.reason.ref, d.constraint) == (
        True, "scope", "system/*.read", Unrestricted())  # fmt: skip
    assert decide(bulk, "create", "Observation", now=NOW).reason.code == "scope-not-granted"
    assert decide(bulk, "search-type", "AuditEvent", now=NOW).allowed
    assert decide(bulk, "create", "AuditEvent", now=NOW).reason.code == "scope-not-granted"
    feed = Principal(Role.SYSTEM, client_id="lab", scopes=parse_scopes("system/Observation.cu"))
    assert decide(feed, "create", "AuditEvent", now=NOW).reason.code == "scope-not-granted"
    bare = Principal(Role.SYSTEM, client_id="lab")
    assert decide(bare, "read", "Observation", now=NOW).reason.code == "system-needs-scopes"
    user_scoped = Principal(Role.SYSTEM, client_id="odd", scopes=parse_scopes("user/*.rs"))
    assert (
        decide(user_scoped, "read", "Observation", now=NOW).reason.code == "scope-context-unusable"
    )
    lab = Principal(Role.SYSTEM, client_id="lab",
                    scopes=parse_scopes("system/Observation.rs?category=laboratory"))  # fmt: skip
    assert decide(lab, "search-type", "Observation", now=NOW).constraint == MatchesSearch(
        (("category", "laboratory"),)
    )


def test_is_clinical_follows_the_patient_compartment() -> None:
    assert is_clinical("Patient") and is_clinical("Observation") and is_clinical("Consent")
    assert not is_clinical("Organization") and not is_clinical("ValueSet")
    assert not is_clinical("AuditEvent")


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        decide(DR_WANG, "peek", "Observation", now=NOW)


def test_decision_truthiness() -> None:
    d = decide(DR_WANG, "read", "Organization", now=NOW)
    assert isinstance(d, Decision) and bool(d) is True
