"""Groups of entries inserted and sequenced in one transaction on the event loop
(audit/pg_appends.py, PostgreSQL): the rows must be exactly what recording and then
sequencing would have written, the tree must verify, every proof must hold, tampering with
the rows must still be caught, and the appender must serialise with the sequencer."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import psycopg
import pytest
from audit_helpers import NOW

from huitong.audit.entry import AccessBasis, Actor, AuditEntry, BasisKind, parse_entry
from huitong.audit.frontier import Frontier
from huitong.audit.hashing import leaf_hash
from huitong.audit.log import MerkleLog
from huitong.audit.pg_appends import FRONTIER_SQL, PgGroupAppender, frontier_of, lock_key
from huitong.audit.proofs import verify_consistency, verify_inclusion
from huitong.audit.service import _SEQUENCER_LOCK, AuditService
from huitong.audit.sql import SqlNodeStore
from huitong.audit.storage import MemoryNodeStore
from huitong.store import Repository, open_repository
from huitong.store.postgres import PostgresOps


def _entry(n: int, *, patients: tuple[str, ...] | None = None) -> AuditEntry:
    return AuditEntry(
        recorded=NOW + n, action="read", actor=Actor(role="anonymous", address="127.0.0.1"),
        basis=AccessBasis(BasisKind.ROLE, "authentication-off"), request_id=f"r{n}",
        resource_type="Observation", resources=(f"Observation/o{n}",),
        patients=(f"p{n % 7}", "shared") if patients is None else patients,
    )  # fmt: skip


def _appender(service: AuditService) -> PgGroupAppender:
    appender = service.group_appender()
    assert appender is not None
    return appender


def _append_groups(appender: PgGroupAppender, groups: list[list[AuditEntry]]) -> None:
    async def run() -> None:
        try:
            for group in groups:
                await appender.append(group)
        finally:
            await appender.close()

    asyncio.run(run())


def _rows(repo: Repository) -> list[tuple[Any, ...]]:
    return repo.query("SELECT seq, idx, entry FROM audit_entries ORDER BY seq")


def _assert_nodes_recomputed(repo: Repository) -> None:
    """Every stored node (interior ones included, which proofs are made of) is the one a
    log rebuilt from the entry rows, in position order, holds."""
    rebuilt = MerkleLog(MemoryNodeStore())
    for _idx, data in repo.query("SELECT idx, entry FROM audit_entries ORDER BY idx"):
        rebuilt.append(bytes(data))
    stored = {(int(lv), int(i)): bytes(h)
              for lv, i, h in repo.query("SELECT level, idx, hash FROM audit_nodes")}  # fmt: skip
    assert stored == rebuilt.store.get_nodes(list(stored))
    assert len(stored) == 2 * rebuilt.size - rebuilt.size.bit_count()


def test_the_lock_is_the_one_the_sequencer_takes() -> None:
    taken: list[Any] = []

    class Cursor:
        def execute(self, sql: str, params: Any) -> None:
            taken.append(params)

    PostgresOps().lock_keys(Cursor(), [_SEQUENCER_LOCK])
    assert taken == [(lock_key(_SEQUENCER_LOCK),)]
    assert lock_key(_SEQUENCER_LOCK) != lock_key("huitong-audit-key")


def test_the_frontier_statement_reads_what_the_store_holds(pg_repo: Repository) -> None:
    memory = MerkleLog(MemoryNodeStore())
    for n in range(70):  # every size up to 70: each bit pattern of a small log
        got = frontier_of(pg_repo.query(FRONTIER_SQL))
        assert got == Frontier.from_store(memory.store) == Frontier.from_store(
            SqlNodeStore(pg_repo.query, "postgresql"))  # fmt: skip
        with pg_repo.transaction() as tx:
            MerkleLog(SqlNodeStore(tx.execute, "postgresql")).append(f"entry {n}".encode())
        memory.append(f"entry {n}".encode())
    # A node the size needs is missing: refused, never a wrong frontier.
    with pg_repo.transaction() as tx:
        tx.execute("DELETE FROM audit_nodes WHERE level = 2 AND idx = 16")
    with pytest.raises(ValueError):
        frontier_of(pg_repo.query(FRONTIER_SQL))


def _table(repo: Repository) -> dict[str, Any]:
    """Everything the log stores, keyed by position (row numbers are not compared: they
    depend on the identity sequence, not on the log)."""
    return {
        "entries": repo.query(
            "SELECT idx, recorded, action, actor_role, actor_user, actor_client, actor_org, "
            "outcome, entry FROM audit_entries ORDER BY idx"
        ),
        "patients": repo.query(
            "SELECT e.idx, p.patient_id, p.recorded FROM audit_entry_patients p "
            "JOIN audit_entries e ON e.seq = p.seq ORDER BY e.idx, p.patient_id"
        ),
        "nodes": repo.query("SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx"),
    }


def test_groups_store_what_recording_then_sequencing_stores(
    pg_repo: Repository, postgres_url: str
) -> None:
    rnd = random.Random(5)
    entries = [_entry(n, patients=tuple(f"p{rnd.randrange(9)}" for _ in range(rnd.randrange(4))))
               for n in range(150)]  # fmt: skip
    sizes = [1, 2, 3, 7, 16, 1, 40, 80]  # odd and even starts, groups across subtree edges
    groups, at = [], 0
    for size in sizes:
        groups.append(entries[at : at + size])
        at += size
    service = AuditService(pg_repo, clock=lambda: NOW)
    _append_groups(_appender(service), groups)
    fast = _table(pg_repo)
    assert service.unsequenced() == 0 and service.size() == 150

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the log emptied again
        conn.execute("TRUNCATE audit_entries, audit_entry_patients, audit_nodes RESTART IDENTITY")
    for group in groups:
        with pg_repo.transaction() as tx:
            service.record_many(tx, group)
    service.sequence_all()
    assert _table(pg_repo) == fast
    assert [parse_entry(bytes(r[8])) for r in fast["entries"]] == entries


def test_the_log_verifies_and_proves_with_writes_in_between(pg_repo: Repository) -> None:
    service = AuditService(pg_repo, clock=lambda: NOW, origin="https://hie.test/fhir")
    appender = _appender(service)
    written: list[AuditEntry] = []

    async def run() -> None:
        try:
            for n in range(12):
                await appender.append([_entry(100 * n + k) for k in range(n % 4 + 1)])
                # A write transaction's entry (sequenced later by the sequencer), and at
                # times the sequencer and a checkpoint between groups.
                entry = _entry(100 * n + 50)
                with pg_repo.transaction() as tx:
                    service.record(tx, entry)
                written.append(entry)
                if n % 3 == 2:
                    service.checkpoint()
        finally:
            await appender.close()

    asyncio.run(run())
    service.checkpoint()
    report = service.verify()
    assert report.ok, report.codes()
    _assert_nodes_recomputed(pg_repo)
    size = service.size()
    assert size == sum(n % 4 + 1 for n in range(12)) + 12
    idxs = [int(r[0]) for r in pg_repo.query("SELECT idx FROM audit_entries ORDER BY idx")]
    assert idxs == list(range(size))
    checkpoints = service.checkpoints()
    assert len(checkpoints) >= 4
    for cp in checkpoints:
        for index in range(cp.checkpoint.size):
            stored = service.entry_at(index)
            proof = service.inclusion_proof(index, cp.checkpoint.size)
            assert verify_inclusion(leaf_hash(stored.data), index, cp.checkpoint.size, proof,
                                    cp.checkpoint.root)  # fmt: skip
    for a, b in itertools.pairwise(checkpoints):
        proof = service.consistency_proof(a.checkpoint.size, b.checkpoint.size)
        assert verify_consistency(a.checkpoint.size, b.checkpoint.size, a.checkpoint.root,
                                  b.checkpoint.root, proof)  # fmt: skip


ACTOR = Actor(role="clinician", user="u1", organization="org-a")
BASIS = AccessBasis(BasisKind.CONSENT, "consent-permit", ref="cons-1")


def _grouped_log(repo: Repository) -> AuditService:
    """test_log's twelve-entry log (checkpoints at 8 and 12), appended in groups."""
    service = AuditService(repo, clock=lambda: NOW, origin="https://hie.test/fhir")
    made = [AuditEntry(recorded=NOW + i, action="read", actor=ACTOR, basis=BASIS,
                       patients=(f"p{i % 3}",), resources=(f"Observation/o{i}",))
            for i in range(12)]  # fmt: skip
    _append_groups(_appender(service), [made[:3], made[3:8]])
    service.checkpoint()
    _append_groups(_appender(service), [made[8:]])
    service.checkpoint()
    return service


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("_edit", {"entry-edited", "checkpoint-root-mismatch"}),
        ("_respell", {"entry-malformed", "entry-edited"}),
        ("_delete", {"index-gap", "entry-deleted", "checkpoint-root-mismatch"}),
        ("_delete_tail", {"entry-deleted", "checkpoint-beyond-log"}),
        ("_insert", {"entry-inserted", "checkpoint-root-mismatch"}),
        ("_reorder", {"entry-reordered", "checkpoint-root-mismatch"}),
        ("_rewrite_tree", {"checkpoint-root-mismatch"}),
        ("_rewrite_checkpoint", {"checkpoint-bad-signature"}),
    ],
)  # fmt: skip
def test_tampering_with_grouped_entries_is_detected(
    pg_repo: Repository, tamper: str, expected: set[str]
) -> None:
    import test_log  # the same edits as on a log appended entry by entry

    service = _grouped_log(pg_repo)
    assert service.verify().ok
    getattr(test_log, tamper)(pg_repo)
    report = service.verify()
    assert not report.ok
    assert expected <= set(report.codes()), report.codes()


