"""Verifying a whole audit log: recompute the tree, check every signed checkpoint.

``verify_log`` is what ``huitong audit verify`` runs. From the stored entry rows it recomputes
every leaf hash and the tree head at each checkpoint's size (RFC 9162 §2.1.1), checks each
checkpoint's Ed25519 signature, and checks each checkpoint against the next with a
consistency proof (RFC 9162 §2.1.4) built from the stored node hashes. When the stored node
hashes are given it also compares them leaf by leaf with the recomputed ones, which names
each edited, deleted, inserted or reordered entry; without them (or when an attacker rewrote
them too) the signed checkpoints still bound where the log changed.

The result is a :class:`VerificationReport`: data, with every finding in English and
Simplified Chinese. Nothing is printed or raised for a tampered log.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from huitong.audit.checkpoint import SignedCheckpoint, verify_checkpoint
from huitong.audit.entry import parse_entry
from huitong.audit.frontier import Frontier
from huitong.audit.hashing import leaf_hash
from huitong.audit.log import MerkleLog
from huitong.audit.proofs import verify_consistency
from huitong.audit.storage import MemoryNodeStore, NodeReader
from huitong.audit.tree import NodeId, consistency_plan
from huitong.audit.verdict import Verdict

__all__ = ["Finding", "VerificationReport", "verify_log"]

# Past this many differing leaves the report names the range instead of each entry: sequence
# alignment is quadratic in the worst case and a wholesale rewrite needs no itemised list.
_ALIGN_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem. ``index`` is the entry position it concerns (when one does), ``size``
    the checkpoint's tree size (when it concerns a checkpoint)."""

    code: str
    en: str
    zh: str
    index: int | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """``ok`` when no finding was made. ``root`` is the recomputed head over ``size``."""

    size: int
    root: bytes
    checkpoints_checked: int
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def text(self, lang: str = "en") -> str:
        """A human summary in ``en`` or ``zh``."""
        if lang not in ("en", "zh"):
            raise ValueError("lang is 'en' or 'zh'")
        if self.ok:
            head = (
                f"Audit log verified: {self.size} entries, {self.checkpoints_checked} signed "
                f"checkpoints, root {self.root.hex()}."
                if lang == "en"
                else f"审计日志验证通过：共 {self.size} 条记录，{self.checkpoints_checked} 个"
                f"已签名检查点，根哈希 {self.root.hex()}。"
            )
            return head
        head = (
            f"Audit log verification FAILED with {len(self.findings)} problem(s):"
            if lang == "en"
            else f"审计日志验证失败，发现 {len(self.findings)} 个问题："
        )
        lines = [f"- {f.en if lang == 'en' else f.zh}" for f in self.findings]
        return "\n".join([head, *lines])


def _check_numbering(indexes: Sequence[int]) -> list[Finding]:
    out: list[Finding] = []
    expected = 0
    for pos, idx in enumerate(indexes):
        if idx == expected:
            expected += 1
        elif idx > expected:
            out.append(Finding(
                "index-gap",
                f"Entries #{expected}..#{idx - 1} are missing from the stored rows "
                f"(row {pos} is numbered #{idx}).",
                f"存储的记录中缺少第 {expected} 至第 {idx - 1} 条（第 {pos} 行的编号为 {idx}）。",
                index=expected,
            ))  # fmt: skip
            expected = idx + 1
        else:
            out.append(Finding(
                "index-out-of-order",
                f"Row {pos} is numbered #{idx}, which repeats or goes back from #{expected - 1}.",
                f"第 {pos} 行的编号为 {idx}，与前面的编号 {expected - 1} 重复或倒退。",
                index=idx,
            ))  # fmt: skip
    return out


