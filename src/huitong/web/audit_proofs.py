"""The audit log as the pages show it: rows for "who accessed my record" and the auditor's
search, each entry's inclusion proof checked on the server, and pasted proofs checked.

A proof is checked the way any RFC 9162 client would: the entry's leaf hash, its index and
the audit path must lead to the root of the latest *signed* checkpoint, and that checkpoint's
Ed25519 signature must verify with the log's public key
(:func:`huitong.audit.proofs.verify_inclusion`, :func:`huitong.audit.checkpoint.verify_checkpoint`).
An entry not yet covered by a checkpoint gets a fresh one (``AuditService.checkpoint`` signs a
new tree head only when the log grew), as the audit API does when asked for a proof.

Reading the log is itself audited (``audit-read``), like ``/api/audit/entries``. A patient
sees their own patient ids only; the exact entry bytes go into a patient's proof document
only when the entry is about them alone (the bytes would name the others).

All functions are synchronous (database work): call them from a worker thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.access.principal import Principal, Role
from huitong.audit.checkpoint import SignedCheckpoint
from huitong.audit.entry import AccessBasis, BasisKind
from huitong.audit.hashing import leaf_hash
from huitong.audit.proofs import verify_inclusion
from huitong.audit.verdict import Verdict
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository

__all__ = [
    "AccessRow",
    "ProofCheck",
    "access_rows",
    "check_entry",
    "check_pasted_proof",
    "current_checkpoint",
    "proof_document",
    "search_rows",
]

_MAX_FETCH = 200
# A page of search results is at most this many entries; the time filter's upper bound is
# applied to at most this many pages (newest first) so a search stays cheap.
_UNTIL_PAGES = 10


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """Whether an entry's inclusion proof verifies against the signed checkpoint of
    ``size`` entries: ``ok`` None means it is not in any signed checkpoint yet."""

    ok: bool | None
    code: str
    en: str
    zh: str
    size: int | None = None

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


_PENDING = ProofCheck(None, "pending", "Not yet in a signed checkpoint.",
                      "尚未纳入已签名的检查点。")  # fmt: skip


def _failed(verdict: Verdict, size: int | None) -> ProofCheck:
    return ProofCheck(False, verdict.code or "failed", verdict.en or "", verdict.zh or "", size)


def current_checkpoint(service: Any, needed_index: int | None) -> tuple[SignedCheckpoint | None,
                                                                          Verdict]:  # fmt: skip
    """The latest signed checkpoint — a fresh one when it does not yet cover
    ``needed_index`` — and whether its signature verifies with the log's key."""
    latest: SignedCheckpoint | None = service.latest_checkpoint()
    if needed_index is not None and (latest is None or latest.checkpoint.size <= needed_index):
        latest = service.checkpoint()
    if latest is None:
        return None, Verdict.passed()
    return latest, service.checkpoint_verdict(latest)  # with the key it names


def check_entry(service: Any, index: int | None, data: bytes,
                checkpoint: SignedCheckpoint | None, signature: Verdict) -> ProofCheck:  # fmt: skip
    """``data`` (entry ``index``) against ``checkpoint`` (whose signature check is
    ``signature``)."""
    if index is None or checkpoint is None or index >= checkpoint.checkpoint.size:
        return _PENDING
    size = checkpoint.checkpoint.size
    if not signature:
        return _failed(signature, size)
    proof = service.inclusion_proof(index, size)
    verdict = verify_inclusion(leaf_hash(data), index, size, proof, checkpoint.checkpoint.root)
    if not verdict:
        return _failed(verdict, size)
    return ProofCheck(
        True, "verified", f"Verified: entry {index} is in the signed log of {size} entries.",
        f"已验证：第 {index} 条记录包含在已签名的 {size} 条日志中。", size,
    )  # fmt: skip


