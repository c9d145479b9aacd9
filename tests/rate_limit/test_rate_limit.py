"""Token buckets per client and route group: 429 with Retry-After and an OperationOutcome,
shared between two app instances through Redis, in-process otherwise (issue 5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from consent_world import World

from huitong.access import Role
from huitong.access.rate_limit import Limit, LocalBuckets, parse_limit
from huitong.store.repository import Repository


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", Limit(100, 60.0)),
        ("5/second", Limit(5, 1.0)),
        ("1000/hour", Limit(1000, 3600.0)),
        ("20/minute", Limit(20, 60.0)),
        ("0", None),
        ("off", None),
    ],
)
def test_parse_limit(text: str, expected: Limit | None) -> None:
    assert parse_limit(text) == expected


@pytest.mark.parametrize("text", ["ten", "5/fortnight", "-1"])
def test_parse_limit_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_limit(text)


def test_local_bucket_refills_at_its_rate() -> None:
    ticks = Ticks()
    buckets = LocalBuckets(now=ticks)
    limit = Limit(3, 60.0)  # one token back every 20 s
    assert [buckets.take("a", limit).allowed for _ in range(4)] == [True, True, True, False]
    refused = buckets.take("a", limit)
    assert not refused.allowed and refused.retry_after == pytest.approx(20.0)
    assert buckets.take("b", limit).allowed  # another client has its own bucket
    ticks.now += 20.0
    assert buckets.take("a", limit).allowed and not buckets.take("a", limit).allowed


def _client_token(w: World, client_id: str) -> str:
    """A clinician token issued to the registered client ``client_id``."""
    w.service.clients.add(
        "confidential",
        client_id=client_id,
        name="Rate test",
        redirect_uris=["https://ehr.example.cn/cb"],
        scopes="user/*.cruds",
    )
    user_id, claims = w.users["clin-a"]
    return w._sign(claims, user_id, client_id, "user/*.cruds")


@pytest.fixture
def limited(repo: Repository) -> Iterator[World]:
    w = World(repo, rate_limit="3/minute")
    w.account("clin-a", Role.CLINICIAN, org="org-a", practitioner="pr-a")
    yield w
    w.close()


def test_429_with_retry_after_per_client_and_route_group(limited: World) -> None:
    w = limited
    one, two = (
        _client_token(w, f"c1-{uuid.uuid4().hex}"),
        _client_token(w, f"c2-{uuid.uuid4().hex}"),
    )
    statuses = [w.get(one, "Observation/obs-pa1").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = w.get(one, "Observation/obs-pa1")
    assert refused.status_code == 429
    # one token back every 20 s, less the time the requests took (real time, not the clock)
    assert 15 <= int(refused.headers["Retry-After"]) <= 20
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "throttled"
    assert "Too many requests" in refused.text and "请求过于频繁" in refused.text
    # another client, and another route group of the same client, are not affected
    assert w.get(two, "Observation/obs-pa1").status_code == 200
    assert w.api("GET", one, "break-glass").status_code == 200
    # a forged token does not spend the client's budget: it counts against its address
    forged = one[:-4] + ("AAAA" if not one.endswith("AAAA") else "BBBB")
    assert [w.get(forged, "metadata").status_code for _ in range(3)] == [200] * 3
    assert w.get(forged, "metadata").status_code == 429


def test_shared_through_redis_between_two_app_instances(repo: Repository, redis_url: str) -> None:
    first = World(repo, rate_limit="4/minute", redis_url=redis_url)
    second = World(repo, rate_limit="4/minute", redis_url=redis_url)
    try:
        first.account("clin-a", Role.CLINICIAN, org="org-a", practitioner="pr-a")
        second.users = first.users
        client = f"shared-{uuid.uuid4().hex}"  # a fresh bucket whatever ran before
        token = _client_token(first, client)
        got = [
            w.get(token, "Observation/obs-pa1").status_code
            for w in (first, second, first, second, first, second)
        ]
        assert got == [200, 200, 200, 200, 429, 429]
        assert 10 <= int(second.get(token, "metadata").headers["Retry-After"]) <= 15
    finally:
        first.close()
        second.close()


def test_redis_unreachable_falls_back_to_in_process_buckets(repo: Repository) -> None:
    w = World(repo, rate_limit="2/minute", redis_url="redis://127.0.0.1:1/0")
    try:
        w.account("clin-a", Role.CLINICIAN, org="org-a", practitioner="pr-a")
        token = _client_token(w, f"down-{uuid.uuid4().hex}")
        assert [w.get(token, "Observation/obs-pa1").status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
    finally:
        w.close()


def test_no_limit_with_authentication_off(repo: Repository) -> None:
    w = World(repo, rate_limit="1/minute", auth="off")
    try:
        assert [w.request("GET", None, "/fhir/metadata").status_code for _ in range(3)] == [
            200,
            200,
            200,
        ]
    finally:
        w.close()