def _align(stored: Sequence[bytes], actual: Sequence[bytes]) -> list[Finding]:
    """Name the entries that differ between the hashes recorded at append time (``stored``)
    and the hashes of the entries now present (``actual``)."""
    p = 0
    while p < min(len(stored), len(actual)) and stored[p] == actual[p]:
        p += 1
    s = 0
    while s < min(len(stored), len(actual)) - p and stored[-1 - s] == actual[-1 - s]:
        s += 1
    old = stored[p : len(stored) - s]
    new = actual[p : len(actual) - s]
    if not old and not new:
        return []
    if len(old) > _ALIGN_LIMIT or len(new) > _ALIGN_LIMIT:
        last = p + max(len(old), len(new)) - 1
        return [Finding(
            "entries-differ",
            f"Entries #{p}..#{last} no longer match the hashes recorded when they were logged.",
            f"第 {p} 至第 {last} 条记录与记录时保存的哈希不再一致。",
            index=p,
        )]  # fmt: skip
    removed: dict[bytes, int] = {}
    added: dict[bytes, int] = {}
    replaced: list[tuple[int, int]] = []  # (old position, new position) pairs
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        for i in range(i1, i2):
            removed.setdefault(old[i], p + i)
        for j in range(j1, j2):
            added.setdefault(new[j], p + j)
        if tag == "replace":
            replaced.extend((p + i1 + k, p + j1 + k) for k in range(min(i2 - i1, j2 - j1)))
    findings: list[Finding] = []
    moved = {h for h in added if h in removed}
    for h in sorted(moved, key=lambda h: added[h]):
        findings.append(Finding(
            "entry-reordered",
            f"The entry now at position #{added[h]} was logged at position #{removed[h]}: "
            "entries were reordered.",
            f"当前位于第 {added[h]} 位的记录原本记录在第 {removed[h]} 位：记录顺序被调换。",
            index=added[h],
        ))  # fmt: skip
    edited_old: set[int] = set()
    edited_new: set[int] = set()
    for old_pos, new_pos in replaced:
        if stored[old_pos] in moved or actual[new_pos] in moved:
            continue
        edited_old.add(old_pos)
        edited_new.add(new_pos)
        findings.append(Finding(
            "entry-edited",
            f"Entry #{new_pos} was altered after it was logged: its content no longer matches "
            "the hash recorded for it.",
            f"第 {new_pos} 条记录在写入后被修改：其内容与记录时保存的哈希不符。",
            index=new_pos,
        ))  # fmt: skip
    for h, pos in sorted(removed.items(), key=lambda kv: kv[1]):
        if h not in moved and pos not in edited_old:
            findings.append(Finding(
                "entry-deleted",
                f"Entry #{pos} was deleted.",
                f"第 {pos} 条记录被删除。",
                index=pos,
            ))  # fmt: skip
    for h, pos in sorted(added.items(), key=lambda kv: kv[1]):
        if h not in moved and pos not in edited_new:
            findings.append(Finding(
                "entry-inserted",
                f"The entry at position #{pos} was inserted: the log never recorded it.",
                f"第 {pos} 位的记录是被插入的：日志从未记录过它。",
                index=pos,
            ))  # fmt: skip
    return sorted(findings, key=lambda f: (f.index or 0, f.code))


def _stored_leaves(store: NodeReader, count: int) -> list[bytes]:
    ids = [NodeId(0, i) for i in range(count)]
    got = store.get_nodes(ids)
    return [got[i] for i in ids]


Keys = Ed25519PublicKey | Mapping[str, Ed25519PublicKey]


def _verify_signed(cp: SignedCheckpoint, keys: Keys) -> Verdict:
    """``cp`` against the key it names (one key, or keys by id: a rotated log has several)."""
    if isinstance(keys, Ed25519PublicKey):
        return verify_checkpoint(cp, keys)
    key = keys.get(cp.key_id)
    if key is None:
        return Verdict.failed(
            "unknown-key",
            f"Checkpoint of size {cp.checkpoint.size} names key {cp.key_id}, which is not "
            "among the keys trusted.",
            f"大小为 {cp.checkpoint.size} 的检查点声明的密钥 {cp.key_id} 不在受信任的密钥之中。",
        )
    return verify_checkpoint(cp, key)


