"""FHIR R4 Consent evaluation: statuses, actors, data classes, labels, periods, nesting."""

from __future__ import annotations

from typing import Any

import pytest

from huitong.access import ConsentActor, evaluate_consents
from huitong.fhir.dates import parse_date_range
from huitong.fhir.validation import validate_resource

NOW = parse_date_range("2024-06-01T12:00:00Z")[0]
ORG_A = ConsentActor(organization_id="org-a", practitioner_id="dr-wang")
ORG_B = ConsentActor(organization_id="org-b", practitioner_id="dr-zhao")
RT = "http://hl7.org/fhir/resource-types"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def actor(ref: str) -> dict[str, Any]:
    return {
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                             "code": "IRCP"}]},
        "reference": {"reference": ref},
    }  # fmt: skip


def consent(cid: str, provision: dict[str, Any], status: str = "active") -> dict[str, Any]:
    c = {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "policyRule": {"coding": [{"system": ACT, "code": "OPTIN"}]},
        "provision": provision,
    }  # fmt: skip
    validate_resource(c, expected_type="Consent")  # the fixtures are real R4 Consents
    return c


PERMIT_ORG_A = {"type": "permit", "actor": [actor("Organization/org-a")]}
PERMIT_DR_ZHAO = {"type": "permit", "actor": [actor("Practitioner/dr-zhao")]}
PERMIT_ANY = {"type": "permit"}  # any treating clinician
PERMIT_A_OBS = {**PERMIT_ORG_A, "class": [{"system": RT, "code": "Observation"}]}
PERMIT_A_2023 = {**PERMIT_ORG_A, "period": {"start": "2023-01-01", "end": "2023-12-31"}}
PERMIT_A_HIV = {**PERMIT_ORG_A, "securityLabel": [{"system": ACT, "code": "HIV"}]}
PERMIT_A_EXCEPT_PSY = {
    **PERMIT_ORG_A,
    "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "PSY"}]}],
}
DENY_ALL_BUT_A = {
    "type": "deny",
    "provision": [{"type": "permit", "actor": [actor("Organization/org-a")]}],
}
DENY_B = {"type": "deny", "actor": [actor("Organization/org-b")]}
PERMIT_A_PURPOSE = {**PERMIT_ORG_A, "purpose": [{"system": ACT, "code": "HRESCH"}]}
PERMIT_A_DISCLOSE = {
    **PERMIT_ORG_A,
    "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                            "code": "disclose"}]}],
}  # fmt: skip
PERMIT_A_ACCESS = {
    **PERMIT_ORG_A,
    "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                            "code": "access"}]}],
}  # fmt: skip
# Nested three deep: deny all; except permit org-a; except deny org-a's Encounter data.
NESTED = {
    "type": "deny",
    "provision": [{
        "type": "permit", "actor": [actor("Organization/org-a")],
        "provision": [{"type": "deny", "class": [{"system": RT, "code": "Encounter"}]}],
    }],
}  # fmt: skip

