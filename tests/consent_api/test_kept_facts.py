"""A clinician's access facts kept between requests (access/facts_cache.py) never outlive a
change: through the real app, every change a restriction rests on — a consent granted or
revoked (by the API, or by another process writing the database directly), a consent naming
no one, a patient registered or moved away, an encounter, a referral, a sensitive label, a
consent period ending — shows on the very next request. On PostgreSQL the facts are read once
and then kept (one statement fewer per request); on SQLite nothing is kept and the same
answers hold."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from consent_world import HOUR, World
from enforce_helpers import HEART_RATE, LOINC, ORG_A_SEES, _consent, _observation, ids, obs_of

import huitong.access.facts_cache as facts_cache
from huitong.access import Role
from huitong.access.facts_cache import ChangePruner, FactsCache
from huitong.store import open_repository
from huitong.store.repository import Repository

CODE = f"code={LOINC}|{HEART_RATE}"


@pytest.fixture
def counted(world: World) -> Iterator[list[str]]:
    """The facts statements the app runs (PostgreSQL reads them ahead; SQLite never)."""
    calls: list[str] = []
    real = getattr(world.repo, "access_query", None)

    def counting(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        calls.append(sql)
        assert real is not None
        return real(sql, params)  # type: ignore[no-any-return]

    world.repo.access_query = counting  # type: ignore[attr-defined]
    yield calls


def _seen(w: World, who: str = "clin-a") -> set[str]:
    body = w.get(w.token(who), f"Observation?{CODE}&_count=100").json()
    assert body["total"] == len(ids(body))
    return ids(body)


def _write(repo: Repository, resource: dict[str, Any]) -> None:
    with repo.transaction() as tx:
        tx.update(resource)


def test_facts_are_kept_between_requests(world: World, counted: list[str]) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    assert _seen(w) == base
    first = len(counted)
    assert _seen(w) == base
    assert _seen(w, "clin-b") == obs_of({"pb1", "pb2", "pb3", "pb4", "pb5", "pb6"})
    if w.repo.dialect == "postgresql":
        assert first == 1
        assert len(counted) == 2  # clin-a's again from the cache; clin-b's read once
    else:
        assert counted == []


def test_revocation_acts_on_the_next_request(world: World, counted: list[str]) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    assert _seen(w) == base and _seen(w) == base  # kept now
    w.account("pat-pb2", Role.PATIENT, patient_ids=("pb2",))
    revoked = {**_consent("cons-pb2", "pb2", "org-a"), "status": "inactive"}
    assert w.put(w.token("pat-pb2"), "Consent/cons-pb2", revoked).status_code == 200
    assert _seen(w) == base - {"obs-pb2"}
    assert w.get(w.token("clin-a"), "Observation/obs-pb2").status_code == 404
    # granted again through the portal API: the next request sees it
    resp = w.api("POST", w.token("pat-pb2"), "consents", {"actor": "Organization/org-a"})
    assert resp.status_code == 201, resp.text
    assert _seen(w) == base


def test_a_change_written_by_another_process_is_seen(world: World, engine_url: str) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    assert _seen(w) == base and _seen(w) == base
    # a second repository on the same database, with none of the app's hooks: only the
    # database knows of this write (the triggers of migration 0013)
    other = open_repository(engine_url)
    try:
        _write(other, {**_consent("cons-pb2", "pb2", "org-a"), "status": "inactive"})
        assert _seen(w) == base - {"obs-pb2"}
        _write(other, _consent("cons-pb1", "pb1", "org-a"))
        assert _seen(w) == (base - {"obs-pb2"}) | {"obs-pb1"}
    finally:
        other.close()


@pytest.mark.parametrize(
    ("change", "effect"),
    [
        # registered at org-a: the patient joins the organization's patients
        ({"resourceType": "Patient", "id": "pb3", "managingOrganization":
          {"reference": "Organization/org-a"}}, {"add": "obs-pb3"}),
        # moved away from org-a (was registered there)
        ({"resourceType": "Patient", "id": "pa1", "managingOrganization":
          {"reference": "Organization/org-b"}}, {"remove": "obs-pa1"}),
        # seen at org-a
        ({"resourceType": "Encounter", "id": "enc-pb4", "status": "finished",
          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
          "subject": {"reference": "Patient/pb4"},
          "serviceProvider": {"reference": "Organization/org-a"}}, {"add": "obs-pb4"}),
        # the referral to pr-a completed
        ({"resourceType": "ServiceRequest", "id": "ref-pb5", "status": "completed",
          "intent": "order", "subject": {"reference": "Patient/pb5"},
          "performer": [{"reference": "Practitioner/pr-a"}]}, {"remove": "obs-pb5"}),
        # a consent naming no one: any treating clinician
        ({**_consent("cons-pb6-all", "pb6", "org-a"), "provision": {"type": "permit"}},
         {"add": "obs-pb6"}),
        # a deny naming no one: pb2's consent to org-a no longer opens the record
        ({**_consent("deny-pb2", "pb2", "org-a"), "provision": {"type": "deny"}},
         {"remove": "obs-pb2"}),
    ],
    ids=["registered", "moved-away", "encounter", "referral-closed", "consent-no-actor",
         "deny-everyone"],
)  # fmt: skip
def test_relationship_changes_act_on_the_next_request(
    world: World, change: dict[str, Any], effect: dict[str, str]
) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    assert _seen(w) == base and _seen(w) == base
    if change["resourceType"] == "Patient":
        current = w.repo.read("Patient", change["id"]).resource
        change = {**current, **change}
    _write(w.repo, change)
    expected = base | {effect["add"]} if "add" in effect else base - {effect["remove"]}
    assert _seen(w) == expected


def test_a_new_sensitive_label_hides_at_once(world: World) -> None:
    w = world
    assert "obs-hiv-pa2" not in _seen(w)
    _write(w.repo, _observation("obs-hiv-pa2", "pa2"))
    assert "obs-hiv-pa2" in _seen(w)  # pa2 has no labelled data yet: kept facts say so
    labelled = _observation("obs-hiv-pa2", "pa2", meta={"security": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]})  # fmt: skip
    _write(w.repo, labelled)
    assert "obs-hiv-pa2" not in _seen(w)
    assert w.get(w.token("clin-a"), "Observation/obs-hiv-pa2").status_code == 404


def test_a_consent_period_ends_without_any_write(world: World) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    # the clock stands at 2027-01-15 (tests/access_enforcement/enforce_helpers.py)
    ending = _consent("cons-pb2", "pb2", "org-a", period=("2026-01-01", "2027-06-01"))
    _write(w.repo, ending)
    assert _seen(w) == base and _seen(w) == base
    w.clock.now += 200 * 24 * HOUR  # past 2027-06-01
    assert "obs-pb2" not in _seen(w)


def test_facts_checked_by_no_request_are_not_used() -> None:
    """A request may use kept facts only if its own authentication checked them or they
    were read after it began (a revocation committed before it started is then seen)."""
    cache = FactsCache()
    key = ("org-a", "pr-a")
    early = cache.ticket(key, started=time.monotonic(), checked=None)
    early.store(("facts",), ["v"], snapshot="1:1:", valid_until=None, scopes={"*"},
                taken=time.monotonic(), read=time.monotonic())  # fmt: skip
    assert early.lookup(("facts",), 0) == ["v"]  # read after `early` began
    later = cache.ticket(key, started=time.monotonic(), checked=None)
    assert later.lookup(("facts",), 0) is None  # read before `later` began, unchecked
    kept = cache.to_check(key)
    assert kept is not None and kept[1] == "1:1:" and kept[2] == ["*"]
    checked = cache.ticket(key, started=time.monotonic(), checked=kept[0])
    assert checked.lookup(("facts",), 0) == ["v"]
    assert checked.lookup(("facts",), 10) == ["v"]
    # a period boundary: not used from then on
    early.store(("timed",), ["t"], snapshot="1:1:", valid_until=5, scopes=(),
                taken=time.monotonic(), read=time.monotonic())  # fmt: skip
    assert checked.lookup(("timed",), 4) == ["t"] and checked.lookup(("timed",), 5) is None
    cache.discard(key, kept[0])
    assert cache.to_check(key) is None and checked.lookup(("facts",), 0) is None


def test_pruning_keeps_what_kept_snapshots_need(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    if w.repo.dialect != "postgresql":
        assert ChangePruner(w.repo).run() == 0
        return
    monkeypatch.setattr(facts_cache, "TTL_SECONDS", 0.01)
    pruner = ChangePruner(w.repo, interval=0.02)

    def older_than_horizon() -> int:
        horizon = pruner._horizon
        assert horizon is not None
        return int(w.repo.query(
            "SELECT COUNT(*) FROM access_changes WHERE xid < CAST(? AS xid8)", (horizon,)
        )[0][0])  # fmt: skip

    _write(w.repo, _consent("cons-pb1", "pb1", "org-a"))
    assert pruner.run() == 0  # the first run only notes the horizon
    assert w.repo.query("SELECT COUNT(*) FROM access_changes")[0][0] > 0
    assert pruner.run() == 0  # not due yet
    time.sleep(0.03)
    # every row of a transaction older than the horizon goes (how many are depends on the
    # oldest transaction running anywhere on the server when the horizon was noted)
    expected = older_than_horizon()
    assert pruner.run() == expected
    _write(w.repo, {**_consent("cons-pb1", "pb1", "org-a"), "status": "inactive"})
    horizon = pruner._horizon

    def rows_since() -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in w.repo.query(
            "SELECT scope, CAST(xid AS TEXT) FROM access_changes "
            "WHERE xid >= CAST(? AS xid8)", (horizon,))}  # fmt: skip

    since = rows_since()
    assert ("Organization/org-a" in {scope for scope, _ in since})  # the revocation's
    time.sleep(0.03)
    pruner.run()
    assert rows_since() == since  # written after the horizon: nothing of it went
