"""Appending a group of audit entries on the event loop, sequenced as they are inserted
(PostgreSQL; the server's reads by id, :class:`huitong.server.fast_read.AuditAppends`).

:meth:`AuditService.record_many` inserts entries with no tree position and the sequencer
gives them one later (service.py, "Concurrency"). For a read that was three costs per entry
on top of the insert: a worker-thread hop and psycopg's statement conversion per group, the
sequencer reading every entry back, and its ``UPDATE`` of ``idx`` — a second heap tuple and
a second entry in every index of ``audit_entries`` (``idx`` is indexed, so never a HOT
update). :class:`PgGroupAppender` does a group's two steps in one transaction instead, on a
connection of its own driven by the event loop:

1. ``BEGIN``, the sequencer's lock (the same advisory lock :meth:`AuditService.sequence`
   takes, so positions are still handed out one transaction at a time and the tree can
   neither fork nor skip), and the log's right edge (:data:`FRONTIER_SQL`) — one round trip;
2. the entries hashed and appended to that frontier here, then one prepared statement
   inserting the entry rows *with* their positions, their patients and the completed nodes
   — a second; ``COMMIT`` — a third.

The rows are exactly what record-then-sequence writes (verification cannot tell them apart);
the caller resumes only after ``COMMIT`` returned, so no read's data leaves unaudited. Entries
recorded inside write transactions keep the two-step path; one committed but not yet
sequenced simply gets a later position from the sequencer, as an uncommitted one always did.
Nothing here logs an entry's content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq

from huitong.audit.entry import AuditEntry, canonical_bytes
from huitong.audit.frontier import Frontier
from huitong.audit.hashing import leaf_hash
from huitong.fhir.errors import Category, FhirError
from huitong.store.pg_reads import LoopConnection, check_result

__all__ = ["FRONTIER_SQL", "PgGroupAppender", "lock_key"]

log = logging.getLogger("huitong.audit")


def lock_key(name: str) -> int:
    """The advisory-lock key PostgreSQL transactions take for ``tx.lock(name)``
    (``PostgresOps.lock_keys``: the first 8 bytes of BLAKE2b, signed); a test checks the two
    agree, since a different key would let this appender and the sequencer run at once."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# The log's size n (one past the last leaf) and the hashes of the complete subtrees covering
# [0, n), largest first: one node per set bit L of n, NodeId(L, (n >> L) - 1) — what
# Frontier.from_store reads in two statements (tree.range_nodes(0, n)). OFFSET 0 keeps the
# bit test ahead of the join: only the set bits' nodes are looked up.
FRONTIER_SQL = (
    "SELECT s.n, f.level, f.hash FROM "
    "(SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM audit_nodes WHERE level = 0) AS s "
    "LEFT JOIN LATERAL (SELECT b.level, x.hash FROM (SELECT level FROM "
    "generate_series(0, 62) AS g(level) WHERE (s.n >> level) & 1 = 1 OFFSET 0) AS b "
    "JOIN audit_nodes x ON x.level = b.level AND x.idx = (s.n >> b.level) - 1) AS f ON TRUE "
    "ORDER BY f.level DESC"
)

# One statement text for any group (prepared once per connection): the entry rows with their
# positions, their patients (joined back by position, unique within the group), the nodes.
_INSERT_SQL = (
    "WITH e AS (INSERT INTO audit_entries (idx, recorded, action, actor_role, actor_user, "
    "actor_client, actor_org, outcome, entry) SELECT * FROM unnest($1::bigint[], "
    "$2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
    "$9::bytea[]) RETURNING seq, idx, recorded), "
    "p AS (INSERT INTO audit_entry_patients (patient_id, seq, recorded) "
    "SELECT u.pid, e.seq, e.recorded FROM unnest($10::text[], $11::bigint[]) AS u(pid, idx) "
    "JOIN e ON e.idx = u.idx) "
    "INSERT INTO audit_nodes (level, idx, hash) "
    "SELECT * FROM unnest($12::int[], $13::bigint[], $14::bytea[])"
)
_CATCH_UP = 4096  # more leaves appended by others than this: read the frontier instead
_STATEMENTS = {
    b"huitong_audit_lock": b"SELECT pg_advisory_xact_lock($1::bigint)",
    b"huitong_audit_frontier": FRONTIER_SQL.encode(),
    b"huitong_audit_append": _INSERT_SQL.encode(),
    # The leaves appended since a size this process knows the frontier of (another
    # worker's groups, the sequencer's passes): a short index range instead of the frontier.
    b"huitong_audit_leaves": (
        b"SELECT idx, hash FROM audit_nodes WHERE level = 0 AND idx >= $1::bigint "
        b"ORDER BY idx LIMIT " + str(_CATCH_UP).encode()
    ),
}


