"""The audit log in the database: entries, sequencing, signed tree heads, proofs, verification.

Storage (migration ``0007_audit``): ``audit_entries`` (one row per action: the canonical
bytes the tree hashes, a few copied fields for searching, and ``idx``, its position in the
Merkle tree once sequenced), ``audit_entry_patients`` (the patients each entry touched, for
"who accessed my record"), ``audit_nodes`` (the tree's complete subtrees,
:class:`~huitong.audit.sql.SqlNodeStore`), ``audit_checkpoints`` and ``audit_keys``.

Concurrency — an entry is appended in two steps, like Certificate Transparency's merge delay:

1. **record**: the entry row is inserted in the transaction of the action it records
   (:meth:`AuditService.record`), with ``idx`` NULL. This is one cheap insert with no shared
   state, so concurrent writers never wait for each other here, and the entry is durable
   exactly when the action is: a rolled-back write leaves no entry, a committed one always
   has its entry. Reads and sign-ins, which have no write transaction, append in their own
   (:meth:`AuditService.record_now`) before the data leaves.
2. **sequence**: :meth:`AuditService.sequence` takes the log's lock (a transaction-scoped
   advisory lock on PostgreSQL; SQLite has one writer anyway), reads the committed rows with
   no position in insertion order, gives them the next positions, and writes the tree nodes
   they complete, all in one transaction. Positions therefore follow *commit* order as the
   sequencer sees it — an uncommitted row is invisible and simply gets a later position —
   and two sequencers (several server workers) serialise on the lock, so the tree can never
   fork or skip. The server runs it right after commits in a background task (every
   fraction of a second), and the API, checkpoints and verification run it on demand.

The server's reads by id on PostgreSQL do both steps at once (audit/pg_appends.py): a group
of read entries takes the same lock, is inserted with its positions and nodes, and commits
before any of the reads is answered — the rows are those the two steps would write.

Nothing here logs an entry's content: only counts and positions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from huitong.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    key_id,
    sign_checkpoint,
    verify_checkpoint,
)
from huitong.audit.entry import AccessBasis, Actor, AuditEntry, BasisKind, Outcome, parse_entry
from huitong.audit.frontier import Frontier
from huitong.audit.hashing import leaf_hash
from huitong.audit.sql import SqlNodeStore
from huitong.audit.tree import NodeId, ProofPlan, consistency_plan, inclusion_plan, root_plan
from huitong.audit.verdict import Verdict
from huitong.audit.verify import Finding, VerificationReport, verify_log
from huitong.clock import Clock, MonotonicClock
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository, Transaction

if TYPE_CHECKING:
    from huitong.audit.pg_appends import PgGroupAppender

__all__ = ["AuditService", "LogStatus", "StoredEntry"]

log = logging.getLogger("huitong.audit")

_SEQUENCER_LOCK = "huitong-audit-sequencer"
_KEY_LOCK = "huitong-audit-key"
_KEY_RECHECK_SECONDS = 60.0  # a rotation by another process reaches this one within a minute
_BATCH = 2000  # entries per sequencing transaction
_PATIENT_CHUNK = 300
_ENTRY_CHUNK = 200  # 8 parameters each: well under either engine's limit


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One entry row: ``seq`` (insertion order), ``index`` (tree position, None until
    sequenced), the canonical ``data`` and the parsed ``entry``."""

    seq: int
    index: int | None
    data: bytes
    entry: AuditEntry


@dataclass(frozen=True, slots=True)
class LogStatus:
    size: int
    root: bytes
    unsequenced: int


def _not_found(en: str, zh: str) -> FhirError:
    return FhirError(Category.NOT_FOUND, f"{en} / {zh}")


class _Pending:
    """An entry waiting for the group commit of :meth:`AuditService.record_now`."""

    __slots__ = ("entry", "error", "event", "lead", "seq")

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.seq = -1
        self.error: BaseException | None = None
        self.lead = False
        self.event = threading.Event()

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        return self.seq


