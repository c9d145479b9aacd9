"""Verifying inclusion and consistency proofs — RFC 9162 §2.1.3.2 and §2.1.4.2.

The algorithms are the RFC's, step for step, so a proof Huitong issues can be checked by any
RFC 9162 / RFC 6962 verifier and vice versa. Both return a :class:`Verdict` naming why a
proof failed instead of a bare boolean; neither raises on malformed input.
"""

from __future__ import annotations

from collections.abc import Sequence

from huitong.audit.hashing import EMPTY_ROOT, HASH_SIZE, node_hash
from huitong.audit.verdict import Verdict

__all__ = ["root_from_inclusion_proof", "verify_consistency", "verify_inclusion"]


def _bad_hashes(*hashes: bytes) -> bool:
    return any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in hashes)


_BAD_HASH = Verdict.failed(
    "bad-hash", "A hash in the proof is not 32 bytes.", "证明中有哈希值长度不是 32 字节。"
)


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | Verdict:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-4), or a failing
    :class:`Verdict` when the proof's shape does not fit ``index`` and ``size``."""
    if index < 0 or index >= size:
        return Verdict.failed(
            "index-out-of-range",
            f"Leaf {index} does not exist in a tree of {size} entries.",
            f"大小为 {size} 的树中不存在第 {index} 个叶子。",
        )
    if _bad_hashes(leaf, *proof):
        return _BAD_HASH
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return Verdict.failed(
                "proof-too-long",
                "The inclusion proof has more hashes than the tree has levels.",
                "包含性证明的哈希数量多于树的层数。",
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return Verdict.failed(
            "proof-too-short",
            "The inclusion proof has fewer hashes than the tree has levels.",
            "包含性证明的哈希数量少于树的层数。",
        )
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> Verdict:
    """Does ``proof`` show that ``leaf`` (a leaf *hash*) is entry ``index`` of the tree of
    ``size`` entries whose head is ``root``? https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.2"""
    got = root_from_inclusion_proof(leaf, index, size, proof)
    if isinstance(got, Verdict):
        return got
    if _bad_hashes(root):
        return _BAD_HASH
    if got != root:
        return Verdict.failed(
            "root-mismatch",
            f"Entry {index} with this proof does not lead to the signed root of size {size}.",
            f"第 {index} 条记录按此证明算出的根哈希与大小为 {size} 的已签名根哈希不符。",
        )
    return Verdict.passed()


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> Verdict:
    """Is the tree of ``second`` entries (head ``second_root``) an append-only extension of
    the tree of ``first`` entries (head ``first_root``)?

    https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.2. The cases the RFC leaves to the
    caller are fixed here: ``first == second`` needs an empty proof and equal roots;
    ``first == 0`` needs an empty proof and the empty tree's root for ``first_root``.
    """
    if not 0 <= first <= second:
        return Verdict.failed(
            "sizes-out-of-order",
            f"A tree of {second} entries cannot extend one of {first}.",
            f"大小为 {second} 的树不可能是大小为 {first} 的树的扩展。",
        )
    if _bad_hashes(first_root, second_root, *proof):
        return _BAD_HASH
    if first == 0 or first == second:
        if proof:
            return Verdict.failed(
                "proof-too-long",
                "This consistency proof should be empty.",
                "此一致性证明应为空。",
            )
        expected = EMPTY_ROOT if first == 0 else second_root
        if first_root != expected:
            return _root_mismatch(first, second)
        return Verdict.passed()
    if not proof:
        return Verdict.failed(
            "proof-too-short", "The consistency proof is empty.", "一致性证明为空。"
        )
    path = list(proof)
    if first & (first - 1) == 0:  # a complete first tree is its own first node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return Verdict.failed(
                "proof-too-long",
                "The consistency proof has more hashes than the trees need.",
                "一致性证明的哈希数量多于所需。",
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return Verdict.failed(
            "proof-too-short",
            "The consistency proof has fewer hashes than the trees need.",
            "一致性证明的哈希数量少于所需。",
        )
    if fr != first_root or sr != second_root:
        return _root_mismatch(first, second)
    return Verdict.passed()


def _root_mismatch(first: int, second: int) -> Verdict:
    return Verdict.failed(
        "not-consistent",
        f"The log of {second} entries does not extend the log of {first} entries: "
        "earlier entries were changed, removed, inserted or reordered.",
        f"包含 {second} 条记录的日志不是包含 {first} 条记录的日志的追加扩展："
        "早先的记录被修改、删除、插入或调换了顺序。",
    )
