"""``Bundle.total`` when the client does not ask for an accurate one (docs/api.md, Search).

Without ``_total`` a search counts its matches exactly up to ``TOTAL_EXACT_UP_TO`` past the
page and stops there; beyond that PostgreSQL reports the planner's estimate (never less than
what was counted) and SQLite counts exactly. ``_total=accurate`` and ``_summary=count``
always count every match; ``_total=none`` reports nothing. The cap is lowered here so that
a handful of resources crosses it.
"""

from __future__ import annotations

import pytest

import huitong.store._base as store_base

MATCHES = 12


@pytest.fixture
def basics(client, monkeypatch):
    monkeypatch.setattr(store_base, "TOTAL_EXACT_UP_TO", 3)
    for i in range(MATCHES):
        r = client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": f"t{i}"}})
        assert r.status_code == 201, r.text
    return client


def _dialect(client) -> str:
    return client.get("/healthz").json()["database"]


@pytest.mark.parametrize(
    ("query", "exact", "counted"),
    [
        ("_count=2&_total=accurate", True, MATCHES),
        ("_summary=count", True, MATCHES),
        ("_count=0&_total=accurate", True, MATCHES),
        ("_count=2", False, 2 + 3),
        ("_count=2&_total=estimate", False, 2 + 3),
        ("_count=0", False, 0 + 3),
        ("_count=20", True, MATCHES),  # the page holds every match: known without counting
        ("_count=5&_offset=10", True, MATCHES),  # a short page after the offset: exact
    ],
)
def test_total_past_the_cap(basics, query, exact, counted):
    resp = basics.get(f"/fhir/Basic?{query}")
    assert resp.status_code == 200, resp.text
    total = resp.json()["total"]
    if exact or _dialect(basics) == "sqlite":
        assert total == MATCHES
    else:
        # counted up to offset + count + cap, then the planner's estimate: at least that
        assert isinstance(total, int) and total >= counted


def test_total_under_the_cap_is_exact(client, monkeypatch):
    monkeypatch.setattr(store_base, "TOTAL_EXACT_UP_TO", 100)
    for i in range(7):
        client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": f"t{i}"}})
    for query in ("_count=2", "_count=2&_total=estimate", "_count=2&_offset=2", "_count=0"):
        assert client.get(f"/fhir/Basic?{query}").json()["total"] == 7, query


def test_total_none_reports_nothing(basics):
    assert "total" not in basics.get("/fhir/Basic?_total=none&_count=2").json()


def test_estimate_is_not_in_the_self_link(basics):
    # the default is the server's choice, not a parameter the client sent
    links = basics.get("/fhir/Basic?_count=2").json()["link"]
    assert all("_total" not in link["url"] for link in links)
