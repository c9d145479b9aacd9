"""The Merkle log against the published RFC 6962 reference vectors and a brute-force tree."""

from __future__ import annotations

import hashlib

import pytest

from huitong.audit import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodeStore,
    MerkleLog,
    NodeId,
    consistency_plan,
    inclusion_plan,
    leaf_hash,
    node_hash,
    range_nodes,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference leaves and tree heads for sizes 0..8, with proofs
# (published as RFC 6962 test data by the transparency-dev project).
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (0, 1, []),
]  # fmt: skip
CT_CONSISTENCY = [
    (2, 8, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


# --- a brute-force reference written straight from the RFC's recursive definitions ---------


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def leaves_for(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.fixture(scope="module")
def ct_log() -> MerkleLog:
    log = MerkleLog(MemoryNodeStore())
    for e in CT_ENTRIES:
        log.append(e)
    return log


@pytest.fixture(scope="module")
def big() -> tuple[MerkleLog, list[bytes]]:
    leaves = leaves_for(70)
    log = MerkleLog(MemoryNodeStore())
    for h in leaves:
        log.append_leaf_hash(h)
    return log, leaves


# --- reference vectors -----------------------------------------------------------------------


def test_hash_prefixes() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert leaf_hash(b"").hex() == CT_ROOTS[1]  # H(0x00)
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != node_hash(b, a)
    with pytest.raises(ValueError):
        node_hash(a, b[:31])


@pytest.mark.parametrize("size", range(9))
def test_roots_match_reference_vectors(ct_log: MerkleLog, size: int) -> None:
    assert ct_log.root(size).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_match_reference_vectors(
    ct_log: MerkleLog, index: int, size: int, expected: list[str]
) -> None:
    proof = ct_log.inclusion_proof(index, size)
    assert [h.hex() for h in proof] == expected
    leaf = leaf_hash(CT_ENTRIES[index])
    assert verify_inclusion(leaf, index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_match_reference_vectors(
    ct_log: MerkleLog, first: int, second: int, expected: list[str]
) -> None:
    proof = ct_log.consistency_proof(first, second)
    assert [h.hex() for h in proof] == expected
    r1, r2 = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert verify_consistency(first, second, r1, r2, proof)


# --- against the brute-force reference, every size ------------------------------------------


def test_split_point() -> None:
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]
    assert split_point((1 << 40) + 1) == 1 << 40
    with pytest.raises(ValueError):
        split_point(1)


def test_range_nodes_cover_exactly() -> None:
    for start in range(0, 40):
        for end in range(start, 70):
            nodes = range_nodes(start, end)
            covered = [i for n in nodes for i in range(n.start, n.end)]
            assert covered == list(range(start, end))
            assert all(n.start % (1 << n.level) == 0 for n in nodes)
    assert range_nodes(0, 13) == (NodeId(3, 0), NodeId(2, 2), NodeId(0, 12))


def test_roots_and_proofs_equal_reference_for_all_sizes(
    big: tuple[MerkleLog, list[bytes]],
) -> None:
    log, leaves = big
    for n in range(0, len(leaves) + 1):
        root = ref_mth(leaves[:n])
        assert log.root(n) == root, n
        for m in range(n):
            proof = log.inclusion_proof(m, n)
            assert proof == ref_path(m, leaves[:n]), (m, n)
            assert verify_inclusion(leaves[m], m, n, proof, root)
        for m in range(1, n):
            proof = log.consistency_proof(m, n)
            assert proof == ref_subproof(m, leaves[:n], True), (m, n)
            assert verify_consistency(m, n, log.root(m), root, proof), (m, n)


def test_proof_sizes_are_logarithmic() -> None:
    n = 1_000_003
    assert len(inclusion_plan(12345, n).ranges) <= 20
    assert len(consistency_plan(777_777, n).ranges) <= 2 * 20
    assert len(inclusion_plan(12345, n).node_ids) <= 20 * 20


# --- the frontier and the store -----------------------------------------------------------------


def test_frontier_stores_only_completed_nodes_and_keeps_log_n_hashes() -> None:
    frontier = Frontier()
    written: list[NodeId] = []
    for i, h in enumerate(leaves_for(16)):
        done = frontier.append(h)
        written.extend(node for node, _ in done)
        assert len(frontier.hashes) == bin(i + 1).count("1")
        assert frontier.root() == ref_mth(leaves_for(i + 1))
    # 16 leaves: 16 + 8 + 4 + 2 + 1 complete nodes, each written once
    assert len(written) == len(set(written)) == 31
    assert frontier.append(leaf_hash(b"x"))[0][0] == NodeId(0, 16)


def test_log_resumes_from_a_store() -> None:
    store = MemoryNodeStore()
    first = MerkleLog(store)
    leaves = leaves_for(11)
    for h in leaves[:7]:
        first.append_leaf_hash(h)
    resumed = MerkleLog(store)
    assert resumed.size == 7 and resumed.root() == first.root()
    for h in leaves[7:]:
        resumed.append_leaf_hash(h)
    assert resumed.root() == ref_mth(leaves)
    assert Frontier.from_store(store, 5).root() == ref_mth(leaves[:5])


def test_store_is_append_only() -> None:
    store = MemoryNodeStore()
    h, g = leaf_hash(b"a"), leaf_hash(b"b")
    store.put_nodes([(NodeId(0, 0), h)])
    store.put_nodes([(NodeId(0, 0), h)])  # idempotent
    with pytest.raises(ValueError, match="another hash"):
        store.put_nodes([(NodeId(0, 0), g)])
    with pytest.raises(ValueError, match="gap"):
        store.put_nodes([(NodeId(0, 5), g)])
    with pytest.raises(KeyError):
        store.get_nodes([NodeId(0, 1)])
    with pytest.raises(KeyError):
        store.get_nodes([NodeId(3, 0)])


def test_out_of_range_requests_are_refused(ct_log: MerkleLog) -> None:
    with pytest.raises(ValueError):
        ct_log.inclusion_proof(8, 8)
    with pytest.raises(ValueError):
        ct_log.inclusion_proof(0, 9)
    with pytest.raises(ValueError):
        ct_log.consistency_proof(5, 3)
    with pytest.raises(ValueError):
        ct_log.root(9)
    assert ct_log.consistency_proof(0, 8) == [] and ct_log.consistency_proof(8, 8) == []