def frontier_of(rows: Sequence[tuple[Any, ...]]) -> Frontier:
    """The :class:`Frontier` from :data:`FRONTIER_SQL`'s rows; ``ValueError`` when a node
    the size needs is missing (the table was changed behind the log's back)."""
    size = int(rows[0][0])
    hashes = [bytes(r[2]) for r in rows if r[1] is not None]
    if len(hashes) != size.bit_count():
        raise ValueError(f"audit_nodes lacks frontier nodes of a log of size {size}")
    return Frontier(size, hashes)


# Array parameters are sent as text literals built here: psycopg's list adaptation (a regular
# expression per element) cost more than the rest of a group's work.
def _text_array(values: Sequence[str | None]) -> bytes:
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        else:
            out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ("{" + ",".join(out) + "}").encode()


def _int_array(values: Sequence[int]) -> bytes:
    return ("{" + ",".join(map(str, values)) + "}").encode()


def _bytea_array(values: Sequence[bytes]) -> bytes:
    return ("{" + ",".join('"\\\\x' + v.hex() + '"' for v in values) + "}").encode()


def insert_params(frontier: Frontier, entries: Sequence[AuditEntry]) -> list[bytes]:
    """The parameters (text format) of the group insert for ``entries`` appended, in order,
    to ``frontier`` (which advances: leaf hashes as :meth:`AuditService.sequence` computes
    them from the stored bytes)."""
    idxs: list[int] = []
    recorded: list[int] = []
    action: list[str] = []
    role: list[str] = []
    user: list[str | None] = []
    client: list[str | None] = []
    org: list[str | None] = []
    outcome: list[str] = []
    datas: list[bytes] = []
    pids: list[str] = []
    pidx: list[int] = []
    levels: list[int] = []
    nidx: list[int] = []
    hashes: list[bytes] = []
    for entry in entries:
        data = canonical_bytes(entry)
        index = frontier.size
        for (level, at), digest in frontier.append(leaf_hash(data)):
            levels.append(level)
            nidx.append(at)
            hashes.append(digest)
        a = entry.actor
        idxs.append(index)
        recorded.append(entry.recorded)
        action.append(entry.action)
        role.append(a.role)
        user.append(a.user)
        client.append(a.client)
        org.append(a.organization)
        outcome.append(entry.outcome.value)
        datas.append(data)
        for pid in entry.patients:
            pids.append(pid)
            pidx.append(index)
    return [_int_array(idxs), _int_array(recorded), _text_array(action), _text_array(role),
            _text_array(user), _text_array(client), _text_array(org), _text_array(outcome),
            _bytea_array(datas), _text_array(pids), _int_array(pidx), _int_array(levels),
            _int_array(nidx), _bytea_array(hashes)]  # fmt: skip