# (name, consents, actor, resource type, labels, default) -> (permitted, code, consent id)
CASES = [
    ("none, opt-in", [], ORG_A, "Observation", (), "opt-in", (False, "no-consent", None)),
    ("none, opt-out", [], ORG_A, "Observation", (), "opt-out", (True, "opt-out-default", None)),
    ("none, opt-out, sensitive", [], ORG_A, "Observation", ("HIV",), "opt-out",
     (False, "no-consent", None)),
    ("permit org", [consent("c1", PERMIT_ORG_A)], ORG_A, "Observation", (), "opt-in",
     (True, "consent-permit", "c1")),
    ("permit org, other org", [consent("c1", PERMIT_ORG_A)], ORG_B, "Observation", (), "opt-in",
     (False, "no-consent", None)),
    ("permit practitioner", [consent("c2", PERMIT_DR_ZHAO)], ORG_B, "Condition", (), "opt-in",
     (True, "consent-permit", "c2")),
    ("permit any clinician", [consent("c3", PERMIT_ANY)], ORG_B, "Condition", (), "opt-in",
     (True, "consent-permit", "c3")),
    ("class matches", [consent("c4", PERMIT_A_OBS)], ORG_A, "Observation", (), "opt-in",
     (True, "consent-permit", "c4")),
    ("class differs", [consent("c4", PERMIT_A_OBS)], ORG_A, "Condition", (), "opt-in",
     (False, "no-consent", None)),
    ("expired", [consent("c5", PERMIT_A_2023)], ORG_A, "Observation", (), "opt-in",
     (False, "consent-expired", "c5")),
    ("revoked", [consent("c6", PERMIT_ORG_A, status="inactive")], ORG_A, "Observation", (),
     "opt-in", (False, "consent-revoked", "c6")),
    ("rejected", [consent("c7", PERMIT_ORG_A, status="rejected")], ORG_A, "Observation", (),
     "opt-in", (False, "consent-rejected", "c7")),
    ("revoked, opt-out still no", [consent("c6", PERMIT_ORG_A, status="inactive")], ORG_A,
     "Observation", (), "opt-out", (False, "consent-revoked", "c6")),
    ("draft ignored", [consent("c8", PERMIT_ORG_A, status="draft")], ORG_A, "Observation", (),
     "opt-in", (False, "no-consent", None)),
    ("sensitive not granted", [consent("c1", PERMIT_ORG_A)], ORG_A, "Observation", ("PSY",),
     "opt-in", (False, "sensitive-not-granted", "c1")),
    ("sensitive granted explicitly", [consent("c9", PERMIT_A_HIV)], ORG_A, "Observation",
     ("HIV",), "opt-in", (True, "consent-permit", "c9")),
    ("label grant does not cover unlabelled", [consent("c9", PERMIT_A_HIV)], ORG_A,
     "Observation", (), "opt-in", (False, "no-consent", None)),
    ("non-sensitive label ok", [consent("c1", PERMIT_ORG_A)], ORG_A, "Observation", ("N",),
     "opt-in", (True, "consent-permit", "c1")),
    ("nested deny label", [consent("c10", PERMIT_A_EXCEPT_PSY)], ORG_A, "Observation",
     ("PSY",), "opt-in", (False, "consent-deny", "c10")),
    ("nested deny label, other data", [consent("c10", PERMIT_A_EXCEPT_PSY)], ORG_A,
     "Observation", (), "opt-in", (True, "consent-permit", "c10")),
    ("deny base, permit exception", [consent("c11", DENY_ALL_BUT_A)], ORG_A, "Observation", (),
     "opt-in", (True, "consent-permit", "c11")),
    ("deny base, not the exception", [consent("c11", DENY_ALL_BUT_A)], ORG_B, "Observation", (),
     "opt-out", (False, "consent-deny", "c11")),
    ("three levels, permitted", [consent("c12", NESTED)], ORG_A, "Observation", (), "opt-in",
     (True, "consent-permit", "c12")),
    ("three levels, innermost deny", [consent("c12", NESTED)], ORG_A, "Encounter", (), "opt-in",
     (False, "consent-deny", "c12")),
    ("deny overrides permit across consents",
     [consent("c3", PERMIT_ANY), consent("c13", DENY_B)], ORG_B, "Observation", (), "opt-in",
     (False, "consent-deny", "c13")),
    ("deny for another actor does not apply",
     [consent("c3", PERMIT_ANY), consent("c13", DENY_B)], ORG_A, "Observation", (), "opt-in",
     (True, "consent-permit", "c3")),
    ("opt-out region, explicit deny", [consent("c13", DENY_B)], ORG_B, "Observation", (),
     "opt-out", (False, "consent-deny", "c13")),
    ("unevaluated purpose never permits", [consent("c14", PERMIT_A_PURPOSE)], ORG_A,
     "Observation", (), "opt-in", (False, "no-consent", None)),
    ("action other than access", [consent("c15", PERMIT_A_DISCLOSE)], ORG_A, "Observation", (),
     "opt-in", (False, "no-consent", None)),
    ("action access", [consent("c16", PERMIT_A_ACCESS)], ORG_A, "Observation", (), "opt-in",
     (True, "consent-permit", "c16")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "consents", "who", "rtype", "labels", "default", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_consent_table(
    name: str,
    consents: list[dict[str, Any]],
    who: ConsentActor,
    rtype: str,
    labels: tuple[str, ...],
    default: str,
    expected: tuple[bool, str, str | None],
) -> None:
    d = evaluate_consents(consents, actor=who, resource_type=rtype, at=NOW,
                          security_labels=labels, default=default)  # type: ignore[arg-type]  # fmt: skip
    assert (d.permitted, d.code, d.consent_id) == expected
    assert bool(d) is d.permitted and d.en and d.zh
    if d.consent_id:
        assert d.consent_id in d.en and d.consent_id in d.zh


def test_revocation_takes_effect_on_the_next_evaluation() -> None:
    c = consent("c1", PERMIT_ORG_A)
    args: dict[str, Any] = {"actor": ORG_A, "resource_type": "Observation", "at": NOW}
    assert evaluate_consents([c], **args).permitted
    c["status"] = "inactive"
    assert evaluate_consents([c], **args).code == "consent-revoked"


def test_non_privacy_consents_are_ignored() -> None:
    c = consent("c1", PERMIT_ORG_A)
    c["scope"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "research"}]}  # fmt: skip
    assert evaluate_consents([c], actor=ORG_A, resource_type="Observation", at=NOW).code == (
        "no-consent"
    )
