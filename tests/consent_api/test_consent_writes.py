"""Patients manage the Consents of their own record — through /fhir/Consent and the portal
API — and nobody else's; a grant opens the record on the next request, a revocation closes
it on the next request (real app, real tokens, SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from consent_world import World
from enforce_helpers import HEART_RATE, LOINC, ORG_A_SEES, _consent, ids, obs_of

CODE = f"code={LOINC}|{HEART_RATE}"


def _check(rows: list[tuple[str, Any, Any]], run: Any) -> None:
    wrong = [
        f"{who} {what}: expected {exp!r}, got {got!r}"
        for who, what, exp in rows
        if (got := run(who, what)) != exp
    ]
    assert not wrong, "\n".join(wrong)


def test_who_may_write_which_consent(world: World) -> None:
    w = world
    mine = _consent("c-pb1", "pb1", "org-a")
    research = {**_consent("c-pb1-r", "pb1", "org-a"), "scope": {"coding": [{"code": "research"}]}}
    hijack = _consent("cons-pb2", "pb1", "org-a")  # pb2's consent id, rewritten to pb1
    rows = [
        ("pat-pb1", ("PUT", "Consent/c-pb1", mine), 201),
        ("pat-pb1", ("PUT", "Consent/c-pa1", _consent("c-pa1", "pa1", "org-a")), 403),
        ("pat-pb1", ("PUT", "Consent/cons-pb2", hijack), 403),
        ("pat-pb1", ("PUT", "Consent/c-pb1-r", research), 403),
        ("pat-pb1", ("DELETE", "Consent/cons-pb2", None), 403),
        (
            "pat-pb1",
            (
                "POST",
                "Observation",
                {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
            ),
            403,
        ),
        ("clin-a", ("PUT", "Consent/c-pb1x", _consent("c-pb1x", "pb1", "org-a")), 403),
        ("clin-b", ("DELETE", "Consent/cons-pb2", None), 403),
        ("admin", ("PUT", "Consent/c-pb1y", _consent("c-pb1y", "pb1", "org-a")), 403),
        ("pat-pb1", ("DELETE", "Consent/c-pb1", None), 204),
    ]

    def run(who: str, what: tuple[str, str, Any]) -> int:
        method, path, body = what
        return w.request(method, w.token(who), f"/fhir/{path}", body).status_code

    _check(rows, run)
    # the refused writes left pb2's consent as it was
    assert w.repo.read("Consent", "cons-pb2").resource["patient"]["reference"] == "Patient/pb2"
    with w.repo.transaction() as tx:
        assert all(tx.read("Consent", r) is None for r in ("c-pa1", "c-pb1-r", "c-pb1x", "c-pb1y"))


def test_grant_then_revoke_through_fhir_acts_on_the_next_request(world: World) -> None:
    w = world
    clin = w.token("clin-a")
    assert w.get(clin, "Observation/obs-pb1").status_code == 404
    consent = _consent("c-pb1", "pb1", "org-a")
    assert w.put(w.token("pat-pb1"), "Consent/c-pb1", consent).status_code == 201
    assert w.get(clin, "Observation/obs-pb1").status_code == 200
    found = w.get(clin, f"Observation?{CODE}").json()
    assert ids(found) == obs_of(ORG_A_SEES | {"pb1"}) and found["total"] == len(ORG_A_SEES) + 1
    revoked = {**consent, "status": "inactive"}
    assert w.put(w.token("pat-pb1"), "Consent/c-pb1", revoked).status_code == 200
    assert w.get(clin, "Observation/obs-pb1").status_code == 404
    found = w.get(clin, f"Observation?{CODE}").json()
    assert ids(found) == obs_of(ORG_A_SEES) and found["total"] == len(ORG_A_SEES)


def test_portal_api_grants_lists_and_revokes(world: World) -> None:
    w = world
    pat, clin_b = w.token("pat-pa1"), w.token("clin-b")
    # org B sees nothing of pa1 (registered at org A) until pa1 grants it
    assert w.get(clin_b, "Observation/obs-pa1").status_code == 404
    resp = w.api(
        "POST",
        pat,
        "consents",
        {
            "actor": "Organization/org-b",
            "resourceTypes": ["Observation", "Patient"],
            "labels": ["HIV"],
            "end": "2030-01-01",
        },
    )
    assert resp.status_code == 201, resp.text
    granted = resp.json()
    assert len(granted["consents"]) == 2  # the data classes, and the sensitive label apart
    assert {tuple(c["labels"]) for c in granted["consents"]} == {(), ("HIV",)}
    # the next request sees it — including the HIV-labelled result, granted explicitly
    rows = [
        ("clin-b", "Observation/obs-pa1", 200),
        ("clin-b", "Observation/obs-hiv-pa1", 200),
        ("clin-b", "Patient/pa1", 200),
        ("clin-a", "Observation/obs-hiv-pa1", 404),  # granted to org B, not org A
    ]
    _check(rows, lambda who, path: w.get(w.token(who), path).status_code)
    everything = w.get(clin_b, "Patient/pa1/$everything").json()
    assert {"pa1", "obs-pa1", "obs-hiv-pa1"} <= ids(everything)

    listed = w.api("GET", pat, "consents").json()
    assert {c["id"] for c in listed["consents"]} == {c["id"] for c in granted["consents"]}
    assert listed["default"] == "opt-in"
    # revoking one consent of the grant revokes the whole grant
    first = granted["consents"][0]["id"]
    resp = w.api("POST", pat, f"consents/{first}/revoke")
    assert resp.status_code == 200, resp.text
    assert {c["status"] for c in resp.json()["consents"]} == {"inactive"}
    rows = [("clin-b", "Observation/obs-pa1", 404), ("clin-b", "Observation/obs-hiv-pa1", 404)]
    _check(rows, lambda who, path: w.get(w.token(who), path).status_code)
    # another patient's consent is not theirs to revoke (and does not exist for them)
    assert w.api("POST", pat, "consents/cons-pb2/revoke").status_code == 404
    assert w.repo.read("Consent", "cons-pb2").resource["status"] == "active"


def test_portal_api_refuses_what_is_not_the_patients(world: World) -> None:
    w = world
    rows = [
        ("pat-pa1", {"patient": "pb1", "actor": "Organization/org-b"}, 403),
        ("clin-a", {"actor": "Organization/org-b"}, 403),
        ("pat-pa1", {"actor": "Hospital/x"}, 400),
        ("pat-pa1", {"actor": "Organization/org-b", "labels": ["NOPE"]}, 400),
        ("pat-pa1", {"actor": "Organization/org-b", "resourceTypes": ["Organization"]}, 400),
        ("pat-pa1", {"actor": "Organization/org-b", "end": "not a date"}, 400),
        ("pat-pa1", {"actor": "Practitioner/pr-b", "resourceTypes": ["Observation"]}, 201),
    ]
    _check(rows, lambda who, body: w.api("POST", w.token(who), "consents", body).status_code)
    # the practitioner grant opens pa1's observations to pr-b, not to others at org B
    assert w.get(w.token("clin-b"), "Observation/obs-pa1").status_code == 200
    other = w.account("clin-b2", w.users["clin-b"][1]["role"], org="org-b", practitioner="pr-b2")
    assert w.get(other, "Observation/obs-pa1").status_code == 404
    unauthenticated = w.request("GET", None, "/api/consents")
    assert unauthenticated.status_code == 401
    assert "访问令牌" in unauthenticated.text


def test_a_grant_to_any_treating_clinician_opens_the_record_to_every_clinician(
    world: World,
) -> None:
    """A Consent with no actor: read, search with its total and $everything open for a
    clinician of any organization; sensitive data only when the grant lists the label;
    revoked, it closes again on the next request."""
    w = world
    code = f"code={LOINC}|{HEART_RATE}"

    def reach(who: str) -> tuple[int, int, bool, int]:
        token = w.token(who)
        found = w.get(token, f"Observation?{code}").json()
        return (w.get(token, "Observation/obs-pa1").status_code,
                w.get(token, "Observation/obs-hiv-pa1").status_code,
                "obs-pa1" in ids(found),
                w.get(token, "Patient/pa1/$everything").status_code)

    before = reach("clin-b")
    assert before == (404, 404, False, 404)
    pat = w.token("pat-pa1")
    resp = w.api("POST", pat, "consents", {"end": "2030-01-01"})
    assert resp.status_code == 201, resp.text
    grant = resp.json()["consents"]
    assert all("actor" not in c or not c["actor"] for c in grant)
    assert reach("clin-b") == (200, 404, True, 200)  # HIV stays hidden: not granted
    total = w.get(w.token("clin-b"), f"Observation?{code}").json()["total"]
    assert total == len(ids(w.get(w.token("clin-b"), f"Observation?{code}&_count=100").json()))
    # a second grant listing the HIV label opens it too
    resp = w.api("POST", pat, "consents", {"labels": ["HIV"], "end": "2030-01-01"})
    assert resp.status_code == 201, resp.text
    assert reach("clin-b")[1] == 200
    for c in [*grant, *resp.json()["consents"]]:
        assert w.api("POST", pat, f"consents/{c['id']}/revoke").status_code in (200, 404)
    assert reach("clin-b") == before
