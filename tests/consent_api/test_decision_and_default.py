"""The consent decision endpoint, and the region's default (HUITONG_CONSENT_DEFAULT) as the
running server applies it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from consent_world import World
from enforce_helpers import ALL_PATIENTS, HEART_RATE, LOINC, ids, obs_of

from huitong.access import Role
from huitong.config import Settings
from huitong.server.consent_api import region_policy
from huitong.store.repository import Repository

CODE = f"code={LOINC}|{HEART_RATE}"
ORG_A = {"organization": "org-a", "practitioner": "pr-a"}


def _ask(w: World, who: str, body: dict[str, Any]) -> tuple[int, str | None]:
    resp = w.api("POST", w.token(who), "consent/decision", body)
    if resp.status_code != 200:
        return resp.status_code, None
    data = resp.json()
    assert data["reason"]["en"] and data["reason"]["zh"]
    return 200, f"{data['decision']}:{data['code']}"


def test_decision_endpoint_answers_with_reasons(world: World) -> None:
    w = world
    obs = {"resourceType": "Observation"}
    rows = [
        ("auditor", {"patient": "pb2", "actor": ORG_A, **obs}, (200, "permit:consent-permit")),
        ("auditor", {"patient": "pb1", "actor": ORG_A, **obs}, (200, "deny:no-consent")),
        ("auditor", {"patient": "pb3", "actor": ORG_A, **obs}, (200, "deny:consent-revoked")),
        ("auditor", {"patient": "pb4", "actor": ORG_A, **obs}, (200, "deny:consent-expired")),
        ("auditor", {"patient": "pb6", "actor": ORG_A, **obs}, (200, "deny:no-consent")),
        (
            "auditor",
            {"patient": "pb6", "actor": ORG_A, "resourceType": "Condition"},
            (200, "permit:consent-permit"),
        ),
        (
            "auditor",
            {"patient": "pb2", "actor": ORG_A, "labels": ["HIV"], **obs},
            (200, "deny:sensitive-not-granted"),
        ),
        (
            "auditor",
            {"patient": "pb2", "actor": "Organization/org-b", **obs},
            (200, "deny:no-consent"),
        ),
        # a clinician asks about their own access, nobody else's
        ("clin-a", {"patient": "pb2", **obs}, (200, "permit:consent-permit")),
        ("clin-a", {"patient": "pb2", "actor": {"organization": "org-b"}, **obs}, (403, None)),
        # a patient asks about their own record only
        ("pat-pb1", {"patient": "pb1", "actor": ORG_A, **obs}, (200, "deny:no-consent")),
        ("pat-pb1", {"patient": "pb2", "actor": ORG_A, **obs}, (403, None)),
        ("admin", {"patient": "pb2", "actor": ORG_A, **obs}, (403, None)),
        ("auditor", {"patient": "pb2", "actor": ORG_A, "resourceType": "Nope"}, (400, None)),
        ("auditor", {"patient": "pb2", **obs}, (400, None)),
    ]
    wrong = [
        f"{who} {body}: {got}" for who, body, exp in rows if (got := _ask(w, who, body)) != exp
    ]
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def opt_out(repo: Repository) -> Iterator[World]:
    w = World(repo, consent_default="opt-out")
    w.account("clin-a", Role.CLINICIAN, org="org-a", practitioner="pr-a")
    w.account("auditor", Role.AUDITOR)
    yield w
    w.close()


def test_opt_out_region_shares_non_sensitive_data_by_default(opt_out: World) -> None:
    w = opt_out
    token = w.token("clin-a")
    found = w.get(token, f"Observation?{CODE}").json()
    # every patient's heart rate, but never the HIV-labelled result
    assert ids(found) == obs_of(ALL_PATIENTS) and found["total"] == len(ALL_PATIENTS)
    assert w.get(token, "Observation/obs-hiv-pa1").status_code == 404
    assert _ask(
        w, "auditor", {"patient": "pb1", "actor": ORG_A, "resourceType": "Observation"}
    ) == (200, "permit:opt-out-default")
    # a patient who objects (a deny consent) is excluded again on the next request
    deny = {
        "resourceType": "Consent",
        "id": "deny-pb1",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/pb1"},
        "provision": {"type": "deny"},
    }
    pat = w.account("pat-pb1", Role.PATIENT, patient_ids=("pb1",))
    assert w.put(pat, "Consent/deny-pb1", deny).status_code == 201
    found = w.get(w.token("clin-a"), f"Observation?{CODE}").json()
    assert ids(found) == obs_of(ALL_PATIENTS - {"pb1"})


def test_region_default_setting_is_checked() -> None:
    assert region_policy(Settings.from_env({}, database_url="x")).consent_default == "opt-in"
    bad = Settings.from_env({"HUITONG_CONSENT_DEFAULT": "maybe"}, database_url="x")
    with pytest.raises(ValueError, match="opt-in or opt-out"):
        region_policy(bad)
