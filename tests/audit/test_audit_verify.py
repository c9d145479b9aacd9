"""Tamper tests: every edit, deletion, insertion or reordering of stored rows is caught and
named; checkpoints are checked for signature, origin, order and consistency."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from huitong.audit import (
    AccessBasis,
    Actor,
    AuditEntry,
    BasisKind,
    Checkpoint,
    MemoryNodeStore,
    MerkleLog,
    SignedCheckpoint,
    canonical_bytes,
    sign_checkpoint,
    verify_log,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
ORIGIN = "huitong-test"
N = 40
CHECKPOINT_SIZES = (10, 20, 32, 40)

Rows = list[tuple[int, bytes]]


def make_entry(i: int, patient: str | None = None) -> bytes:
    return canonical_bytes(
        AuditEntry(
            recorded=1_700_000_000_000_000 + i * 1000,
            action="read",
            actor=Actor(role="clinician", user=f"u{i % 3}", organization="org-1"),
            basis=AccessBasis(BasisKind.ROLE, "clinician-own-organization"),
            resource_type="Observation",
            resources=(f"Observation/o{i}",),
            patients=(patient or f"p{i % 7}",),
            request_id=f"req-{i}",
        )
    )


def build() -> tuple[Rows, MemoryNodeStore, list[SignedCheckpoint]]:
    store = MemoryNodeStore()
    log = MerkleLog(store)
    rows: Rows = []
    checkpoints = []
    for i in range(N):
        data = make_entry(i)
        rows.append((log.append(data), data))
        if log.size in CHECKPOINT_SIZES:
            cp = Checkpoint(ORIGIN, log.size, log.root(), 1000 + log.size)
            checkpoints.append(sign_checkpoint(cp, KEY))
    return rows, store, checkpoints


def test_untouched_log_verifies() -> None:
    rows, store, cps = build()
    report = verify_log(rows, cps, PUB, store=store, origin=ORIGIN)
    assert report.ok and report.findings == ()
    assert report.size == N and report.checkpoints_checked == 4
    assert report.root == cps[-1].checkpoint.root
    assert "verified: 40 entries" in report.text("en")
    assert "验证通过" in report.text("zh")


def edit(rows: Rows) -> Rows:
    out = list(rows)
    out[13] = (13, make_entry(13, patient="someone-else"))
    return out


def edit_spelling(rows: Rows) -> Rows:
    out = list(rows)
    out[13] = (13, out[13][1].replace(b'"action":"read"', b'"action": "read"'))
    return out


def delete(rows: Rows) -> Rows:
    return rows[:13] + rows[14:]


def delete_renumbered(rows: Rows) -> Rows:
    return [(i, data) for i, (_, data) in enumerate(rows[:13] + rows[14:])]


def insert_renumbered(rows: Rows) -> Rows:
    forged = [*rows[:13], (0, make_entry(999)), *rows[13:]]
    return [(i, data) for i, (_, data) in enumerate(forged)]


def insert_duplicate_index(rows: Rows) -> Rows:
    return [*rows[:14], (13, make_entry(999)), *rows[14:]]


def swap(rows: Rows) -> Rows:
    out = list(rows)
    out[13], out[17] = (13, rows[17][1]), (17, rows[13][1])
    return out


def truncate_tail(rows: Rows) -> Rows:
    return rows[:37]


def append_forged(rows: Rows) -> Rows:
    return [*rows, (N, make_entry(N))]


# Each tampering, and exactly the findings (code, entry index or checkpoint size) it causes.
CASES: list[tuple[str, Callable[[Rows], Rows], list[tuple[str, int | None]]]] = [
    ("edit", edit, [
        ("entry-edited", 13),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-root-mismatch", 40),
    ]),
    ("edit-spelling", edit_spelling, [
        ("entry-malformed", 13), ("entry-edited", 13),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-root-mismatch", 40),
    ]),
    ("delete", delete, [
        ("index-gap", 13), ("entry-deleted", 13),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-beyond-log", 40),
    ]),
    ("delete-renumbered", delete_renumbered, [
        ("entry-deleted", 13),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-beyond-log", 40),
    ]),
    ("insert-renumbered", insert_renumbered, [
        ("entry-inserted", 13),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-root-mismatch", 40),
    ]),
    ("insert-duplicate-index", insert_duplicate_index, [
        ("entry-inserted", 14), ("index-out-of-order", 13),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-root-mismatch", 40),
    ]),
    ("reorder", swap, [
        ("entry-reordered", 13), ("entry-reordered", 17),
        ("checkpoint-root-mismatch", 20), ("checkpoint-root-mismatch", 32),
        ("checkpoint-root-mismatch", 40),
    ]),
    ("truncate", truncate_tail, [
        ("entry-deleted", 37), ("entry-deleted", 38), ("entry-deleted", 39),
        ("checkpoint-beyond-log", 40),
    ]),
    ("append-forged", append_forged, [("entry-inserted", 40)]),
]  # fmt: skip


def where(report_finding: object) -> int | None:
    f = report_finding
    return f.index if f.index is not None else f.size  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "tamper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_tampering_with_rows_is_named(
    name: str, tamper: Callable[[Rows], Rows], expected: list[tuple[str, int | None]]
) -> None:
    rows, store, cps = build()
    report = verify_log(tamper(rows), cps, PUB, store=store, origin=ORIGIN)
    assert not report.ok
    assert sorted((f.code, where(f)) for f in report.findings) == sorted(expected)
    for f in report.findings:
        assert f.en and f.zh and f.en != f.zh
    assert "FAILED" in report.text("en") and "验证失败" in report.text("zh")


@pytest.mark.parametrize(("name", "tamper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rewriting_the_stored_hashes_too_is_still_caught_by_checkpoints(
    name: str, tamper: Callable[[Rows], Rows], expected: list[tuple[str, int | None]]
) -> None:
    rows, _, cps = build()
    forged = tamper(rows)
    # The attacker recomputes every node hash from the forged rows; only signatures remain.
    store = MemoryNodeStore()
    log = MerkleLog(store)
    for _, data in forged:
        log.append(data)
    report = verify_log(forged, cps, PUB, store=store, origin=ORIGIN)
    if name == "append-forged":  # after the last checkpoint: nothing signed covers it yet
        assert report.ok
        return
    assert not report.ok
    codes = set(report.codes())
    assert codes & {"checkpoint-root-mismatch", "checkpoint-beyond-log"}
    assert not codes & {"entry-edited", "entry-deleted", "entry-inserted", "entry-reordered"}


def test_root_mismatch_bounds_the_damage_by_the_last_good_checkpoint() -> None:
    rows, _, cps = build()
    report = verify_log(edit(rows), cps, PUB, origin=ORIGIN)  # no stored hashes at all
    first = next(f for f in report.findings if f.code == "checkpoint-root-mismatch")
    assert first.size == 20 and "#10..#19" in first.en and "第 10 至第 19 条" in first.zh


def test_rewritten_stored_node_hashes_are_detected() -> None:
    rows, store, cps = build()
    forged = MemoryNodeStore()
    for row in store._levels:  # copy, then corrupt one interior node
        forged._levels.append(bytearray(row))
    forged._levels[3][4 * 32] ^= 0xFF  # node [32, 40): in the frontier and a proof
    report = verify_log(rows, cps, PUB, store=forged, origin=ORIGIN)
    assert "stored-tree-inconsistent" in report.codes()
    assert "checkpoints-inconsistent" in report.codes()


def resign(cp: SignedCheckpoint, **change: object) -> SignedCheckpoint:
    return sign_checkpoint(dataclasses.replace(cp.checkpoint, **change), KEY)


def test_checkpoint_problems() -> None:
    rows, store, cps = build()
    forged_sig = dataclasses.replace(cps[1], signature=bytes(64))
    report = verify_log(rows, [cps[0], forged_sig, *cps[2:]], PUB, store=store, origin=ORIGIN)
    assert report.codes() == ["checkpoint-bad-signature"]

    report = verify_log(rows, cps, PUB, store=store, origin="another-log")
    assert report.codes() == ["checkpoint-wrong-origin"] * 4

    backwards = [cps[0], cps[2], cps[1], cps[3]]
    report = verify_log(rows, backwards, PUB, store=store, origin=ORIGIN)
    assert report.codes() == ["checkpoints-out-of-order"]

    older = [cps[0], resign(cps[1], timestamp=1)]
    assert verify_log(rows, older, PUB, store=store).codes() == ["checkpoints-out-of-order"]


def test_equivocating_signer_is_caught() -> None:
    """A validly signed checkpoint whose root is not an extension of the previous one."""
    rows, store, cps = build()
    fork = resign(cps[2], root=bytes(32))
    report = verify_log(rows, [cps[0], cps[1], fork, cps[3]], PUB, store=store, origin=ORIGIN)
    assert sorted((f.code, f.size) for f in report.findings) == [
        ("checkpoint-root-mismatch", 32),
        ("checkpoints-inconsistent", 32),
        ("checkpoints-inconsistent", 40),
    ]


def test_empty_log_and_empty_checkpoint() -> None:
    store = MemoryNodeStore()
    cp = sign_checkpoint(Checkpoint(ORIGIN, 0, MerkleLog(store).root(), 1), KEY)
    report = verify_log([], [cp], PUB, store=store)
    assert report.ok and report.size == 0
