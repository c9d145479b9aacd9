"""Authorization enforced inside every read path, through the real app with authentication
on, on SQLite and PostgreSQL (issue 5, "Authorization").

Each test is a table: (who, request, expected) rows, all checked, every mismatch reported.
The region is seeded by :func:`enforce_helpers.seed`; ``ORG_A_SEES`` lists which patients
org A's clinician reaches and why (registered, seen, consented, referred) and which it must
not (other org, revoked consent, expired consent, consent for another data class)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from enforce_helpers import (
    ALL_PATIENTS,
    HEART_RATE,
    LOINC,
    ORG_A_SEES,
    ORG_B_SEES,
    Region,
    ids,
    obs_of,
)

from huitong.access import Role
from huitong.store.repository import Repository

CODE = f"code={LOINC}|{HEART_RATE}"


@pytest.fixture
def region(repo: Repository) -> Iterator[Region]:
    r = Region(repo)
    yield r
    r.close()


@pytest.fixture
def tokens(region: Region) -> dict[str, str]:
    return {
        "clin-a": region.user_token(Role.CLINICIAN, org="org-a", practitioner="pr-a"),
        "clin-b": region.user_token(Role.CLINICIAN, org="org-b", practitioner="pr-b"),
        "patient-pa1": region.user_token(Role.PATIENT, patient_ids=("pa1",), scope="user/*.rs"),
        "patient-pb": region.user_token(
            Role.PATIENT, patient_ids=("pb1", "pb2"), scope="user/*.rs"
        ),
        "public-health": region.user_token(Role.PUBLIC_HEALTH, scope="user/*.rs"),
        "researcher": region.user_token(Role.RESEARCHER, scope="user/*.rs"),
        "admin": region.user_token(Role.PLATFORM_ADMIN),
        "auditor": region.user_token(Role.AUDITOR, scope="user/*.rs"),
        "system": region.system_token("system/*.read"),
    }


def _check(rows: list[tuple[str, str, Any]], run: Any) -> None:
    """Run every row; fail once with every mismatch listed."""
    wrong = []
    for who, path, expected in rows:
        got = run(who, path)
        if got != expected:
            wrong.append(f"{who} GET {path}: expected {expected!r}, got {got!r}")
    assert not wrong, "\n".join(wrong)


def test_search_results_and_totals_follow_care_relationships(
    region: Region, tokens: dict[str, str]
) -> None:
    a_obs = obs_of(ORG_A_SEES)
    own = {"obs-pa1", "obs-hiv-pa1"}  # a patient sees their own sensitive data
    rows = [
        # the page, and Bundle.total (short page: counted from it; _count=1: COUNT query)
        ("clin-a", f"Observation?{CODE}", (200, a_obs, len(a_obs))),
        ("clin-a", f"Observation?{CODE}&_count=1", (200, None, len(a_obs))),
        ("clin-a", f"Observation?{CODE}&_summary=count", (200, set(), len(a_obs))),
        ("clin-b", f"Observation?{CODE}", (200, obs_of(ORG_B_SEES), len(ORG_B_SEES))),
        ("clin-a", "Patient", (200, set(ORG_A_SEES), len(ORG_A_SEES))),
        ("patient-pa1", f"Observation?{CODE}", (200, own, 2)),
        ("patient-pb", "Observation", (200, obs_of({"pb1", "pb2"}), 2)),
        ("system", f"Observation?{CODE}", (200, obs_of(ALL_PATIENTS) | own, 9)),
        # directory data is readable by every signed-in role except auditors
        ("clin-a", "Organization", (200, {"org-a", "org-b"}, 2)),
        ("admin", "Organization", (200, {"org-a", "org-b"}, 2)),
        ("public-health", "Practitioner", (200, {"pr-a", "pr-b"}, 2)),
        # compartments: another organization's patient's compartment is simply empty
        ("clin-a", "Patient/pb1/Observation", (200, set(), 0)),
        ("clin-a", "Patient/pa1/Observation", (200, {"obs-pa1"}, 1)),
        ("clin-a", "Patient/pb2/Observation", (200, {"obs-pb2"}, 1)),
        # system-wide search: only what each type's decision allows
        ("clin-a", "?_type=Observation,Organization",
         (200, a_obs | {"org-a", "org-b"}, len(a_obs) + 2)),
    ]

    def run(who: str, path: str) -> Any:
        resp = region.get(tokens[who], path)
        if resp.status_code != 200:
            return (resp.status_code, None, None)
        body = resp.json()
        return (200, None if "_count=1" in path else ids(body), body.get("total"))

    _check(rows, run)


def test_types_a_role_may_not_read_are_403_before_any_query(
    region: Region, tokens: dict[str, str]
) -> None:
    rows = []
    for who in ("public-health", "researcher", "admin", "auditor"):
        rows += [
            (who, f"Observation?{CODE}", 403),
            (who, "Observation/obs-pa1", 403),
            # the same answer for a resource that does not exist: nothing is revealed
            (who, "Observation/no-such-id", 403),
            (who, "Patient/pa1/$everything", 403),
            (who, "Observation/_history", 403),
        ]
    rows += [
        ("admin", "Organization/org-a", 200),
        ("auditor", "Organization/org-a", 403),
        ("clin-a", "AuditEvent", 403),
        ("patient-pa1", "Organization/org-b", 200),
    ]
    _check(rows, lambda who, path: region.get(tokens[who], path).status_code)


def test_read_vread_history_and_everything_hide_other_patients_as_404(
    region: Region, tokens: dict[str, str]
) -> None:
    rows = [
        ("clin-a", "Observation/obs-pa1", 200),
        ("clin-a", "Observation/obs-pb1", 404),
        ("clin-a", "Observation/obs-pb3", 404),  # consent revoked
        ("clin-a", "Observation/obs-pb4", 404),  # consent expired
        ("clin-a", "Observation/obs-pb6", 404),  # consent covers Condition only
        ("clin-a", "Patient/pb6", 404),
        ("clin-a", "Observation/obs-pb2", 200),  # consented
        ("clin-a", "Observation/obs-pb5", 200),  # referred
        ("clin-a", "Observation/obs-pa2", 200),  # seen at org A
        ("clin-a", "Observation/obs-hiv-pa1", 404),  # sensitive, not granted
        ("clin-a", "Patient/pb1", 404),
        ("clin-a", "Observation/obs-pb1/_history/1", 404),
        ("clin-a", "Observation/obs-pa1/_history/1", 200),
        ("clin-a", "Observation/obs-pb1/_history", 404),
        ("clin-a", "Patient/pb1/$everything", 404),
        ("clin-b", "Observation/obs-pb1", 200),
        ("clin-b", "Observation/obs-pa1", 404),
        ("patient-pa1", "Patient/pa1", 200),
        ("patient-pa1", "Patient/pa2", 404),
        ("patient-pa1", "Observation/obs-hiv-pa1", 200),
        ("patient-pb", "Patient/pb2", 200),
        ("system", "Observation/obs-pb1", 200),
    ]
    _check(rows, lambda who, path: region.get(tokens[who], path).status_code)

    history = region.get(tokens["clin-a"], "Observation/_history").json()
    assert ids(history) == obs_of(ORG_A_SEES) and history["total"] == len(ORG_A_SEES)
    everything = region.get(tokens["clin-a"], "Patient/pa1/$everything").json()
    assert ids(everything) >= {"pa1", "obs-pa1", "org-a"}
    assert not ids(everything) & {"obs-hiv-pa1", "obs-pb1"}


def test_includes_has_and_chains_never_reach_hidden_rows(
    region: Region, tokens: dict[str, str]
) -> None:
    rows = [
        # obs-pa1 lists obs-pb1 as a member: the include stops at the boundary
        ("clin-a", "Observation?_id=obs-pa1&_include=Observation:has-member", {"obs-pa1"}),
        ("clin-b", "Observation?_id=obs-pb1&_revinclude=Observation:has-member", {"obs-pb1"}),
        ("system", "Observation?_id=obs-pa1&_include=Observation:has-member",
         {"obs-pa1", "obs-pb1"}),
        ("clin-a", "Organization?_id=org-b&_revinclude=Patient:organization",
         {"org-b", "pb2", "pb5"}),
        ("clin-a", f"Observation?{CODE}&_include=Observation:subject",
         obs_of(ORG_A_SEES) | ORG_A_SEES),
        ("clin-a", f"Patient?_has:Observation:subject:{CODE}", set(ORG_A_SEES)),
        ("clin-a", "Patient?_has:Consent:patient:status=inactive", set()),
        ("clin-a", "Observation?subject:Patient.organization=org-b", obs_of({"pb2", "pb5"})),
        ("clin-a", "Observation?subject.family=Zhang", obs_of(ORG_A_SEES)),
        ("patient-pa1", "Observation?subject.organization=org-b", set()),
    ]

    def run(who: str, path: str) -> Any:
        resp = region.get(tokens[who], path)
        return ids(resp.json()) if resp.status_code == 200 else resp.status_code

    _check(rows, run)


def test_gets_inside_batches_are_restricted(region: Region, tokens: dict[str, str]) -> None:
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-pb1"}},
        {"request": {"method": "GET", "url": "Observation/obs-pa1"}},
        {"request": {"method": "GET", "url": f"Observation?{CODE}"}},
        {"request": {"method": "GET", "url": "Patient/pb1/$everything"}},
    ]}  # fmt: skip
    resp = region.post(tokens["clin-a"], "", batch)
    assert resp.status_code == 200, resp.text
    entries = resp.json()["entry"]
    assert [e["response"]["status"][:3] for e in entries] == ["404", "200", "200", "404"]
    assert ids(entries[2]["resource"]) == obs_of(ORG_A_SEES)

    denied = region.post(tokens["public-health"], "", batch).json()["entry"]
    assert [e["response"]["status"][:3] for e in denied] == ["403"] * 4


def test_writes_are_decided_before_they_run(region: Region, tokens: dict[str, str]) -> None:
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": HEART_RATE}]},
           "subject": {"reference": "Patient/pa1"}}  # fmt: skip
    rows = [
        ("public-health", "Observation", 403),
        ("admin", "Observation", 403),
        ("patient-pa1", "Observation", 403),
        ("admin", "Organization", 201),
        ("clin-a", "Organization", 403),
    ]

    def run(who: str, path: str) -> int:
        body = obs if path == "Observation" else {"resourceType": "Organization", "name": "x"}
        return region.post(tokens[who], path, body).status_code

    _check(rows, run)
    # nothing was written by the refused requests
    assert region.repo.counts_by_type()["Observation"] == 9


def test_consent_revocation_takes_effect_on_the_next_request(
    region: Region, tokens: dict[str, str]
) -> None:
    assert region.get(tokens["clin-a"], "Observation/obs-pb2").status_code == 200
    consent = region.repo.read("Consent", "cons-pb2").resource
    with region.repo.transaction() as tx:
        tx.update({**consent, "status": "inactive"})
    assert region.get(tokens["clin-a"], "Observation/obs-pb2").status_code == 404
    found = region.get(tokens["clin-a"], f"Observation?{CODE}").json()
    assert ids(found) == obs_of(ORG_A_SEES - {"pb2"})