class _Pipeline(LoopConnection):
    """One connection in libpq pipeline mode, driven by the event loop: a batch of commands
    goes out in one write and its results come back in one round trip (psycopg's cursor
    machinery cost several times the statements themselves, as for reads by id —
    store/pg_reads.py, whose connection this is, with a batch's end at its sync)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(conn, loop, pipeline=True)

    def _collect(self) -> None:
        # A batch ends at its sync, not at the first command's end.
        pg = self.pg
        ended = False
        while self.waiter is not None and not pg.is_busy():
            res = pg.get_result()
            if res is None:  # the end of one command's results
                if ended:  # twice: nothing more has arrived yet
                    break
                ended = True
                continue
            ended = False
            if res.status == pq.ExecStatus.PIPELINE_SYNC:  # the end of the batch
                self._complete()
                return
            self.results.append(res)

    async def run_batch(
        self, commands: Sequence[tuple[bytes, Sequence[bytes] | None]]
    ) -> list[Any]:
        """Send ``commands`` — ``(statement name, parameters)`` of prepared statements, or
        ``(SQL, None)`` for a statement without parameters — and a sync; their results
        (``DatabaseError`` for the first that failed)."""
        if self.broken:
            raise psycopg.OperationalError("connection lost")
        pg = self.pg
        self.waiter = self.loop.create_future()
        try:
            for name, params in commands:
                if params is None:
                    pg.send_query_params(name, None)
                else:
                    pg.send_query_prepared(name, params)
            pg.pipeline_sync()
            while pg.flush():  # the socket is full (a large group): wait until writable
                writable = self.loop.create_future()
                self.loop.add_writer(self.fd, writable.set_result, None)
                try:
                    await writable
                finally:
                    self.loop.remove_writer(self.fd)
        except psycopg.OperationalError as exc:
            self._fail(exc)
        results = await self.waiter
        for res in results:
            check_result(res, "audit statement failed")
        return results

    async def prepare_all(self, statements: dict[bytes, bytes]) -> None:
        self.waiter = self.loop.create_future()
        for name, sql in statements.items():
            self.pg.send_prepare(name, sql)
        self.pg.pipeline_sync()
        while self.pg.flush():
            await asyncio.sleep(0)
        for res in await self.waiter:
            check_result(res, "audit statement failed")


class PgGroupAppender:
    """Appends groups of entries to the log at ``url`` on the running event loop (see the
    module docstring). One connection, opened on first use and again after any failure; one
    group at a time (the caller, ``AuditAppends``, already runs one commit at a time)."""

    def __init__(self, url: str, *, lock_name: str) -> None:
        self.url = url
        self._key = str(lock_key(lock_name)).encode()
        self._pipe: _Pipeline | None = None
        # The log's frontier after this appender's last committed group: the next group
        # reads only the leaves appended since (see _frontier_now).
        self._known: Frontier | None = None

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Insert and sequence ``entries`` in one transaction; returns once it committed.
        Raises when it could not be stored (nothing of it was): ``FhirError`` UNAVAILABLE
        when the database cannot be reached, the driver's error otherwise."""
        if not entries:
            return
        try:
            pipe = await self._connection()
            try:
                known, self._known = self._known, None  # unknown until this group commits
                frontier = await self._frontier_now(pipe, known)
                # Round trip 2: the rows, and the commit the callers wait for.
                await pipe.run_batch([
                    (b"huitong_audit_append", insert_params(frontier, entries)),
                    (b"COMMIT", None),
                ])  # fmt: skip
                self._known = frontier  # advanced over this group by insert_params
            except BaseException:
                # Whatever failed (or a cancellation mid-way), the transaction must not
                # linger holding the log's lock: the connection goes, and with it the lock.
                self._drop()
                raise
        except psycopg.Error as exc:
            log.warning("audit: a group of %d entries was not stored: %s", len(entries),
                        type(exc).__name__)  # fmt: skip
            if isinstance(exc, psycopg.OperationalError):  # as the repository: 503
                raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc
            raise  # anything else is a fault (500), as on the repository's path

    async def _frontier_now(self, pipe: _Pipeline, known: Frontier | None) -> Frontier:
        """Round trip 1: the transaction, the log's lock, then (a statement of its own, so
        its snapshot is taken once the lock is held) what gives the log's right edge: the
        leaves appended since ``known`` — hashed onto it here, as the sequencer would — or,
        without one (or far behind, or not matching), :data:`FRONTIER_SQL`. Nodes are
        written once and never changed, so a frontier this process saw commit stays the
        frontier of that prefix of the log."""
        lock = (b"huitong_audit_lock", [self._key])
        if known is not None:
            results = await pipe.run_batch([
                (b"BEGIN", None), lock, (b"huitong_audit_leaves", [str(known.size).encode()]),
            ])  # fmt: skip
            leaves = _leaves(results[-1])
            if len(leaves) < _CATCH_UP and all(
                idx == known.size + i for i, (idx, _) in enumerate(leaves)
            ):
                for _, leaf in leaves:
                    known.append(leaf)
                return known
            results = await pipe.run_batch([(b"huitong_audit_frontier", [])])  # lock still held
        else:
            results = await pipe.run_batch(
                [(b"BEGIN", None), lock, (b"huitong_audit_frontier", [])])
        return frontier_of(_rows(results[-1]))

    async def _connection(self) -> _Pipeline:
        loop = asyncio.get_running_loop()
        if self._pipe is not None and (self._pipe.loop is not loop or self._pipe.broken):
            self._drop()
        if self._pipe is None:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, application_name="huitong", options="-c jit=off",
            )  # fmt: skip
            pipe = _Pipeline(conn, loop)
            try:
                await pipe.prepare_all(_STATEMENTS)
            except BaseException:
                pipe.close()
                raise
            self._pipe = pipe
        return self._pipe

    def _drop(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(Exception):  # its loop may be gone (tests run several)
                pipe.close()

    async def close(self) -> None:
        self._drop()


def _leaves(res: Any) -> list[tuple[int, bytes]]:
    return [(int(res.get_value(r, 0)), bytes.fromhex(res.get_value(r, 1)[2:].decode()))
            for r in range(res.ntuples)]  # fmt: skip


def _rows(res: Any) -> list[tuple[Any, ...]]:
    """A text-format result's rows: level as int, hashes decoded from bytea's hex form."""
    out = []
    for r in range(res.ntuples):
        n, level, digest = (res.get_value(r, c) for c in range(3))
        out.append((int(n), None if level is None else int(level),
                    None if digest is None else bytes.fromhex(digest[2:].decode())))  # fmt: skip
    return out
