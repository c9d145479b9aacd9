"""Entries appended on their own (reads, sign-ins) are group-committed: concurrent callers
share transactions, each returns only once its own entry is stored, and a failed commit is
raised to every caller of the group (so none of them answers unaudited)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any

import pytest
from audit_helpers import BASE, StepClock

from huitong.audit import AccessBasis, Actor, BasisKind
from huitong.audit.service import AuditService
from huitong.store import Repository

ACTOR = Actor(role="clinician", user="u1", organization="org-a")
BASIS = AccessBasis(BasisKind.ROLE, "clinician-own-organization")


class CountingRepo:
    """The real repository, counting the transactions opened (and failing on demand)."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self.transactions = 0
        self.fail = False
        self.delay = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)

    @contextmanager
    def transaction(self) -> Any:
        self.transactions += 1
        if self.fail:
            raise RuntimeError("database away")
        with self._repo.transaction() as tx:
            time.sleep(self.delay)  # a slow disk: others arrive while this one commits
            yield tx


def _record_concurrently(service: AuditService, n: int) -> tuple[list[int], list[BaseException]]:
    seqs: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def one(i: int) -> None:
        start.wait()
        try:
            seqs.append(service.record_event("read", actor=ACTOR, basis=BASIS,
                                             patients=[f"p{i}"], resources=[f"Patient/p{i}"]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seqs, errors


def test_concurrent_entries_share_commits_and_all_land(repo: Repository) -> None:
    counting = CountingRepo(repo)
    counting.delay = 0.2
    service = AuditService(counting, clock=StepClock(), origin=BASE)  # type: ignore[arg-type]
    seqs, errors = _record_concurrently(service, 40)
    assert errors == []
    stored = {int(r[0]) for r in repo.query("SELECT seq FROM audit_entries")}
    assert sorted(seqs) == sorted(stored) and len(stored) == 40
    patients = {r[0] for r in repo.query("SELECT patient_id FROM audit_entry_patients")}
    assert patients == {f"p{i}" for i in range(40)}
    # 40 entries, a handful of commits: those waiting behind a commit go in together
    assert counting.transactions <= 5
    # the grouped entries are ordinary log entries: sequenced and under a signed head
    head = service.checkpoint()
    assert head.checkpoint.size == 40
    assert service.verify().ok


@pytest.mark.parametrize("n", [1, 12])
def test_a_failed_group_commit_is_raised_to_every_caller(repo: Repository, n: int) -> None:
    counting = CountingRepo(repo)
    counting.fail = True
    service = AuditService(counting, clock=StepClock(), origin=BASE)  # type: ignore[arg-type]
    seqs, errors = _record_concurrently(service, n)
    assert seqs == [] and len(errors) == n
    assert all(isinstance(e, RuntimeError) for e in errors)
    # and the next caller is not stuck behind the failed group
    counting.fail = False
    assert service.record_event("read", actor=ACTOR, basis=BASIS) >= 0