def test_appenders_and_sequencers_of_several_workers_keep_one_tree(
    pg_repo: Repository, postgres_url: str
) -> None:
    """Two workers' appenders (each its own connection) and a sequencer at the same time:
    every entry gets exactly one position and the tree verifies."""
    service = AuditService(pg_repo, clock=lambda: NOW)
    other = open_repository(postgres_url)
    try:
        appenders = [_appender(service), _appender(AuditService(other, clock=lambda: NOW))]

        async def worker(w: int) -> None:
            try:
                for g in range(25):
                    await appenders[w].append([_entry(10_000 * w + 10 * g + k)
                                               for k in range(g % 5 + 1)])  # fmt: skip
                    with pg_repo.transaction() as tx:  # blocks this loop: others interleave
                        service.record(tx, _entry(10_000 * w + 10 * g + 9))
            finally:
                await appenders[w].close()

        async def sequencer(stop: asyncio.Event) -> None:
            while not stop.is_set():
                await asyncio.to_thread(AuditService(other).sequence, 3)

        async def run() -> None:
            stop = asyncio.Event()
            seq = asyncio.create_task(sequencer(stop))
            await asyncio.gather(worker(0), worker(1))
            stop.set()
            await seq

        asyncio.run(run())
    finally:
        other.close()
    service.checkpoint()
    total = 2 * (sum(g % 5 + 1 for g in range(25)) + 25)
    assert service.size() == total
    idxs = sorted(int(r[0]) for r in pg_repo.query("SELECT idx FROM audit_entries"))
    assert idxs == list(range(total))
    assert service.verify().ok
    _assert_nodes_recomputed(pg_repo)


