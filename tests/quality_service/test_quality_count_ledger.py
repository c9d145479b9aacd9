"""The quality counters' ledger on SQLite and PostgreSQL: a checked transaction appends one
row; folding moves rows into the totals; reads are exact before, during and after a fold."""

from __future__ import annotations

import threading
from typing import Any

from quality_service_helpers import Clock, patient, quality_app, systolic

from huitong.quality.model import Category
from huitong.quality.scores import CheckCount
from huitong.quality.store import append_count_deltas, count_rows, fold_count_deltas
from huitong.store import Repository

RULE = "observation.systolic-in-range"


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
        for r in resources]}  # fmt: skip


def _ledger_rows(repo: Repository) -> int:
    return int(repo.query("SELECT COUNT(*) FROM quality_count_deltas")[0][0])


def _totals(repo: Repository) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {(c.organization, c.month, c.rule_id): (c.applicable, c.failed)
            for c in count_rows(repo)}  # fmt: skip


def test_one_ledger_row_a_transaction_and_exact_reads_across_a_fold(repo: Repository) -> None:
    client, service = quality_app(repo, Clock())
    assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201
    assert _ledger_rows(repo) == 1
    r = client.post("/fhir", json=_bundle(systolic(120), systolic(350), systolic(130)))
    assert r.status_code == 200
    assert _ledger_rows(repo) == 2  # one row for the whole bundle, whatever its rules
    before = _totals(repo)
    assert before[("Organization/hosp-a", "2024-05", RULE)] == (3, 1)
    assert service.fold_counts() == 2
    assert _ledger_rows(repo) == 0
    assert _totals(repo) == before  # folded: the same counts, now in quality_counts
    stored = repo.query("SELECT applicable, failed FROM quality_counts WHERE rule_id = ?",
                        (RULE,))  # fmt: skip
    assert [(int(a), int(f)) for a, f in stored] == [(3, 1)]
    # Later checks go to the ledger again and add to the folded totals on read.
    assert client.post("/fhir/Observation", json=systolic(20)).status_code == 201
    assert _totals(repo)[("Organization/hosp-a", "2024-05", RULE)] == (4, 2)
    assert service.fold_counts() == 1 and service.fold_counts() == 0
    assert _totals(repo)[("Organization/hosp-a", "2024-05", RULE)] == (4, 2)
    client.close()


def test_an_institution_s_counts_include_its_unfolded_deltas_only(repo: Repository) -> None:
    def count(org: str, applicable: int) -> CheckCount:
        return CheckCount(org, "2024-05", RULE, Category.PLAUSIBILITY, applicable, 0)

    with repo.transaction() as tx:
        append_count_deltas(tx, [count("Organization/a", 2), count("Organization/b", 5)])
    fold_count_deltas(repo)
    with repo.transaction() as tx:
        append_count_deltas(tx, [count("Organization/a", 1), count("Organization/b", 7)])
    assert [(c.organization, c.applicable) for c in count_rows(repo, "Organization/a")] == [
        ("Organization/a", 3)]
    assert sorted((c.organization, c.applicable) for c in count_rows(repo)) == [
        ("Organization/a", 3), ("Organization/b", 12)]


def test_folding_in_small_batches_while_others_write_loses_and_doubles_nothing(
    repo: Repository,
) -> None:
    def delta(i: int) -> list[CheckCount]:
        return [CheckCount(f"Organization/{i % 3}", "2024-05", RULE, Category.PLAUSIBILITY,
                           1, i % 2)]  # fmt: skip

    writes = 60
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(writes):
                with repo.transaction() as tx:
                    append_count_deltas(tx, delta(i))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[int] = []
    while not done.is_set():
        fold_count_deltas(repo, batch=4)
        seen.append(sum(c.applicable for c in count_rows(repo)))
    thread.join()
    assert not errors
    assert seen == sorted(seen)  # a read never saw a count go away, or come twice
    fold_count_deltas(repo, batch=4)
    assert _ledger_rows(repo) == 0
    totals = {c.organization: (c.applicable, c.failed) for c in count_rows(repo)}
    assert totals == {f"Organization/{k}": (20, sum(i % 2 for i in range(k, writes, 3)))
                      for k in range(3)}  # fmt: skip


def test_a_running_server_folds_the_ledger_and_folds_it_at_stop(repo: Repository) -> None:
    import asyncio

    import httpx

    from huitong.config import Settings
    from huitong.server import create_app

    app = create_app(repo, Settings.from_env({}, database_url="unused", auth="off"))

    async def serve_and_stop() -> None:
        async with app.router.lifespan_context(app):  # the server's start and shutdown
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hie.test") as http:
                created = await http.put("/fhir/Patient/p1", json=patient())
                assert created.status_code == 201
                created = await http.post("/fhir/Observation", json=systolic(350))
                assert created.status_code == 201
            assert _ledger_rows(repo) >= 1
            before = _totals(repo)
        assert _ledger_rows(repo) == 0  # folded when the server stopped
        assert _totals(repo) == before and any(f for _, f in before.values())

    asyncio.run(serve_and_stop())
