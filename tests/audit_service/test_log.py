"""The SQL-backed log: sequencing, proofs against signed checkpoints, tamper detection on the
stored rows (edit, delete, insert, reorder, a rewritten tree), the CLI, and concurrent
writers and sequencers on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from audit_helpers import BASE, StepClock, patient
from click.testing import CliRunner

from huitong.audit import (
    AccessBasis,
    Actor,
    BasisKind,
    leaf_hash,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from huitong.audit.recording import AuditRecorder
from huitong.audit.service import AuditService
from huitong.cli import main
from huitong.store import Repository, open_repository

ACTOR = Actor(role="clinician", user="u1", organization="org-a")
BASIS = AccessBasis(BasisKind.CONSENT, "consent-permit", ref="cons-1")


def _log(repo: Repository, n: int, *, checkpoint_at: tuple[int, ...] = ()) -> AuditService:
    service = AuditService(repo, clock=StepClock(), origin=BASE)
    for i in range(n):
        service.record_event("read", actor=ACTOR, basis=BASIS, patients=[f"p{i % 3}"],
                             resources=[f"Observation/o{i}"])  # fmt: skip
        if i + 1 in checkpoint_at:
            service.checkpoint()
    service.checkpoint()
    return service


def test_sequencing_and_proofs(repo: Repository) -> None:
    service = _log(repo, 23, checkpoint_at=(7, 16))
    assert service.size() == 23 and service.unsequenced() == 0
    cps = service.checkpoints()
    assert [c.checkpoint.size for c in cps] == [7, 16, 23]
    key = service.public_key()
    for cp in cps:
        assert verify_checkpoint(cp, key)
        size, root = cp.checkpoint.size, cp.checkpoint.root
        for index in range(size):
            leaf = leaf_hash(service.entry_at(index).data)
            assert verify_inclusion(leaf, index, size, service.inclusion_proof(index, size),
                                    root)  # fmt: skip
    for a in cps:
        for b in cps:
            if a.checkpoint.size <= b.checkpoint.size:
                proof = service.consistency_proof(a.checkpoint.size, b.checkpoint.size)
                assert verify_consistency(
                    a.checkpoint.size,
                    b.checkpoint.size,
                    a.checkpoint.root,
                    b.checkpoint.root,
                    proof,
                )
    assert service.verify().ok
    # the patient view: entries touching p1, newest first
    seen = service.accesses_of(["p1"])
    assert [s.entry.resources[0] for s in seen] == [
        f"Observation/o{i}" for i in range(22, -1, -1) if i % 3 == 1
    ]


def _swap_idx(repo: Repository, a: int, b: int) -> None:
    with repo.transaction() as tx:
        tx.execute("UPDATE audit_entries SET idx = -1 WHERE idx = ?", (a,))
        tx.execute("UPDATE audit_entries SET idx = ? WHERE idx = ?", (a, b))
        tx.execute("UPDATE audit_entries SET idx = ? WHERE idx = -1", (b,))


def _edit(repo: Repository) -> None:
    with repo.transaction() as tx:
        (row,) = tx.execute("SELECT entry FROM audit_entries WHERE idx = 4")
        data = bytes(row[0]).replace(b'"cons-1"', b'"cons-9"')
        tx.execute("UPDATE audit_entries SET entry = ? WHERE idx = 4", (data,))


def _respell(repo: Repository) -> None:
    with repo.transaction() as tx:
        (row,) = tx.execute("SELECT entry FROM audit_entries WHERE idx = 4")
        tx.execute("UPDATE audit_entries SET entry = ? WHERE idx = 4",
                   (bytes(row[0]).replace(b",", b", ", 1),))  # fmt: skip


def _delete(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.execute("DELETE FROM audit_entries WHERE idx = 4")


def _delete_tail(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.execute("DELETE FROM audit_entries WHERE idx >= 9")


def _insert(repo: Repository) -> None:
    with repo.transaction() as tx:
        (row,) = tx.execute("SELECT entry, recorded FROM audit_entries WHERE idx = 4")
        forged = bytes(row[0]).replace(b'"u1"', b'"u7"')
        tx.execute("UPDATE audit_entries SET idx = -idx - 100 WHERE idx >= 4")
        tx.execute("UPDATE audit_entries SET idx = -idx - 100 + 1 WHERE idx < 0")
        tx.execute(
            "INSERT INTO audit_entries (idx, recorded, action, actor_role, outcome, entry)"
            " VALUES (4, ?, 'read', 'clinician', 'success', ?)",
            (row[1], forged),
        )


def _reorder(repo: Repository) -> None:
    _swap_idx(repo, 2, 6)


def _rewrite_tree(repo: Repository) -> None:
    """Edit an entry and its stored leaf hash: only the signed checkpoints can tell."""
    _edit(repo)
    with repo.transaction() as tx:
        (row,) = tx.execute("SELECT entry FROM audit_entries WHERE idx = 4")
        tx.execute("UPDATE audit_nodes SET hash = ? WHERE level = 0 AND idx = 4",
                   (leaf_hash(bytes(row[0])),))  # fmt: skip


def _rewrite_checkpoint(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.execute("UPDATE audit_checkpoints SET body = REPLACE(body, '\n8\n', '\n7\n') "
                   "WHERE size = 8")  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_edit, {"entry-edited", "checkpoint-root-mismatch"}),
        (_respell, {"entry-malformed", "entry-edited"}),
        (_delete, {"index-gap", "entry-deleted", "checkpoint-root-mismatch"}),
        (_delete_tail, {"entry-deleted", "checkpoint-beyond-log"}),
        (_insert, {"entry-inserted", "checkpoint-root-mismatch"}),
        (_reorder, {"entry-reordered", "checkpoint-root-mismatch"}),
        (_rewrite_tree, {"checkpoint-root-mismatch"}),
        (_rewrite_checkpoint, {"checkpoint-bad-signature"}),
    ],
)  # fmt: skip
def test_tampering_is_detected(
    repo: Repository, tamper: Callable[[Repository], None], expected: set[str]
) -> None:
    service = _log(repo, 12, checkpoint_at=(8,))
    assert service.verify().ok
    tamper(repo)
    report = service.verify()
    assert not report.ok
    assert expected <= set(report.codes()), report.codes()


def test_cli_verify_and_checkpoint(engine_url: str) -> None:
    repo = open_repository(engine_url)
    try:
        _log(repo, 5)
        runner = CliRunner(env={"HUITONG_BASE_URL": BASE})  # the log's origin
        ok = runner.invoke(main, ["audit", "verify", "--db", engine_url])
        assert ok.exit_code == 0, ok.output
        assert "Audit log verified: 5 entries" in ok.output and "审计日志验证通过" in ok.output
        AuditService(repo).record_event("login", actor=ACTOR, basis=BASIS)
        cp = runner.invoke(main, ["audit", "checkpoint", "--db", engine_url])
        assert cp.exit_code == 0 and "6 entries" in cp.output and "共 6 条" in cp.output
        _delete(repo)
        bad = runner.invoke(main, ["audit", "verify", "--db", engine_url])
        assert bad.exit_code == 1
        assert "FAILED" in bad.output and "审计日志验证失败" in bad.output
    finally:
        repo.close()


def test_concurrent_writers_and_sequencers_keep_one_tree(engine_url: str, repo: Repository) -> None:
    """Writers commit entries with their resources while two sequencers run: every entry
    gets exactly one position, the tree verifies, and no entry is lost."""
    if repo.dialect != "postgresql":
        pytest.skip("SQLite has a single writer: nothing runs concurrently")
    recorder = AuditRecorder(AuditService(repo), local_base=BASE)
    recorder.install(repo)
    writers, per_writer = 6, 25
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(per_writer):
                with repo.transaction() as tx:
                    tx.update(patient(f"w{w}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    def sequence() -> None:
        other = open_repository(engine_url)  # a second server worker
        try:
            service = AuditService(other)
            while not stop.is_set():
                service.sequence(limit=7)
        except BaseException as exc:
            errors.append(exc)
        finally:
            other.close()

    seqs = [threading.Thread(target=sequence) for _ in range(2)]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in [*seqs, *threads]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in seqs:
        t.join()
    assert not errors
    service = AuditService(repo)
    service.checkpoint()
    total = writers * per_writer
    assert service.size() == total
    idxs = sorted(int(r[0]) for r in repo.query("SELECT idx FROM audit_entries"))
    assert idxs == list(range(total))
    assert service.verify().ok