class _Names:
    """Display names of the people and organizations in entries (directory data and
    account names, looked up once per page)."""

    def __init__(self, repo: Repository, accounts: Any) -> None:
        self.repo = repo
        self.accounts = accounts
        self._cache: dict[str, str] = {}

    def _resource(self, rtype: str, rid: str) -> str:
        key = f"{rtype}/{rid}"
        if key not in self._cache:
            name = ""
            try:
                resource = self.repo.read(rtype, rid).resource
                raw = resource.get("name")
                if isinstance(raw, str):
                    name = raw
                elif isinstance(raw, list) and raw and isinstance(raw[0], dict):
                    n = raw[0]
                    name = n.get("text") or "".join([n.get("family", ""),
                                                     *n.get("given", [])])  # fmt: skip
            except FhirError:
                name = ""
            self._cache[key] = name
        return self._cache[key]

    def organization(self, rid: str | None) -> str:
        return self._resource("Organization", rid) or rid or "" if rid else ""

    def person(self, user: str | None, practitioner: str | None) -> str:
        if practitioner:
            name = self._resource("Practitioner", practitioner)
            if name:
                return name
        if user and self.accounts is not None:
            key = f"user/{user}"
            if key not in self._cache:
                found = self.accounts.get(user)
                self._cache[key] = (found.display_name or found.username) if found else ""
            return self._cache[key]
        return ""


@dataclass(frozen=True, slots=True)
class AccessRow:
    """One audit entry as a page lists it."""

    seq: int
    index: int | None
    recorded: int
    action: str
    outcome: str
    role: str
    person: str
    organization: str
    purpose: str
    basis: str  # role | consent | break-glass | share-code | referral | scope | denied
    basis_code: str
    basis_ref: str | None
    justification: str | None
    until: int | None
    proof: ProofCheck
    own_only: bool  # about the reader's own records alone (its bytes may be shown)
    user: str | None = None  # auditors only
    patients: tuple[str, ...] = ()

    @property
    def break_glass(self) -> bool:
        return self.basis == BasisKind.BREAK_GLASS.value

    @property
    def basis_key(self) -> str:
        """The catalogue key that says why in words: the rule's own when it has one."""
        if self.basis_code in BASIS_CODES:
            return f"audit.code.{self.basis_code}"
        return f"audit.basis.{self.basis}"


# Access rules with their own plain-language text (``audit.code.*`` in the catalogue); the
# others are told by their kind (``audit.basis.*``).
BASIS_CODES = frozenset({
    "clinician-care-relationship", "clinician-own-organization", "clinician-referral",
    "patient-own-record", "patient-own-access-log", "patient-manages-consent",
    "auditor-audit-log", "authentication-off", "system-scope",
})  # fmt: skip


def _row(stored: Any, names: _Names, proof: ProofCheck, own: frozenset[str] | None) -> AccessRow:
    e = stored.entry
    patients = tuple(e.patients) if own is None else tuple(sorted(set(e.patients) & own))
    # a patient sees why *their* record was reached (the consent, share code… that
    # admitted them), not another patient's ground in the same search
    a, b = e.actor, e.basis_for(patients[0]) if own is not None and patients else e.basis
    return AccessRow(
        stored.seq, stored.index, e.recorded, e.action, e.outcome.value, a.role,
        names.person(a.user, a.practitioner), names.organization(a.organization), e.purpose,
        b.kind.value, b.code, b.ref, b.justification, b.until, proof,
        own is not None and bool(e.patients) and set(e.patients) <= own,
        a.user if own is None else None, patients,
    )  # fmt: skip


def _audit_read(service: Any, principal: Principal | None, address: str | None,
                patients: Sequence[str], action: str = "audit-read") -> None:  # fmt: skip
    from huitong.audit.recording import actor_of

    code = ("patient-own-access-log" if principal is not None and principal.role is Role.PATIENT
            else "auditor-audit-log")  # fmt: skip
    service.record_event(action, actor=actor_of(principal, address),
                         basis=AccessBasis(BasisKind.ROLE, code), patients=tuple(patients),
                         purpose="HOPERAT")  # fmt: skip


def _checked_rows(service: Any, found: list[Any], names: _Names,
                  own: frozenset[str] | None) -> tuple[list[AccessRow], SignedCheckpoint | None]:
    indexes = [s.index for s in found if s.index is not None]
    checkpoint, signature = current_checkpoint(service, max(indexes) if indexes else None)
    rows = [_row(s, names, check_entry(service, s.index, s.data, checkpoint, signature), own)
            for s in found]  # fmt: skip
    return rows, checkpoint