def _check_checkpoints(
    checkpoints: Sequence[SignedCheckpoint],
    public_key: Keys,
    origin: str | None,
    roots: dict[int, bytes],
    size: int,
    proof_store: NodeReader,
) -> list[Finding]:
    out: list[Finding] = []
    good_below = 0  # the largest size whose signed root the entries reproduce
    for cp_signed in checkpoints:
        cp = cp_signed.checkpoint
        verdict = _verify_signed(cp_signed, public_key)
        if not verdict:
            out.append(Finding("checkpoint-" + verdict.code, verdict.en, verdict.zh, size=cp.size))
            continue
        if origin is not None and cp.origin != origin:
            out.append(Finding(
                "checkpoint-wrong-origin",
                f"The checkpoint of size {cp.size} belongs to log {cp.origin!r}, not {origin!r}.",
                f"大小为 {cp.size} 的检查点属于日志 {cp.origin!r}，而不是 {origin!r}。",
                size=cp.size,
            ))  # fmt: skip
        if cp.size > size:
            out.append(Finding(
                "checkpoint-beyond-log",
                f"A signed checkpoint covers {cp.size} entries but only {size} are stored: "
                f"entries from #{size} on were deleted.",
                f"已签名检查点覆盖 {cp.size} 条记录，但只存储了 {size} 条："
                f"从第 {size} 条起的记录被删除。",
                size=cp.size,
            ))  # fmt: skip
        elif roots[cp.size] != cp.root:
            out.append(Finding(
                "checkpoint-root-mismatch",
                f"The entries do not reproduce the signed root of size {cp.size}: an entry "
                f"among #{good_below}..#{cp.size - 1} was altered, removed, inserted or moved.",
                f"现有记录无法重现大小为 {cp.size} 的已签名根哈希：第 {good_below} 至第 "
                f"{cp.size - 1} 条中有记录被修改、删除、插入或调换。",
                size=cp.size,
            ))  # fmt: skip
        else:
            good_below = max(good_below, cp.size)
    valid = [c for c in checkpoints if _verify_signed(c, public_key)]
    for a, b in pairwise(valid):
        ca, cb = a.checkpoint, b.checkpoint
        if cb.size < ca.size or cb.timestamp < ca.timestamp:
            out.append(Finding(
                "checkpoints-out-of-order",
                f"The checkpoint of size {cb.size} follows the one of size {ca.size} but is "
                "smaller or older: the log went backwards.",
                f"大小为 {cb.size} 的检查点排在大小为 {ca.size} 的检查点之后，却更小或更早："
                "日志发生了回退。",
                size=cb.size,
            ))  # fmt: skip
            continue
        if cb.size > proof_store.leaf_count():
            continue  # already reported as beyond the log
        plan = consistency_plan(ca.size, cb.size)
        proof = plan.assemble(proof_store.get_nodes(plan.node_ids))
        verdict = verify_consistency(ca.size, cb.size, ca.root, cb.root, proof)
        if not verdict:
            out.append(Finding(
                "checkpoints-inconsistent",
                f"Signed checkpoints of sizes {ca.size} and {cb.size} are not consistent: "
                + verdict.en,
                f"大小为 {ca.size} 与 {cb.size} 的已签名检查点不一致：" + verdict.zh,
                size=cb.size,
            ))  # fmt: skip
    return out


def verify_log(
    rows: Iterable[tuple[int, bytes]],
    checkpoints: Sequence[SignedCheckpoint],
    public_key: Keys,
    *,
    store: NodeReader | None = None,
    origin: str | None = None,
    parse_entries: bool = True,
) -> VerificationReport:
    """Verify the log whose stored entry rows are ``rows`` (``(index, canonical bytes)``,
    in index order as read from storage) against its signed ``checkpoints`` (oldest first),
    each checked against ``public_key`` — or, for a log whose key was rotated, the key of
    that id among ``public_key`` (a mapping of key ids to keys).

    ``store`` holds the node hashes recorded at append time; when given, each differing
    entry is named and consistency proofs come from it (as the proof API serves them),
    otherwise from the recomputed tree. ``parse_entries`` also checks that every row is a
    canonical audit entry. Never raises for a tampered log: every problem is a finding.
    """
    indexes: list[int] = []
    leaves: list[bytes] = []
    findings: list[Finding] = []
    wanted = {c.checkpoint.size for c in checkpoints}
    roots: dict[int, bytes] = {}
    recomputed = MemoryNodeStore()
    recomputed_log = MerkleLog(recomputed)
    if 0 in wanted:
        roots[0] = recomputed_log.root()
    for index, data in rows:
        if parse_entries:
            try:
                parse_entry(data)
            except ValueError as exc:
                pos = len(leaves)
                findings.append(Finding(
                    "entry-malformed",
                    f"The row at position #{pos} is not a canonical audit entry ({exc}).",
                    f"第 {pos} 位的行不是规范的审计记录（{exc}）。",
                    index=pos,
                ))  # fmt: skip
        indexes.append(index)
        h = leaf_hash(data)
        leaves.append(h)
        recomputed_log.append_leaf_hash(h)
        if recomputed_log.size in wanted:
            roots[recomputed_log.size] = recomputed_log.root()
    size = len(leaves)
    findings.extend(_check_numbering(indexes))
    if store is not None:
        stored_count = store.leaf_count()
        findings.extend(_align(_stored_leaves(store, stored_count), leaves))
        if stored_count:
            stored_root = Frontier.from_store(store).root()
            leaf_root = _root_of(_stored_leaves(store, stored_count))
            if stored_root != leaf_root:
                findings.append(Finding(
                    "stored-tree-inconsistent",
                    "The stored interior node hashes do not match the stored leaf hashes.",
                    "存储的内部节点哈希与存储的叶子哈希不一致。",
                ))  # fmt: skip
    findings.extend(
        _check_checkpoints(
            checkpoints, public_key, origin, roots, size, store if store is not None else recomputed
        )
    )
    return VerificationReport(size, recomputed_log.root(), len(checkpoints), tuple(findings))


def _root_of(leaves: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    for h in leaves:
        frontier.append(h)
    return frontier.root()
