"""Merkle tree hashing of the audit log — RFC 9162 §2.1.1 (the RFC 6962 tree, SHA-256).

https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1: a leaf hashes as ``H(0x00 || entry)``,
an interior node as ``H(0x01 || left || right)``, the empty tree as ``H()``. The distinct
prefixes keep a leaf from ever being mistaken for a node (second-preimage resistance).
"""

from __future__ import annotations

import hashlib

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "leaf_hash", "node_hash", "split_point"]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``; both children must be 32-byte hashes."""
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError(f"node children must be {HASH_SIZE}-byte hashes")
    return hashlib.sha256(_NODE + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` ≥ 2): where RFC 9162
    splits ``D[0:n]`` into its left (complete) and right subtrees."""
    if n < 2:
        raise ValueError("a tree needs at least two leaves to split")
    return 1 << ((n - 1).bit_length() - 1)