def access_rows(
    service: Any, repo: Repository, accounts: Any, principal: Principal, lang: str, *,
    include_own: bool = False, before_seq: int | None = None, count: int = 50,
    address: str | None = None,
) -> tuple[list[AccessRow], int | None, SignedCheckpoint | None]:  # fmt: skip
    """Who accessed the patient's records, newest first: at most ``count`` rows, the
    ``before`` cursor of the next page (None: no more) and the checkpoint the proofs were
    checked against. The patient's own actions (reading their record, this page) are left
    out unless ``include_own``."""
    own = principal.patient_ids
    service.sequence_all()
    fetch = min(_MAX_FETCH, count * 3)
    found = service.accesses_of(sorted(own), count=fetch, before_seq=before_seq)
    kept = [s for s in found if include_own or not principal.user_id
            or s.entry.actor.user != principal.user_id][:count]  # fmt: skip
    more = None
    if kept and (len(found) == fetch or len(kept) == count):
        more = kept[-1].seq
    elif not kept and len(found) == fetch:
        more = found[-1].seq
    rows, checkpoint = _checked_rows(service, kept, _Names(repo, accounts), own)
    _audit_read(service, principal, address, sorted(own))
    return rows, more, checkpoint


def search_rows(
    service: Any, repo: Repository, accounts: Any, principal: Principal | None, *,
    action: str | None, user: str | None, patient: str | None, since: int | None,
    until: int | None, before_seq: int | None, count: int, address: str | None = None,
) -> tuple[list[AccessRow], int | None, SignedCheckpoint | None]:  # fmt: skip
    """The auditor's search over the whole log (newest first), same shape as
    :func:`access_rows`. ``until`` (exclusive, µs) is applied over at most a few pages."""
    service.sequence_all()
    kept: list[Any] = []
    cursor = before_seq
    exhausted = False
    for _ in range(_UNTIL_PAGES if until is not None else 1):
        page = service.entries(patient_ids=[patient] if patient else None, actor_user=user,
                               action=action, since=since, before_seq=cursor,
                               count=count)  # fmt: skip
        kept += [s for s in page if until is None or s.entry.recorded < until]
        if len(page) < count:
            exhausted = True
            break
        cursor = page[-1].seq
        if len(kept) >= count:
            break
    kept = kept[:count]
    more = None if exhausted and len(kept) < count else (kept[-1].seq if kept else cursor)
    rows, checkpoint = _checked_rows(service, kept, _Names(repo, accounts), None)
    _audit_read(service, principal, address, ())
    return rows, more, checkpoint


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def proof_document(service: Any, index: int, principal: Principal | None,
                   address: str | None = None, *, action: str = "audit-read",
                   ) -> dict[str, Any]:  # fmt: skip
    """One entry's proof as JSON: the entry (as the audit API shows it to this reader), its
    leaf hash, the audit path to the latest signed checkpoint, the checkpoint text and the
    public key — everything a third party needs to check it — and the server's own verdict.
    A patient gets entries about their records only (NOT_FOUND otherwise), with the exact
    bytes only when the entry is about them alone. Recorded as ``action``: ``export`` when
    the document is handed out as a file to keep."""
    from huitong.server.audit_api import entry_view

    own = principal.patient_ids if principal is not None and principal.role is Role.PATIENT \
        else None  # fmt: skip
    service.sequence_all()
    try:
        stored = service.entry_at(index)
    except FhirError as err:
        if err.category is Category.NOT_FOUND:
            raise FhirError(Category.NOT_FOUND,
                            f"No audit entry #{index} / 没有第 {index} 条审计记录") from None
        raise
    if own is not None and not set(stored.entry.patients) & own:
        raise FhirError(Category.NOT_FOUND, f"No audit entry #{index} / 没有第 {index} 条审计记录")
    checkpoint, signature = current_checkpoint(service, index)
    assert checkpoint is not None  # current_checkpoint signs one covering ``index``
    size = checkpoint.checkpoint.size
    proof = service.inclusion_proof(index, size)
    check = check_entry(service, index, stored.data, checkpoint, signature)
    document: dict[str, Any] = {
        "entry": entry_view(stored, own),
        "index": index,
        "leafHash": _b64(leaf_hash(stored.data)),
        "size": size,
        "root": _b64(checkpoint.checkpoint.root),
        "inclusionProof": [_b64(h) for h in proof],
        "checkpoint": checkpoint.to_text(),
        "publicKey": service.public_key_pem(checkpoint.key_id),
        "verified": bool(check.ok),
        "verdict": {"code": check.code, "en": check.en, "zh": check.zh},
        "algorithm": "RFC 9162 §2.1.3.2 inclusion proof; SHA-256 leaf hash 0x00 || bytes; "
                     "Ed25519 checkpoint signature",
    }  # fmt: skip
    if own is None or set(stored.entry.patients) <= own:
        document["bytes"] = _b64(stored.data)
    _audit_read(service, principal, address,
                sorted(set(stored.entry.patients) & own) if own is not None else (),
                action)  # fmt: skip
    return document