def test_a_failed_group_stores_nothing_and_the_next_one_succeeds(
    pg_repo: Repository, postgres_url: str
) -> None:
    service = AuditService(pg_repo, clock=lambda: NOW)
    appender = _appender(service)

    async def run() -> None:
        try:
            await appender.append([_entry(1), _entry(2)])
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                # The entry rows insert, their patients cannot: the whole group goes.
                admin.execute("ALTER TABLE audit_entry_patients RENAME TO away")
                try:
                    with pytest.raises(psycopg.Error):
                        await appender.append([_entry(3), _entry(4)])
                finally:
                    admin.execute("ALTER TABLE away RENAME TO audit_entry_patients")
            await appender.append([_entry(5)])
        finally:
            await appender.close()

    asyncio.run(run())
    assert [parse_entry(bytes(r[2])).request_id for r in _rows(pg_repo)] == ["r1", "r2", "r5"]
    assert [int(r[1]) for r in _rows(pg_repo)] == [0, 1, 2]
    assert service.verify().ok


@pytest.mark.parametrize("catch_up", [2, 4096])
def test_an_appender_far_behind_reads_the_frontier_again(
    pg_repo: Repository, monkeypatch: pytest.MonkeyPatch, catch_up: int
) -> None:
    """An appender continues from the frontier of its last group plus the leaves appended
    since; past ``_CATCH_UP`` of them it reads the frontier instead. Either way the tree
    is the one recording-then-sequencing builds."""
    import huitong.audit.pg_appends as pg_appends

    monkeypatch.setattr(pg_appends, "_CATCH_UP", catch_up)
    service = AuditService(pg_repo, clock=lambda: NOW)
    a, b = _appender(service), _appender(service)

    async def run() -> None:
        try:
            await a.append([_entry(0), _entry(1), _entry(2)])
            for g in range(3):  # another worker: 3, then 2 groups of 2 leaves since a's
                await b.append([_entry(10 + 2 * g), _entry(11 + 2 * g)])
            await a.append([_entry(20)])
            await b.append([_entry(21)])
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())
    assert [int(r[1]) for r in _rows(pg_repo)] == list(range(11))
    report = service.verify()
    assert report.ok and report.size == 11, report.codes()
    _assert_nodes_recomputed(pg_repo)