class AuditService:
    """The audit log over ``repo``. ``clock`` stamps entries and checkpoints; ``origin``
    names the log in its checkpoints (the platform's base URL); ``signing_key_file`` is a
    PEM (PKCS#8) Ed25519 private key — when empty, a key is generated on first use and kept
    in ``audit_keys`` (convenient, but then whoever can write the database could also re-sign:
    production sets a file and publishes the public key)."""

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Clock | None = None,
        origin: str = "huitong",
        signing_key_file: str = "",
    ) -> None:
        self.repo = repo
        self.clock: Clock = clock or getattr(repo, "clock", None) or MonotonicClock()
        self.origin = origin or "huitong"
        self._key_file = signing_key_file
        self._key: Ed25519PrivateKey | None = None
        self._key_checked = 0.0  # monotonic time the kept key was last compared with the table
        # group commit of entries appended on their own (see record_now)
        self._group_lock = threading.Lock()
        self._group_queue: list[_Pending] = []
        self._group_busy = False

    # -- appending -----------------------------------------------------------------
    def record(self, tx: Transaction, entry: AuditEntry) -> int:
        """Insert ``entry`` in the open transaction ``tx`` (it commits or rolls back with the
        action); returns its row number (``seq``). The tree position comes at sequencing."""
        from huitong.audit.entry import canonical_bytes

        data = canonical_bytes(entry)
        a = entry.actor
        rows = tx.execute(
            "INSERT INTO audit_entries (recorded, action, actor_role, actor_user, actor_client,"
            " actor_org, outcome, entry) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (entry.recorded, entry.action, a.role, a.user, a.client, a.organization,
             entry.outcome.value, data),
        )  # fmt: skip
        seq = int(rows[0][0])
        patients = entry.patients
        for at in range(0, len(patients), _PATIENT_CHUNK):
            chunk = patients[at : at + _PATIENT_CHUNK]
            marks = ", ".join("(?, ?, ?)" for _ in chunk)
            params: list[Any] = []
            for pid in chunk:
                params += (pid, seq, entry.recorded)
            tx.execute(
                f"INSERT INTO audit_entry_patients (patient_id, seq, recorded) VALUES {marks}",
                params,
            )
        return seq

    def record_many(self, tx: Transaction, entries: Sequence[AuditEntry]) -> list[int]:
        """As :meth:`record` for several entries in the open transaction ``tx``, in two
        statements per chunk instead of two per entry (a group commit of reads appends
        dozens at once). Returns their row numbers in the order given."""
        from huitong.audit.entry import canonical_bytes

        seqs: list[int] = []
        patient_rows: list[Any] = []
        for at in range(0, len(entries), _ENTRY_CHUNK):
            chunk = entries[at : at + _ENTRY_CHUNK]
            datas = [canonical_bytes(entry) for entry in chunk]
            params: list[Any] = []
            for entry, data in zip(chunk, datas, strict=True):
                a = entry.actor
                params += (entry.recorded, entry.action, a.role, a.user, a.client,
                           a.organization, entry.outcome.value, data)  # fmt: skip
            marks = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk)
            rows = tx.execute(
                "INSERT INTO audit_entries (recorded, action, actor_role, actor_user, "
                f"actor_client, actor_org, outcome, entry) VALUES {marks} RETURNING seq, entry",
                params,
            )
            # RETURNING promises no row order (SQLite says so outright): rows are matched
            # to entries by their bytes (identical entries are interchangeable).
            by_data: dict[bytes, list[int]] = {}
            for seq, data in rows:
                by_data.setdefault(bytes(data), []).append(int(seq))
            for entry, data in zip(chunk, datas, strict=True):
                seq = by_data[data].pop(0)
                seqs.append(seq)
                for pid in entry.patients:
                    patient_rows.append((pid, seq, entry.recorded))
        for at in range(0, len(patient_rows), _PATIENT_CHUNK):
            chunk_rows = patient_rows[at : at + _PATIENT_CHUNK]
            tx.execute(
                "INSERT INTO audit_entry_patients (patient_id, seq, recorded) VALUES "
                + ", ".join("(?, ?, ?)" for _ in chunk_rows),
                [v for row in chunk_rows for v in row],
            )
        return seqs

    def record_now(self, entry: AuditEntry) -> int:
        """Append ``entry`` in a transaction of its own (reads, sign-ins, refusals); raises
        (UNAVAILABLE…) when it cannot be stored, so the caller can refuse to answer.

        Group commit: a commit per read would cap reads at the disk's fsync rate, so entries
        that arrive while another thread is committing wait and are written together, in
        one transaction, by the next leader. Each caller still returns only once its own
        entry is committed, so no data leaves unaudited."""
        mine = _Pending(entry)
        with self._group_lock:
            self._group_queue.append(mine)
            follower = self._group_busy
            self._group_busy = True
        if follower:
            mine.event.wait()
            if not mine.lead:
                return mine.result()
        with self._group_lock:
            batch, self._group_queue = self._group_queue, []
        try:
            with self.repo.transaction() as tx:
                seqs = self.record_many(tx, [pending.entry for pending in batch])
                for pending, seq in zip(batch, seqs, strict=True):
                    pending.seq = seq
        except BaseException as exc:  # every caller of the group refuses to answer
            for pending in batch:
                pending.error = exc
        finally:
            with self._group_lock:
                if self._group_queue:  # hand over to the first who came meanwhile
                    self._group_queue[0].lead = True
                    self._group_queue[0].event.set()
                else:
                    self._group_busy = False
            for pending in batch:
                if pending is not mine:
                    pending.event.set()
        return mine.result()

    def group_appender(self) -> PgGroupAppender | None:
        """An appender that inserts and sequences groups of entries on the event loop in one
        transaction (audit/pg_appends.py), when the log is in PostgreSQL and the repository
        says where (its event-loop reader's URL); else None (use :meth:`record_many`)."""
        reads = getattr(self.repo, "async_reads", None)
        if self.repo.dialect != "postgresql" or reads is None:
            return None
        from huitong.audit.pg_appends import PgGroupAppender

        return PgGroupAppender(reads().url, lock_name=_SEQUENCER_LOCK)

    def record_event(
        self,
        action: str,
        *,
        actor: Actor,
        basis: AccessBasis,
        patients: Sequence[str] = (),
        resources: Sequence[str] = (),
        outcome: Outcome = Outcome.SUCCESS,
        purpose: str = "TREAT",
        detail: str | None = None,
        request_id: str | None = None,
        tx: Transaction | None = None,
    ) -> int:
        """Record a platform event — ``consent-change``, ``break-glass``,
        ``share-code-issued``, ``share-code-redeemed``, ``export``… (see
        :data:`~huitong.audit.entry.ACTIONS`). Pass ``tx`` to commit it with the change it
        records (recommended), else it is appended on its own. Returns the row number."""
        entry = AuditEntry(
            recorded=self.clock(), action=action, actor=actor, basis=basis, outcome=outcome,
            request_id=request_id, resources=tuple(resources), patients=tuple(patients),
            purpose=purpose, detail=detail,
        )  # fmt: skip
        if tx is not None:
            return self.record(tx, entry)
        return self.record_now(entry)

    # -- sequencing ----------------------------------------------------------------
    def sequence(self, limit: int = _BATCH) -> int:
        """Give up to ``limit`` committed, unsequenced entries their tree positions (in the
        order the sequencer sees them committed) and write the nodes; returns how many."""
        # Reads' entries are sequenced as they are inserted (audit/pg_appends.py), so the
        # server's sequencer mostly finds nothing: ask that in one statement (the partial
        # index of unsequenced rows) before a transaction and the log's lock. A row that
        # commits just after is found by the next pass, as one committing after the lock is.
        if not self.repo.query("SELECT seq FROM audit_entries WHERE idx IS NULL LIMIT 1"):
            return 0
        with self.repo.transaction() as tx:
            tx.lock(_SEQUENCER_LOCK)
            pending = tx.execute(
                "SELECT seq, entry FROM audit_entries WHERE idx IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            )
            if not pending:
                return 0
            store = SqlNodeStore(tx.execute, self.repo.dialect)
            frontier = Frontier.from_store(store)
            first = frontier.size
            nodes = []
            for _seq, data in pending:
                nodes += frontier.append(leaf_hash(bytes(data)))
            self._assign(tx, [(int(seq), first + i) for i, (seq, _) in enumerate(pending)])
            store.put_nodes(nodes)
            return len(pending)

    def sequence_all(self) -> int:
        total = 0
        while True:
            n = self.sequence()
            total += n
            if n < _BATCH:
                return total

    def _assign(self, tx: Transaction, pairs: list[tuple[int, int]]) -> None:
        for at in range(0, len(pairs), 1000):
            chunk = pairs[at : at + 1000]
            params: list[int] = []
            for seq, idx in chunk:
                params += (seq, idx)
            if self.repo.dialect == "postgresql":
                marks = ", ".join("(?::bigint, ?::bigint)" for _ in chunk)
                sql = (f"UPDATE audit_entries AS e SET idx = v.i FROM (VALUES {marks}) "
                       "AS v(s, i) WHERE e.seq = v.s")  # fmt: skip
            else:
                marks = ", ".join("(?, ?)" for _ in chunk)
                sql = (f"UPDATE audit_entries SET idx = v.column2 FROM (VALUES {marks}) AS v "
                       "WHERE audit_entries.seq = v.column1")  # fmt: skip
            tx.execute(sql, params)

    # -- reading the tree ------------------------------------------------------------
    def _store(self) -> SqlNodeStore:
        return SqlNodeStore(self.repo.query, self.repo.dialect)

    def size(self) -> int:
        return self._store().leaf_count()

    def status(self) -> LogStatus:
        store = self._store()
        size = store.leaf_count()
        root = Frontier.from_store(store, size).root()
        rows = self.repo.query("SELECT COUNT(*) FROM audit_entries WHERE idx IS NULL")
        return LogStatus(size, root, int(rows[0][0]))

    def root(self, size: int | None = None) -> bytes:
        store = self._store()
        size = store.leaf_count() if size is None else size
        self._check_size(size, store)
        plan = root_plan(size)
        return plan.assemble(store.get_nodes(plan.node_ids))[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The RFC 9162 audit path of entry ``index`` in the tree of ``size`` entries
        (verify with :func:`~huitong.audit.proofs.verify_inclusion`). One SQL read."""
        if not 0 <= index < size:
            raise FhirError(
                Category.INVALID,
                f"entry {index} is not in a tree of {size} entries / "
                f"第 {index} 条记录不在大小为 {size} 的树中",
            )
        return self._proof(inclusion_plan(index, size), size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``second`` entries extends that of ``first``
        (verify with :func:`~huitong.audit.proofs.verify_consistency`). One SQL read."""
        if not 0 <= first <= second:
            raise FhirError(
                Category.INVALID,
                f"sizes must satisfy 0 <= first <= second (got {first}, {second}) / "
                f"树大小须满足 0 <= first <= second（收到 {first}、{second}）",
            )
        return self._proof(consistency_plan(first, second), second)

    def _proof(self, plan: ProofPlan, size: int) -> list[bytes]:
        # One read: the plan's nodes plus the tree's last leaf, whose presence shows the
        # log holds ``size`` entries (no separate size query on the proof path).
        ids = plan.node_ids + ((NodeId(0, size - 1),) if size else ())
        try:
            nodes = self._store().get_nodes(ids)
        except KeyError:
            have = self.size()
            raise FhirError(
                Category.INVALID,
                f"the log holds {have} sequenced entries, not {size} / "
                f"日志中已排序的记录为 {have} 条，而不是 {size} 条",
            ) from None
        return plan.assemble(nodes)

    def _check_size(self, size: int, store: SqlNodeStore) -> None:
        have = store.leaf_count()
        if not 0 <= size <= have:
            raise FhirError(
                Category.INVALID,
                f"the log holds {have} sequenced entries, not {size} / "
                f"日志中已排序的记录为 {have} 条，而不是 {size} 条",
            )

    # -- entries -----------------------------------------------------------------------
    def entry_at(self, index: int) -> StoredEntry:
        rows = self.repo.query("SELECT seq, idx, entry FROM audit_entries WHERE idx = ?",
                               (index,))  # fmt: skip
        if not rows:
            raise _not_found(f"no audit entry #{index}", f"没有第 {index} 条审计记录")
        return _stored(rows[0])

    def entries(
        self,
        *,
        patient_ids: Sequence[str] = (),
        actor_user: str | None = None,
        action: str | None = None,
        since: int | None = None,
        before_seq: int | None = None,
        count: int = 50,
    ) -> list[StoredEntry]:
        """Entries, newest first, optionally only those touching ``patient_ids``; page with
        ``before_seq`` (the last ``seq`` of the previous page)."""
        where: list[str] = []
        params: list[Any] = []
        join = ""
        if patient_ids:
            marks = ", ".join("?" for _ in patient_ids)
            join = (" JOIN (SELECT DISTINCT seq AS pseq FROM audit_entry_patients "
                    f"WHERE patient_id IN ({marks})) p ON p.pseq = e.seq")  # fmt: skip
            params += list(patient_ids)
        if actor_user is not None:
            where.append("e.actor_user = ?")
            params.append(actor_user)
        if action is not None:
            where.append("e.action = ?")
            params.append(action)
        if since is not None:
            where.append("e.recorded >= ?")
            params.append(since)
        if before_seq is not None:
            where.append("e.seq < ?")
            params.append(before_seq)
        sql = f"SELECT e.seq, e.idx, e.entry FROM audit_entries e{join}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.seq DESC LIMIT ?"
        params.append(count)
        return [_stored(r) for r in self.repo.query(sql, params)]

    def accesses_of(self, patient_ids: Sequence[str], *, count: int = 50,
                    before_seq: int | None = None) -> list[StoredEntry]:  # fmt: skip
        """Who touched these patients' records, newest first ("who accessed my record")."""
        if not patient_ids:
            return []
        return self.entries(patient_ids=patient_ids, count=count, before_seq=before_seq)

    def _rows(self) -> Iterator[tuple[int, bytes]]:
        """Every sequenced row ``(idx, bytes)`` in position order, fetched in pages."""
        after = -1
        while True:
            rows = self.repo.query(
                "SELECT idx, entry FROM audit_entries WHERE idx > ? ORDER BY idx LIMIT 10000",
                (after,),
            )
            for idx, data in rows:
                yield int(idx), bytes(data)
            if len(rows) < 10000:
                return
            after = int(rows[-1][0])

    # -- keys and checkpoints ----------------------------------------------------------
    def signing_key(self) -> Ed25519PrivateKey:
        """The checkpoint key: the configured file, else the one kept in ``audit_keys``
        (generated on first use; after ``huitong audit rotate-key`` every server signs with
        the new one within a minute)."""
        if self._key is not None and (
            self._key_file or time.monotonic() - self._key_checked < _KEY_RECHECK_SECONDS
        ):
            return self._key
        if self._key is not None and not self._key_file:
            current = self.repo.query(
                "SELECT key_id FROM audit_keys WHERE private_key IS NOT NULL "
                "ORDER BY created DESC LIMIT 1"
            )
            self._key_checked = time.monotonic()
            if current and current[0][0] == key_id(self._key.public_key()):
                return self._key
        if self._key_file:
            key = load_pem_private_key(Path(self._key_file).read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("HUITONG_AUDIT_SIGNING_KEY must be an Ed25519 private key")
            self._remember_public(key)
        else:
            key = self._stored_key()
        self._key = key
        self._key_checked = time.monotonic()
        return key

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every checkpoint key this log has used, by key id: the current one and those
        rotated out (each still verifies the checkpoints it signed)."""
        self.signing_key()  # the first one exists (and a configured file's is recorded)
        rows = self.repo.query("SELECT key_id, public_key FROM audit_keys ORDER BY created")
        return {str(kid): Ed25519PublicKey.from_public_bytes(bytes(raw)) for kid, raw in rows}

    def published_keys(self) -> list[dict[str, Any]]:
        """The published keys: id, PEM public key, when made, when retired, which signs."""
        current = key_id(self.signing_key().public_key())
        rows = self.repo.query(
            "SELECT key_id, public_key, created, retired FROM audit_keys ORDER BY created"
        )
        out = []
        for kid, raw, created, retired in rows:
            pem = Ed25519PublicKey.from_public_bytes(bytes(raw)).public_bytes(
                Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")  # fmt: skip
            out.append({"keyId": kid, "publicKey": pem, "created": int(created),
                        "retired": None if retired is None else int(retired),
                        "current": kid == current})  # fmt: skip
        return out

    def rotate_key(self) -> tuple[str, str]:
        """A new checkpoint key kept in ``audit_keys``: the tree so far is signed one last
        time with the old key, whose private half is then erased (its public key stays, to
        verify what it signed); new checkpoints are signed with the new key. Returns (old,
        new) key ids. ValueError (bilingual) when the key comes from a file: replace the
        file instead (its public key is recorded when first used)."""
        if self._key_file:
            raise ValueError(
                "The checkpoint key comes from HUITONG_AUDIT_SIGNING_KEY: put a new key in "
                "that file and restart (the old public key stays recorded). / 检查点密钥来自 "
                "HUITONG_AUDIT_SIGNING_KEY：请将新密钥写入该文件并重启（旧公钥仍会保留）。"
            )
        old = key_id(self.signing_key().public_key())
        self.checkpoint()  # everything so far under the old key
        new_key = Ed25519PrivateKey.generate()
        pub = new_key.public_key()
        now = self.clock()
        with self.repo.transaction() as tx:
            tx.lock(_KEY_LOCK)
            tx.execute("UPDATE audit_keys SET private_key = NULL, retired = ? "
                       "WHERE private_key IS NOT NULL", (now,))  # fmt: skip
            tx.execute(
                "INSERT INTO audit_keys (key_id, public_key, private_key, created) "
                "VALUES (?, ?, ?, ?)",
                (key_id(pub), pub.public_bytes(Encoding.Raw, PublicFormat.Raw),
                 new_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
                 max(now, self._newest_key_time() + 1)),
            )  # fmt: skip
        self._key = new_key
        self._key_checked = time.monotonic()
        log.warning("audit: checkpoint signing key rotated from %s to %s", old, key_id(pub))
        return old, key_id(pub)

    def _newest_key_time(self) -> int:
        rows = self.repo.query("SELECT MAX(created) FROM audit_keys")
        return int(rows[0][0] or 0)

    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key().public_key()

    def checkpoint_verdict(self, signed: SignedCheckpoint) -> Verdict:
        """Does ``signed`` verify with the key it names, among this log's keys?"""
        key = self.public_keys().get(signed.key_id)
        if key is None:
            return Verdict.failed(
                "unknown-key",
                f"Checkpoint of size {signed.checkpoint.size} names key {signed.key_id}, "
                "which this log never used.",
                f"大小为 {signed.checkpoint.size} 的检查点声明的密钥 {signed.key_id} 不是本日志"
                "使用过的密钥。",
            )
        return verify_checkpoint(signed, key)

    def public_key_pem(self, key_id: str | None = None) -> str:
        """The PEM of the current key, or of the key ``key_id`` names (a checkpoint signed
        before a rotation names the old one)."""
        key = self.public_key() if key_id is None else self.public_keys()[key_id]
        return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def _remember_public(self, key: Ed25519PrivateKey) -> None:
        pub = key.public_key()
        kid = key_id(pub)
        with self.repo.transaction() as tx:
            tx.lock(_KEY_LOCK)
            if not tx.execute("SELECT key_id FROM audit_keys WHERE key_id = ?", (kid,)):
                tx.execute(
                    "INSERT INTO audit_keys (key_id, public_key, private_key, created) "
                    "VALUES (?, ?, NULL, ?)",
                    (kid, pub.public_bytes(Encoding.Raw, PublicFormat.Raw), self.clock()),
                )

    def _stored_key(self) -> Ed25519PrivateKey:
        with self.repo.transaction() as tx:
            tx.lock(_KEY_LOCK)  # two workers starting together generate one key, not two
            rows = tx.execute(
                "SELECT private_key FROM audit_keys WHERE private_key IS NOT NULL "
                "ORDER BY created DESC LIMIT 1"
            )
            if rows:
                return Ed25519PrivateKey.from_private_bytes(bytes(rows[0][0]))
            key = Ed25519PrivateKey.generate()
            pub = key.public_key()
            tx.execute(
                "INSERT INTO audit_keys (key_id, public_key, private_key, created) "
                "VALUES (?, ?, ?, ?)",
                (key_id(pub), pub.public_bytes(Encoding.Raw, PublicFormat.Raw),
                 key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
                 self.clock()),
            )  # fmt: skip
            log.warning("audit: generated a checkpoint signing key %s (kept in the database)",
                        key_id(pub))  # fmt: skip
            return key

    def checkpoint(self) -> SignedCheckpoint:
        """Sequence what is committed, then sign and store the tree head (a new checkpoint
        only when the log grew; otherwise the latest one is returned)."""
        self.sequence_all()
        key = self.signing_key()
        latest = self.latest_checkpoint()
        store = self._store()
        size = store.leaf_count()
        if latest is not None and latest.checkpoint.size == size:
            return latest
        root = Frontier.from_store(store, size).root()
        signed = sign_checkpoint(Checkpoint(self.origin, size, root, self.clock()), key)
        with self.repo.transaction() as tx:
            tx.lock(_SEQUENCER_LOCK)
            if tx.execute("SELECT size FROM audit_checkpoints WHERE size = ?", (size,)):
                pass  # another worker signed this size meanwhile: keep the first
            else:
                tx.execute(
                    "INSERT INTO audit_checkpoints (size, issued, key_id, body) "
                    "VALUES (?, ?, ?, ?)",
                    (size, signed.checkpoint.timestamp, signed.key_id, signed.to_text()),
                )
        return self.latest_checkpoint() or signed

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        rows = self.repo.query("SELECT body FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
        return SignedCheckpoint.from_text(rows[0][0]) if rows else None

    def checkpoints(self) -> list[SignedCheckpoint]:
        rows = self.repo.query("SELECT body FROM audit_checkpoints ORDER BY size")
        return [SignedCheckpoint.from_text(r[0]) for r in rows]

    # -- verification ------------------------------------------------------------------
    def verify(
        self, public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey] | None = None
    ) -> VerificationReport:
        """Recompute the whole tree from the entry rows and check it against the stored
        nodes and every signed checkpoint (see :func:`~huitong.audit.verify.verify_log`):
        names each edited, deleted, inserted or reordered entry. Each checkpoint is checked
        against the key it names: ``public_key`` are the published keys to trust (default:
        every key this log has used, current and rotated out). Read-only."""
        if public_key is None:
            key: Mapping[str, Ed25519PublicKey] = self.public_keys()
        else:
            given = [public_key] if isinstance(public_key, Ed25519PublicKey) else public_key
            key = {key_id(k): k for k in given}
        checkpoints: list[SignedCheckpoint] = []
        findings: list[Finding] = []
        for row in self.repo.query("SELECT size, body FROM audit_checkpoints ORDER BY size"):
            try:
                checkpoints.append(SignedCheckpoint.from_text(row[1]))
            except ValueError:
                findings.append(Finding(
                    "checkpoint-malformed",
                    f"The stored checkpoint of size {row[0]} is malformed.",
                    f"存储的大小为 {row[0]} 的检查点格式错误。", size=int(row[0]),
                ))  # fmt: skip
        report = verify_log(self._rows(), checkpoints, key, store=self._store(),
                            origin=self.origin)  # fmt: skip
        if findings:
            report = VerificationReport(report.size, report.root, report.checkpoints_checked,
                                        (*report.findings, *findings))  # fmt: skip
        return report

    def unsequenced(self) -> int:
        return int(self.repo.query("SELECT COUNT(*) FROM audit_entries WHERE idx IS NULL")[0][0])


def _stored(row: Sequence[Any]) -> StoredEntry:
    seq, idx, data = row
    raw = bytes(data)
    try:
        entry = parse_entry(raw)
    except ValueError:
        # An edited row still lists (verification reports it); show what can be shown.
        entry = AuditEntry(
            recorded=0, action="audit-read", actor=Actor(role="unknown"),
            basis=AccessBasis(BasisKind.DENIED, "entry-unreadable"),
            outcome=Outcome.SERIOUS_FAILURE, detail="unreadable entry",
        )  # fmt: skip
    return StoredEntry(int(seq), None if idx is None else int(idx), raw, entry)
