"""Proof verification refuses every mangled proof, and says why."""

from __future__ import annotations

import pytest

from huitong.audit import (
    EMPTY_ROOT,
    MemoryNodeStore,
    MerkleLog,
    leaf_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

N = 37


@pytest.fixture(scope="module")
def log() -> MerkleLog:
    log = MerkleLog(MemoryNodeStore())
    for i in range(N):
        log.append(f"entry-{i}".encode())
    return log


def leaf(i: int) -> bytes:
    return leaf_hash(f"entry-{i}".encode())


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_every_mangled_inclusion_proof_fails(log: MerkleLog) -> None:
    for n in range(2, N + 1):
        root = log.root(n)
        for m in range(n):
            proof = log.inclusion_proof(m, n)
            assert verify_inclusion(leaf(m), m, n, proof, root)
            assert verify_inclusion(leaf(m), m, n, proof[:-1], root).code == "proof-too-short"
            longer = [*proof, EMPTY_ROOT]
            assert verify_inclusion(leaf(m), m, n, longer, root).code == "proof-too-long"
            for k in range(len(proof)):
                bad = [*proof[:k], flip(proof[k]), *proof[k + 1 :]]
                assert verify_inclusion(leaf(m), m, n, bad, root).code == "root-mismatch"
            other = (m + 1) % n
            assert not verify_inclusion(leaf(other), m, n, proof, root)
            assert not verify_inclusion(leaf(m), other, n, proof, root)
            assert not verify_inclusion(leaf(m), m, n, proof, log.root(n - 1))


def test_every_mangled_consistency_proof_fails(log: MerkleLog) -> None:
    for n in range(2, N + 1):
        for m in range(1, n):
            r1, r2 = log.root(m), log.root(n)
            proof = log.consistency_proof(m, n)
            assert verify_consistency(m, n, r1, r2, proof)
            assert not verify_consistency(m, n, r1, r2, proof[:-1])
            assert not verify_consistency(m, n, r1, r2, [*proof, EMPTY_ROOT])
            for k in range(len(proof)):
                bad = [*proof[:k], flip(proof[k]), *proof[k + 1 :]]
                assert verify_consistency(m, n, r1, r2, bad).code == "not-consistent"
            assert verify_consistency(m, n, flip(r1), r2, proof).code == "not-consistent"
            assert verify_consistency(m, n, r1, flip(r2), proof).code == "not-consistent"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((5, 3), "sizes-out-of-order"),
        ((-1, 3), "sizes-out-of-order"),
    ],
)
def test_consistency_size_order(log: MerkleLog, args: tuple[int, int], code: str) -> None:
    first, second = args
    assert verify_consistency(first, second, EMPTY_ROOT, EMPTY_ROOT, []).code == code


def test_degenerate_consistency_cases(log: MerkleLog) -> None:
    r4, r8 = log.root(4), log.root(8)
    assert verify_consistency(4, 4, r4, r4, [])
    assert verify_consistency(4, 4, r4, r8, []).code == "not-consistent"
    assert verify_consistency(4, 4, r4, r4, [r4]).code == "proof-too-long"
    assert verify_consistency(0, 8, EMPTY_ROOT, r8, [])
    assert verify_consistency(0, 8, r4, r8, []).code == "not-consistent"
    assert verify_consistency(4, 8, r4, r8, []).code == "proof-too-short"


def test_malformed_input_is_a_verdict_not_an_exception(log: MerkleLog) -> None:
    root = log.root(8)
    proof = log.inclusion_proof(3, 8)
    assert verify_inclusion(leaf(3), 8, 8, proof, root).code == "index-out-of-range"
    assert verify_inclusion(leaf(3), -1, 8, proof, root).code == "index-out-of-range"
    assert verify_inclusion(leaf(3)[:31], 3, 8, proof, root).code == "bad-hash"
    assert verify_inclusion(leaf(3), 3, 8, proof, root[:31]).code == "bad-hash"
    assert verify_inclusion(leaf(3), 3, 8, [proof[0][:5], *proof[1:]], root).code == "bad-hash"
    assert verify_consistency(3, 8, root[:3], root, [root]).code == "bad-hash"
    got = root_from_inclusion_proof(leaf(3), 3, 8, proof)
    assert got == root
    failed = verify_inclusion(leaf(3), 3, 8, proof[:1], root)
    assert not failed and failed.en and failed.zh