@dataclass(frozen=True, slots=True)
class PastedCheck:
    ok: bool
    en: str
    zh: str
    index: int | None = None
    size: int | None = None

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


def _bad(en: str, zh: str) -> PastedCheck:
    return PastedCheck(False, en, zh)


def _hashes(values: Any) -> list[bytes] | None:
    if not isinstance(values, list):
        return None
    try:
        return [base64.b64decode(v, validate=True) for v in values if isinstance(v, str)] \
            if all(isinstance(v, str) for v in values) else None  # fmt: skip
    except (binascii.Error, ValueError):
        return None


def check_pasted_proof(service: Any, text: str) -> PastedCheck:
    """Check a proof document someone brings (as ``/api/audit/entries/{i}`` or the portal's
    proof link give it): the leaf (``bytes`` or ``leafHash``), ``index``, ``size``,
    ``inclusionProof`` and ``root`` must agree (RFC 9162), and that root must be the one this
    log had at ``size`` — the signed checkpoint of that size when there is one."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _bad("Not JSON: paste the proof document as the API gives it.",
                    "不是 JSON：请粘贴接口给出的证明文档。")  # fmt: skip
    if not isinstance(doc, dict):
        return _bad("The proof document must be a JSON object.", "证明文档须为 JSON 对象。")
    index = doc.get("index", (doc.get("entry") or {}).get("index")
                    if isinstance(doc.get("entry"), dict) else None)  # fmt: skip
    size = doc.get("size")
    if not isinstance(index, int) or not isinstance(size, int) or isinstance(index, bool) \
            or isinstance(size, bool) or index < 0 or size <= 0:  # fmt: skip
        return _bad("'index' and 'size' must be whole numbers (size ≥ 1).",
                    "“index”与“size”须为整数（size ≥ 1）。")  # fmt: skip
    try:
        if isinstance(doc.get("bytes"), str):
            leaf = leaf_hash(base64.b64decode(doc["bytes"], validate=True))
        elif isinstance(doc.get("leafHash"), str):
            leaf = base64.b64decode(doc["leafHash"], validate=True)
        else:
            return _bad("The document has neither 'bytes' nor 'leafHash'.",
                        "文档中既没有“bytes”也没有“leafHash”。")  # fmt: skip
        root = base64.b64decode(str(doc.get("root", "")), validate=True)
    except (binascii.Error, ValueError):
        return _bad("A hash is not valid base64.", "有哈希值不是有效的 base64。")
    proof = _hashes(doc.get("inclusionProof"))
    if proof is None:
        return _bad("'inclusionProof' must be a list of base64 hashes.",
                    "“inclusionProof”须为 base64 哈希列表。")  # fmt: skip
    verdict = verify_inclusion(leaf, index, size, proof, root)
    if not verdict:
        return PastedCheck(False, verdict.en or "", verdict.zh or "", index, size)
    service.sequence_all()
    if size > service.size():
        return PastedCheck(False, f"This log has fewer than {size} entries.",
                           f"本日志的记录少于 {size} 条。", index, size)  # fmt: skip
    if service.root(size) != root:
        return PastedCheck(False, f"The proof is consistent, but its root is not this log's "
                           f"root at size {size}.",
                           f"证明本身自洽，但其根哈希不是本日志在大小 {size} 时的根哈希。",
                           index, size)  # fmt: skip
    signed = next((c for c in service.checkpoints() if c.checkpoint.size == size), None)
    if signed is not None and signed.checkpoint.root == root \
            and service.checkpoint_verdict(signed):  # fmt: skip
        return PastedCheck(True, f"Verified: entry {index} is in this log's signed checkpoint "
                           f"of {size} entries.",
                           f"已验证：第 {index} 条记录包含在本日志已签名的 {size} 条检查点中。",
                           index, size)  # fmt: skip
    return PastedCheck(True, f"Verified: entry {index} is in this log's tree of {size} "
                       "entries (no signed checkpoint of that size).",
                       f"已验证：第 {index} 条记录包含在本日志大小为 {size} 的树中"
                       "（该大小没有已签名的检查点）。", index, size)  # fmt: skip
