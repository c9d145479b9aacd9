"""Counting on the write path: the checks of a transaction are added up in memory and written
as one counter row per institution × month × rule, and the month a write counts in follows
the clock across month ends (the service keeps the current month's bounds instead of
working the month out for every write) — on SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime
from typing import Any

import pytest
from quality_service_helpers import Clock, patient, quality_app, systolic

from huitong.quality.scores import month_of
from huitong.quality.service import QualityService
from huitong.quality.store import count_rows
from huitong.store import Repository

RULE = "observation.systolic-in-range"


def _us(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1_000_000)


# (UTC offset in minutes, instants in the order the clock reaches them)
MONTH_ENDS = [
    (480, [_us(2024, 1, 31, 15, 59, 59), _us(2024, 1, 31, 16), _us(2024, 2, 29, 15, 59),
           _us(2024, 2, 29, 16), _us(2024, 12, 31, 16), _us(2024, 12, 31, 15)]),
    (0, [_us(2023, 12, 31, 23, 59, 59), _us(2024, 1, 1), _us(2024, 1, 1, 0, 0, 1),
         _us(2024, 3, 1), _us(2024, 2, 29, 23, 59, 59)]),
    (-300, [_us(2024, 6, 1, 4, 59, 59), _us(2024, 6, 1, 5), _us(2024, 7, 1, 4, 59, 59)]),
]  # fmt: skip


@pytest.mark.parametrize(("offset", "instants"), MONTH_ENDS)
def test_the_month_of_a_write_follows_the_clock_across_month_ends(
    repo: Repository, offset: int, instants: list[int]
) -> None:
    service = QualityService(repo, clock=Clock(), utc_offset_minutes=offset)
    for now in instants:
        # the bound just below and at the instant, so both sides of every cached range are hit
        for t in (now - 1, now, now + 1):
            assert service._month_of(t) == month_of(t, offset), t


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r in resources
        ],
    }


def _counts(repo: Repository, rule: str) -> list[tuple[str, str, int, int]]:
    """The rule's counters as reads see them (folded totals plus the ledger)."""
    return sorted((c.organization, c.month, c.applicable, c.failed)
                  for c in count_rows(repo) if c.rule_id == rule)  # fmt: skip


def test_a_transaction_adds_its_checks_up_in_one_counter_row_per_month(
    repo: Repository,
) -> None:
    clock = Clock()  # 2024-05-15 12:00 in China Standard Time
    client, _ = quality_app(repo, clock)
    assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201

    r = client.post("/fhir", json=_bundle(systolic(120), systolic(350), systolic(130)))
    assert r.status_code == 200, r.text
    assert _counts(repo, RULE) == [("Organization/hosp-a", "2024-05", 3, 1)]
    findings = repo.query("SELECT COUNT(*) FROM quality_findings WHERE rule_id = ?", (RULE,))
    assert findings[0][0] == 1

    # The same month again: added to the stored row.
    assert client.post("/fhir", json=_bundle(systolic(20))).status_code == 200
    assert _counts(repo, RULE) == [("Organization/hosp-a", "2024-05", 4, 2)]

    # 2024-05-31T16:00Z is June 1st in China: a new row, May untouched.
    clock.now = _us(2024, 5, 31, 16)
    assert client.post("/fhir", json=_bundle(systolic(125), systolic(126))).status_code == 200
    assert _counts(repo, RULE) == [
        ("Organization/hosp-a", "2024-05", 4, 2),
        ("Organization/hosp-a", "2024-06", 2, 0),
    ]


def test_transactions_that_check_nothing_commit_after_one_that_did(repo: Repository) -> None:
    # The service keeps the last transaction of each thread at hand; a later transaction
    # with no checked write (an audit entry, a config change) must still commit.
    client, _ = quality_app(repo, Clock())
    assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201
    for _ in range(2):
        with repo.transaction() as tx:
            tx.execute("SELECT COUNT(*) FROM quality_counts")
    assert client.post("/fhir/Observation", json=systolic(350)).status_code == 201
    assert _counts(repo, RULE) == [("Organization/hosp-a", "2024-05", 1, 1)]


def test_a_transaction_s_bookkeeping_is_released_when_it_ends(repo: Repository) -> None:
    # The per-transaction state lives in the transaction (Transaction.state) and refers back
    # to it only weakly: nothing may keep a transaction or its bookkeeping once it ends, or
    # every transaction would stay in memory for good.
    client, service = quality_app(repo, Clock())
    ended: list[weakref.ref[Any]] = []  # the transactions that checked something
    repo.add_commit_hook(
        "test-watch", lambda tx: ended.append(weakref.ref(tx)) if service in tx.state else None
    )
    gc.collect()
    gc.disable()  # freed by their reference counts alone: no cycle through the bookkeeping
    try:
        assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201
        assert client.post("/fhir", json=_bundle(systolic(120), systolic(350))).status_code == 200
        with pytest.raises(ValueError), repo.transaction() as tx:
            tx.create(systolic(130))
            assert service in tx.state
            ended.append(weakref.ref(tx))
            raise ValueError("the caller gives up: the transaction is rolled back")
        del tx  # the test's own name for it
        alive = [ref() is not None for ref in ended]
    finally:
        gc.enable()
    assert len(ended) == 3  # two committed transactions and the rolled-back one
    assert alive == [False] * 3
