"""What both engines share: the write pipeline, reads, history, search execution.

An engine supplies connections and the few statements whose syntax differs
(:class:`EngineOps`); everything else — validation, id and meta stamping, indexing,
version bookkeeping, the write buffer — lives here once.

Writes are buffered inside a transaction and flushed in bulk (``executemany`` on SQLite,
``COPY`` on PostgreSQL) before anything reads the database and at commit: a 300-entry
transaction bundle then costs a handful of statements instead of thousands of round trips.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson

from huitong.clock import Clock, IdFactory, MonotonicClock, new_uuid
from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.index import index_resource
from huitong.fhir.index_model import IndexEntries
from huitong.fhir.search.model import Clause, SearchQuery
from huitong.fhir.validation import validate_resource
from huitong.store import search_sql
from huitong.store.repository import HistoryPage, SearchPage, StoredResource, WriteOutcome
from huitong.store.search_sql import Restrict

log = logging.getLogger("huitong.store")

INDEX_TABLES: dict[str, tuple[str, ...]] = {
    "string": ("norm", "exact"),
    "token": ("system", "code", "text"),
    "reference": ("target_type", "target_id", "url"),
    "date": ("lo", "hi"),
    "number": ("value", "lo", "hi"),
    "quantity": ("system", "code", "unit", "value", "lo", "hi"),
    "uri": ("value",),
}
RESOURCE_COLUMNS = (
    "rid", "res_type", "res_id", "version", "last_updated", "deleted", "method",
    "patient_key", "content",
)
_ROW_SELECT = "rid, res_type, res_id, version, last_updated, deleted, method, {content}"
# At most this many of a transaction's own rows are kept in memory (``BaseTransaction._mine``).
_MINE_LIMIT = 20_000
# `_total=estimate` counts exactly up to this many matches past the page (see _estimate).
TOTAL_EXACT_UP_TO = 1000


@dataclass(slots=True)
class WriteBuffer:
    """Rows waiting to be written: new resources and the index rows of every write."""

    resources: list[tuple[Any, ...]] = field(default_factory=list)
    index: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in INDEX_TABLES}
    )
    keys: set[tuple[str, str]] = field(default_factory=set)
    # The resource types with rows waiting here: a search of other types needs no flush.
    types: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.resources) or any(self.index.values())

    def add_index(self, rid: int, res_type: str, patient_key: str | None, e: IndexEntries) -> None:
        self.types.add(res_type)
        for name in INDEX_TABLES:
            rows = getattr(e, name)
            if rows:
                self.index[name].extend((rid, res_type, patient_key, *row) for row in rows)


class EngineOps:
    """The statements that differ between engines. Subclasses set ``ph`` and override."""

    dialect: str = ""
    ph: str = "?"
    content_select: str = "content"
    # Whether statements whose answer nobody reads wait to travel with the transaction's
    # next round trip (``BaseTransaction.execute_later``). Worth it where a statement costs
    # a round trip to a server; SQLite runs in process and executes them at once.
    defers: bool = False

    def run_pipelined(
        self, cur: Any, later: Sequence[tuple[str, Any]], sql: str | None = None,
        params: Any = (),
    ) -> None:
        """Run the deferred statements ``later`` in order, then ``sql`` (its answer on
        ``cur``); an engine that ``defers`` sends them all in one round trip."""
        for text, values in later:
            cur.execute(text, values)
        if sql is not None:
            cur.execute(sql, params)

    def returns_rows(self, cur: Any) -> bool:
        """Whether the statement just run on ``cur`` answered with rows (a SELECT or a
        RETURNING), as opposed to a plain INSERT/UPDATE."""
        return cur.description is not None

    def run_searches(
        self, cur: Any, later: Sequence[tuple[str, Any]], statements: Sequence[tuple[str, Any]]
    ) -> list[list[tuple[Any, ...]]]:
        """The deferred statements, then each of ``statements``; their rows, in order (none
        for a statement that returns none)."""
        self.run_pipelined(cur, later)
        out = []
        for text, values in statements:
            cur.execute(text, values)
            out.append(list(cur.fetchall()) if self.returns_rows(cur) else [])
        return out

    def allocate_rids(self, cur: Any, n: int, after: int) -> list[int]:
        """``n`` unused row ids, all greater than ``after`` (the last one this transaction
        took, whose row may still be in the write buffer)."""
        raise NotImplementedError

    def bulk_insert(self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        raise NotImplementedError

    def bulk_insert_many(
        self, cur: Any, batches: Sequence[tuple[str, Sequence[str], list[tuple]]],
        later: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Run the deferred statements ``later``, then insert every (table, columns, rows)
        batch; an engine may send them together."""
        self.run_pipelined(cur, later)
        for table, columns, rows in batches:
            self.bulk_insert(cur, table, columns, rows)

    def lock_current(self) -> str:
        """Suffix that locks the current row while an update or delete reads it."""
        return ""

    def to_bool(self, value: Any) -> bool:
        return bool(value)

    def lock_keys(self, cur: Any, keys: Sequence[str]) -> None:
        """Hold a lock on each of ``keys`` until the transaction ends. SQLite needs none: its
        one writer already runs write transactions one at a time."""

    def replace_current(self, cur: Any, rid: int, values: tuple[Any, ...]) -> None:
        """Move the current version of ``rid`` to ``resource_history``, delete its index rows
        and overwrite the row with ``values`` (version, last_updated, deleted, method,
        patient_key, content). A statement each here (SQLite runs in process, a statement is
        cheap); PostgreSQL does it in one round trip."""
        cols = ", ".join(RESOURCE_COLUMNS)
        cur.execute(
            _sql(self, f"INSERT INTO resource_history ({cols}) "
                 f"SELECT {cols} FROM resources WHERE rid = ?"),
            (rid,),
        )
        for name in INDEX_TABLES:
            cur.execute(_sql(self, f"DELETE FROM idx_{name} WHERE rid = ?"), (rid,))
        cur.execute(_sql(self, _UPDATE_CURRENT), (*values, rid))

    def replace_current_statement(self, rid: int, values: tuple[Any, ...]) -> tuple[str, Any]:
        """``replace_current`` as one statement to defer (engines that ``defers``)."""
        raise NotImplementedError

    def json_text(self, value: Any) -> bytes:
        return value.encode() if isinstance(value, str) else bytes(value)

    def is_unique_violation(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def is_unavailable(self, exc: BaseException) -> bool:
        raise NotImplementedError


# hook(tx, stored, content): see BaseRepository.add_write_hook.
WriteHook = Callable[["BaseTransaction", StoredResource, "dict[str, Any] | None"], None]
# check(tx, content): see BaseRepository.add_write_check.
CheckHook = Callable[["BaseTransaction", "dict[str, Any]"], None]
# transform(tx, content) -> content: see BaseRepository.add_write_transform.
TransformHook = Callable[["BaseTransaction", "dict[str, Any]"], "dict[str, Any]"]

_UPDATE_CURRENT = (
    "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, method = ?, "
    "patient_key = ?, content = ? WHERE rid = ?"
)
_UNSTORED_META = ("versionId", "lastUpdated")


def _same_content(content: dict[str, Any], current: bytes) -> bool:
    """Whether ``content`` (stamped for its next version) says exactly what the stored
    ``current`` says, apart from ``meta.versionId`` and ``meta.lastUpdated``. Compared as
    canonical JSON (sorted keys), so ``1`` and ``1.0`` — different decimals in FHIR — differ."""
    old = orjson.loads(current)
    if type(old) is not dict:
        return False
    new_meta = {k: v for k, v in (content.get("meta") or {}).items() if k not in _UNSTORED_META}
    old_meta = {k: v for k, v in (old.get("meta") or {}).items() if k not in _UNSTORED_META}
    if new_meta != old_meta or len(old) != len(content):
        return False
    dump = orjson.dumps
    return dump({**content, "meta": new_meta}, option=orjson.OPT_SORT_KEYS) == dump(
        {**old, "meta": old_meta}, option=orjson.OPT_SORT_KEYS
    )


_FHIR_TABLES = re.compile(r"\b(resources|resource_history|idx_[a-z]+)\b", re.IGNORECASE)


def _check_component_sql(sql: str) -> None:
    """Component SQL never touches the FHIR tables: those change only through the write
    pipeline (validation, indexing, history), or the index would drift from the content."""
    if _FHIR_TABLES.search(sql):
        raise ValueError("component SQL must not touch the FHIR resource or index tables")


def _sql(ops: EngineOps, text: str) -> str:
    return text if ops.ph == "?" else text.replace("?", ops.ph)


_MAX_RID_BLOCK = 4096  # a bundle of more writes than this takes another block or two


@lru_cache(maxsize=4096)
def _component_sql(ph: str, text: str) -> str:
    """A component's statement checked (``_check_component_sql``) and in the engine's
    placeholder style. Components send the same few statement texts over and over (a message
    store mark, an identity key), so both are done once per text; a refused text raises
    every time (exceptions are not cached)."""
    _check_component_sql(text)
    return text if ph == "?" else text.replace("?", ph)


def _restricted(
    where: str, params: Sequence[Any], restrict: Restrict | None, alias: str
) -> tuple[str, list[Any]]:
    """``where`` ANDed with the access restriction on the rows of ``alias``."""
    if restrict is None:
        return where, list(params)
    extra, extra_params = restrict(alias)
    return f"{where} AND ({extra})", [*params, *extra_params]


def _clause_types(clause: Clause, into: set[str]) -> bool:
    """Add the types ``clause`` reads besides its own; False when that could be any type."""
    if clause.param == "_list":
        into.add("List")
    if clause.chain is not None:
        if not clause.chain.target_types:
            return False
        into.update(clause.chain.target_types)
        return _clause_types(clause.chain.clause, into)
    if clause.has is not None:
        into.add(clause.has.source_type)
        return _clause_types(clause.has.clause, into)
    return True


def _one_statement(query: SearchQuery) -> bool:
    """Whether ``_search`` answers ``query`` with its one page statement (rows included):
    no sort, include, total or count-only summary."""
    return (query.count > 0 and query.summary != "count" and not query.sort
            and query.total == "none" and not query.include and not query.revinclude)


def _may_read(query: SearchQuery, buffered: set[str]) -> bool:
    """Whether ``query`` could read rows of the ``buffered`` types (so they must be flushed
    first). Conservative: a system-wide search, includes or an open chain read any type."""
    if not query.resource_types or query.include or query.revinclude:
        return True
    types = set(query.resource_types)
    if query.compartment is not None:
        types.add(query.compartment[0])
    for clause in query.clauses:
        if not _clause_types(clause, types):
            return True
    return not types.isdisjoint(buffered)


def _stored(ops: EngineOps, row: Sequence[Any]) -> StoredResource:
    _rid, res_type, res_id, version, last_updated, deleted, method, content = row[:8]
    return StoredResource(
        res_type, res_id, int(version), int(last_updated), ops.to_bool(deleted), method,
        ops.json_text(content),
    )


class BaseTransaction:
    """One database transaction's reads and writes (see :class:`Transaction`).

    Round trips are what a write costs on PostgreSQL, so a transaction avoids them three
    ways: new rows wait in a buffer flushed in bulk (before a read that may see them, and at
    commit); statements whose answer nobody reads (a component's bookkeeping, replacing a
    version) wait in ``_later`` and travel with the next statement that has to go anyway, in
    one pipeline; and the rows this transaction wrote or locked (``_mine``) are answered
    from memory, as nobody else can change them before it ends.
    """

    def __init__(self, repo: BaseRepository, cur: Any) -> None:
        self._repo = repo
        self._ops = repo.ops
        self._cur = cur
        self._buffer = WriteBuffer()
        self._rids: list[int] = []
        self._last_rid = 0
        self._rid_block = 16
        self._locked: set[str] = set()
        self._later: list[tuple[str, Any]] = []
        # (res_type, res_id) -> the current row as ``_current`` returns it (rid, res_type,
        # res_id, version, last_updated, deleted, method, content, patient_key), for rows
        # this transaction created, replaced or read FOR UPDATE: until it ends they are
        # current whatever other transactions do.
        self._mine: dict[tuple[str, str], tuple[Any, ...]] = {}
        # Resources ``lock_current`` found absent (a bundle's PUT that will create): a read
        # of one before that create (the quality check of an Observation written earlier in
        # the bundle reads its Patient) needs no round trip to learn it is not there.
        self._absent: set[tuple[str, str]] = set()
        # Rows read ahead by ``prefetch`` for the reads that will follow (not for updates,
        # which read and lock their row themselves); ``_mine`` wins over them.
        self._seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        # The resource being written and its JSON, when a transform serialised it already
        # (see ``serialised``): the store then stores those bytes.
        self._dumped: tuple[dict[str, Any], bytes] | None = None
        # Components' own bookkeeping for this transaction, by component (Transaction.state).
        self.state: dict[Any, Any] = {}

    # -- buffer and deferred statements ------------------------------------------------
    def _next_rid(self) -> int:
        if not self._rids:
            # Blocks grow 16, 32, … 1024: a message of a few resources does not draw (and on
            # PostgreSQL advance the sequence by) a thousand ids, a large bundle still needs
            # only a handful of round trips — or one, when it said how many (expect_writes).
            self._drain()
            self._rids = self._ops.allocate_rids(self._cur, self._rid_block, self._last_rid)
            self._rids.reverse()
            self._rid_block = min(self._rid_block * 2, 1024)
        self._last_rid = self._rids.pop()
        return self._last_rid

    def expect_writes(self, n: int) -> None:
        # Only the size of the next block: ids already drawn are used first, and a wrong
        # guess costs at most one more block (or ids the sequence skips, as after a rollback).
        self._rid_block = max(self._rid_block, min(n, _MAX_RID_BLOCK))

    def _take_later(self) -> list[tuple[str, Any]]:
        later, self._later = self._later, []
        return later

    def _send(self, sql: str, params: Any) -> None:
        """Run ``sql`` (answer on the cursor), the deferred statements in the same trip."""
        later = self._take_later()
        if later:
            self._ops.run_pipelined(self._cur, later, sql, params)
        else:
            self._cur.execute(sql, params)

    def _rows_of(self, keys: list[tuple[str, str]], tail: str = "") -> Iterator[tuple]:
        """The current rows of ``keys`` ((type, id) pairs), read 500 a statement."""
        cols = _ROW_SELECT.format(content=self._ops.content_select)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            pairs = " OR ".join(["(res_type = ? AND res_id = ?)"] * len(chunk))
            self._send(
                _sql(self._ops, f"SELECT {cols}, patient_key FROM resources WHERE {pairs}{tail}"),
                [v for k in chunk for v in k],
            )
            yield from (tuple(row) for row in self._cur.fetchall())

    def _drain(self) -> None:
        """Send the deferred statements now (before a statement that cannot carry them)."""
        if self._later:
            self._ops.run_pipelined(self._cur, self._take_later())

    def _remember(self, key: tuple[str, str], row: tuple[Any, ...]) -> None:
        # Bounded: a bulk load of many thousand resources in one transaction keeps the
        # first ones only (the later ones are read back if ever needed).
        if len(self._mine) < _MINE_LIMIT or key in self._mine:
            self._mine[key] = row

    def lock(self, key: str) -> None:
        self.lock_many((key,))

    def lock_many(self, keys: Iterable[str]) -> None:
        """Hold the locks on ``keys`` until the transaction ends, taken in one round trip and
        in one global order (so two transactions wanting the same keys cannot deadlock); a
        key this transaction already holds is not asked for again."""
        wanted = sorted(set(keys) - self._locked)
        if wanted:
            self._drain()
            self._ops.lock_keys(self._cur, wanted)
            self._locked.update(wanted)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # No flush first: component SQL never reads the FHIR tables (checked here), so rows
        # still in the buffer cannot change its answer, and flushing a few rows before every
        # component statement was a COPY per index table each time.
        self._send(_component_sql(self._ops.ph, sql), tuple(params))
        if not self._ops.returns_rows(self._cur):
            return []
        return [tuple(row) for row in self._cur.fetchall()]

    def execute_many(self, statements: Sequence[tuple[str, Sequence[Any]]]
                     ) -> list[list[tuple[Any, ...]]]:
        """``execute`` of each statement, in order, their rows in order: on PostgreSQL in
        one round trip (a batch of messages stored with their ids returned)."""
        ph = self._ops.ph
        converted = [(_component_sql(ph, sql), tuple(params)) for sql, params in statements]
        return [[tuple(r) for r in rows] for rows in
                self._ops.run_searches(self._cur, self._take_later(), converted)]

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A statement on a component's own table whose answer nobody reads (an insert, an
        update of bookkeeping): it runs before anything else this transaction sends, and on
        PostgreSQL travels with that next round trip instead of costing one of its own. Its
        failure (a constraint) then surfaces at that later statement, and fails the
        transaction all the same."""
        text = _component_sql(self._ops.ph, sql)
        if self._ops.defers:
            self._later.append((text, tuple(params)))
        else:
            self._cur.execute(text, tuple(params))

    def flush(self) -> None:
        """Write every buffered row and deferred statement. Called before reads and at
        commit."""
        buf = self._buffer
        later = self._take_later()
        if not buf:
            if later:
                self._ops.run_pipelined(self._cur, later)
            return
        self._buffer = WriteBuffer()
        batches: list[tuple[str, Sequence[str], list[tuple]]] = []
        if buf.resources:
            batches.append(("resources", RESOURCE_COLUMNS, buf.resources))
        for name, cols in INDEX_TABLES.items():
            rows = buf.index[name]
            if rows:
                batches.append(
                    (f"idx_{name}", ("rid", "res_type", "patient_key", "param", "grp", *cols), rows)
                )
        try:
            self._ops.bulk_insert_many(self._cur, batches, later)
        except Exception as exc:
            if self._ops.is_unique_violation(exc):
                raise FhirError(
                    Category.CONFLICT, "a resource with this id was created concurrently"
                ) from exc
            raise

    # -- reads ---------------------------------------------------------------
    def _current(self, res_type: str, res_id: str, *, lock: bool = False) -> tuple | None:
        """The current row of a resource; ``lock`` when it is about to be replaced."""
        key = (res_type, res_id)
        if key in self._buffer.keys and (lock or key not in self._mine):
            # Replacing it drops its index rows in the database: the buffered ones must be
            # there first (and a buffered create must exist to be replaced). A buffered
            # create not kept in ``_mine`` (past its bound) is read back once written.
            self.flush()
        mine = self._mine.get(key)
        if mine is not None:
            return mine
        if key in self._absent:
            return None
        if not lock:
            seen = self._seen.get(key)
            if seen is not None:
                return seen
        sql = _sql(
            self._ops,
            f"SELECT {_ROW_SELECT.format(content=self._ops.content_select)}, patient_key "
            "FROM resources WHERE res_type = ? AND res_id = ?",
        )
        if lock:
            sql += self._ops.lock_current()
        self._send(sql, (res_type, res_id))
        row: tuple | None = self._cur.fetchone()
        if lock and row is not None:
            self._remember(key, tuple(row))
        return row

    def lock_current(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read and lock the current rows of these (type, id) resources in one statement,
        as the updates or deletes about to replace them would one by one (a transaction
        bundle's conditional updates). Locked in rid order, as every such batch is, so two
        transactions cannot each hold a row the other waits for."""
        wanted = sorted({k for k in keys if k not in self._mine})
        if not wanted:
            return
        if any(k in self._buffer.keys for k in wanted):
            self.flush()
        found = set()
        for row in self._rows_of(wanted, f" ORDER BY rid{self._ops.lock_current()}"):
            self._remember((row[1], row[2]), row)
            found.add((row[1], row[2]))
        if len(self._absent) < _MINE_LIMIT:
            self._absent.update(set(wanted) - found)

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the current rows of these (type, id) resources now, in one statement, for
        the reads by id this transaction is about to make (a bundle's Observations each
        read their Patient for the quality checks). A read then answers from them: as a
        read under READ COMMITTED may, it sees the row as of this statement."""
        wanted = sorted({k for k in keys if k not in self._mine and k not in self._seen
                         and k not in self._absent and k not in self._buffer.keys})
        if not wanted:
            return
        for row in self._rows_of(wanted):
            if len(self._seen) < _MINE_LIMIT:
                self._seen[(row[1], row[2])] = row

    def read(
        self, resource_type: str, id: str, *, restrict: Restrict | None = None
    ) -> StoredResource | None:
        if restrict is not None:
            if (resource_type, id) in self._buffer.keys:
                self.flush()
            self._drain()
            rows = self._repo._select(
                self._cur, *_restricted("res_type = ? AND res_id = ?", (resource_type, id),
                                        restrict, "resources"),
            )  # fmt: skip
            return _stored(self._ops, rows[0]) if rows else None
        row = self._current(resource_type, id)
        return _stored(self._ops, row) if row else None

    def search(self, query: SearchQuery, *, restrict: Restrict | None = None) -> SearchPage:
        if self._buffer and _may_read(query, self._buffer.types):
            self.flush()
        self._drain()
        return self._repo._search(self._cur, query, restrict)

    def search_many(self, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        """Several searches at once, as ``search`` each: on PostgreSQL the ones a single
        statement answers (no sort, include or total: a conditional write's criteria) go
        together in one round trip."""
        if self._buffer and any(_may_read(q, self._buffer.types) for q in queries):
            self.flush()
        return self._repo._search_many(self._cur, queries, self._take_later())

    # -- writes --------------------------------------------------------------
    def _stamp(
        self, resource: dict[str, Any], res_id: str, version: int, now: int
    ) -> dict[str, Any]:
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = format_instant(now)
        # resourceType, id and meta first, the way people expect to read a resource.
        content = {"resourceType": resource.get("resourceType"), "id": res_id, "meta": meta}
        for key, value in resource.items():
            if key not in content:
                content[key] = value
        return content

    def _prepare(
        self, resource: dict[str, Any], res_id: str, version: int
    ) -> tuple[dict[str, Any], bytes, IndexEntries, int]:
        now = self._repo.clock()
        content = self._transformed(self._stamp(resource, res_id, version, now))
        return (content, *self._checked(content), now)

    def _transformed(self, content: dict[str, Any]) -> dict[str, Any]:
        transforms = self._repo._transforms.get(content["resourceType"])
        if transforms:
            for transform in list(transforms.values()):
                content = transform(self, content)
        return content

    def serialised(self, content: dict[str, Any]) -> bytes:
        """``orjson.dumps(content)`` of the resource being written, made once: a transform
        that serialises it to look at it (translation scans the JSON text) and returns it
        unchanged leaves these bytes for the store. Transforms and checks never change a
        resource in place (a transform returns a new one), so the bytes stay its own."""
        dumped = self._dumped
        if dumped is not None and dumped[0] is content:
            return dumped[1]
        data = orjson.dumps(content)
        self._dumped = (content, data)
        return data

    def _checked(self, content: dict[str, Any]) -> tuple[bytes, IndexEntries]:
        # Validate after stamping: meta and id are then exactly what will be stored.
        validate_resource(content)
        if self._repo._checks:
            for check in list(self._repo._checks.values()):
                check(self, content)
        entries = index_resource(content, local_base=self._repo.local_base)
        data = self.serialised(content)
        self._dumped = None
        return data, entries

    def create(self, resource: dict[str, Any], *, id: str | None = None) -> WriteOutcome:
        return self._create(resource, id, "POST")

    def _create(self, resource: dict[str, Any], id: str | None, method: str) -> WriteOutcome:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            validate_resource(resource)  # raises the precise INVALID error
        res_type = resource["resourceType"]
        res_id = id or self._repo.new_id()
        content, data, entries, now = self._prepare(resource, res_id, 1)
        rid = self._next_rid()
        patient_key = entries.patients[0] if entries.patients else None
        self._buffer.resources.append(
            (rid, res_type, res_id, 1, now, False, method, patient_key, data.decode())
        )
        self._buffer.keys.add((res_type, res_id))
        self._absent.discard((res_type, res_id))
        self._remember(
            (res_type, res_id), (rid, res_type, res_id, 1, now, False, method, data, patient_key)
        )
        self._buffer.add_index(rid, res_type, patient_key, entries)
        stored = StoredResource(res_type, res_id, 1, now, False, method, data)
        self._after_write(stored, content)
        return WriteOutcome(stored, created=True)

    def _replace(self, rid: int, values: tuple[Any, ...]) -> None:
        """Overwrite the current row ``rid`` (its old version to history, its index rows
        dropped); deferred where the engine defers, since nothing reads its answer and the
        row itself is now in ``_mine``."""
        if self._ops.defers:
            self._later.append(self._ops.replace_current_statement(rid, values))
        else:
            self._ops.replace_current(self._cur, rid, values)

    def update(
        self,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        method: Literal["PUT", "PATCH"] = "PUT",
    ) -> WriteOutcome:
        if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
            validate_resource(resource)
            raise FhirError(Category.INVALID, "resource id is required for update",
                            expression=f"{resource.get('resourceType', 'Resource')}.id")
        res_type, res_id = resource.get("resourceType"), resource["id"]
        if not isinstance(res_type, str):
            validate_resource(resource)
            raise FhirError(Category.INVALID, "resourceType is required")
        row = self._current(res_type, res_id, lock=True)
        if row is None:
            if if_match is not None:
                raise FhirError(
                    Category.PRECONDITION_FAILED,
                    f"If-Match version {if_match} given but {res_type}/{res_id} does not exist",
                )
            # update-as-create: the version records the PUT (or PATCH) for history
            return self._create(resource, res_id, method)
        rid, current = row[0], int(row[3])
        if if_match is not None and if_match != current:
            raise FhirError(
                Category.PRECONDITION_FAILED,
                f"version conflict: If-Match {if_match} but current version is {current}",
            )
        version = current + 1
        now = self._repo.clock()
        content = self._transformed(self._stamp(resource, res_id, version, now))
        deleted = self._ops.to_bool(row[5])
        if not deleted and _same_content(content, self._ops.json_text(row[7])):
            # Nothing changed but meta's bookkeeping: no new version (as HAPI FHIR does), so a
            # sender that repeats its reference data (the same Organization, Practitioner,
            # Location in every message) costs a read, not a version, a history row and a
            # re-index each time. The answer is the current version.
            return WriteOutcome(_stored(self._ops, row), created=False, changed=False)
        data, entries = self._checked(content)
        patient_key = entries.patients[0] if entries.patients else None
        # The row was read through ``_current``, which flushed it first if still buffered.
        self._replace(rid, (version, now, False, method, patient_key, data.decode()))
        self._remember(
            (res_type, res_id),
            (rid, res_type, res_id, version, now, False, method, data, patient_key),
        )
        # Its new index rows wait in the buffer: replacing it again in this transaction
        # flushes them first (so a second update drops them like the first one's).
        self._buffer.keys.add((res_type, res_id))
        self._buffer.add_index(rid, res_type, patient_key, entries)
        stored = StoredResource(res_type, res_id, version, now, False, method, data)
        self._after_write(stored, content)
        return WriteOutcome(stored, created=deleted)

    def _after_write(self, stored: StoredResource, content: dict[str, Any] | None) -> None:
        hooks = self._repo._hooks.get(stored.resource_type)
        if hooks:
            for hook in list(hooks.values()):
                hook(self, stored, content)

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        row = self._current(resource_type, id, lock=True)
        if row is None or self._ops.to_bool(row[5]):
            return None
        rid, version = row[0], int(row[3]) + 1
        now = self._repo.clock()
        # The delete version keeps the last content (for history), stamped with its version.
        content = orjson.loads(self._ops.json_text(row[7]))
        data = orjson.dumps(self._stamp(content, id, version, now))
        self._replace(rid, (version, now, True, "DELETE", row[8], data.decode()))
        self._remember(
            (resource_type, id),
            (rid, resource_type, id, version, now, True, "DELETE", data, row[8]),
        )
        stored = StoredResource(resource_type, id, version, now, True, "DELETE", data)
        self._after_write(stored, None)
        return stored


class BaseRepository:
    """Shared repository logic; engines provide ``ops`` and connection handling."""

    ops: EngineOps
    dialect: str

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        new_id: IdFactory | None = None,
        local_base: str | None = None,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self.new_id: IdFactory = new_id or new_uuid
        # This server's FHIR base URL: absolute references under it are local resources,
        # any other absolute reference points at another server (see index_resource).
        self.local_base = local_base
        self._hooks: dict[str, dict[str, WriteHook]] = {}
        self._checks: dict[str, CheckHook] = {}
        self._commit_hooks: dict[str, Callable[[BaseTransaction], None]] = {}
        self._transforms: dict[str, dict[str, TransformHook]] = {}

    def add_write_transform(
        self, name: str, resource_types: Iterable[str], transform: TransformHook
    ) -> None:
        """Run ``content = transform(tx, content)`` on every resource of these types about to
        be written, right after stamping and before validation, so what it adds (standard
        codings beside local ones) is validated, indexed and stored like the rest. It must
        keep ``resourceType``, ``id`` and ``meta`` and return the input itself when it
        changes nothing. Registering a ``name`` again replaces the earlier transform."""
        for transforms in self._transforms.values():
            transforms.pop(name, None)
        for rtype in resource_types:
            self._transforms.setdefault(rtype, {})[name] = transform

    def add_commit_hook(self, name: str, hook: Callable[[BaseTransaction], None]) -> None:
        """Run ``hook(tx)`` once at the end of every write transaction, before it commits:
        components that keep per-resource bookkeeping (quality counters) write it here in
        one statement instead of one per resource, which would break the bulk flush of the
        resources themselves. Registering a ``name`` again replaces the earlier hook."""
        self._commit_hooks[name] = hook

    def add_write_check(self, name: str, check: CheckHook) -> None:
        """Run ``check(tx, content)`` on every resource about to be written (after structural
        validation, before indexing), inside the writing transaction; it may raise FhirError
        to refuse the write (data-quality rejections) — nothing of the write is kept then.
        Registering a ``name`` again replaces the earlier check."""
        self._checks[name] = check

    def add_write_hook(self, name: str, resource_types: Iterable[str], hook: WriteHook) -> None:
        """Run ``hook(tx, stored, content)`` after every write of these types, inside the
        writing transaction (``content`` is None for a delete). Components that must change
        with a resource — identity links for a Patient — commit with it or not at all.
        Registering a ``name`` again replaces the earlier hook (one app, one matcher)."""
        for hooks in self._hooks.values():
            hooks.pop(name, None)
        for rtype in resource_types:
            self._hooks.setdefault(rtype, {})[name] = hook

    # Engines implement these two.
    @contextmanager
    def _write_cursor(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    @contextmanager
    def _read_cursor(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    @contextmanager
    def transaction(self) -> Iterator[BaseTransaction]:
        with self._write_cursor() as cur:
            tx = BaseTransaction(self, cur)
            yield tx
            for hook in list(self._commit_hooks.values()):
                hook(tx)
            tx.flush()

    # -- reads ---------------------------------------------------------------
    def _select(self, cur: Any, where: str, params: Sequence[Any], tail: str = "") -> list[tuple]:
        cols = _ROW_SELECT.format(content=self.ops.content_select)
        cur.execute(_sql(self.ops, f"SELECT {cols} FROM resources WHERE {where} {tail}"), params)
        return list(cur.fetchall())

    def read(
        self, resource_type: str, id: str, *, restrict: Restrict | None = None
    ) -> StoredResource:
        with self._read_cursor() as cur:
            rows = self._select(
                cur, *_restricted("res_type = ? AND res_id = ?", (resource_type, id), restrict,
                                  "resources"),
            )  # fmt: skip
        if not rows:
            raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
        stored = _stored(self.ops, rows[0])
        if stored.deleted:
            raise FhirError(Category.GONE, f"{resource_type}/{id} has been deleted")
        return stored

    def vread(
        self, resource_type: str, id: str, version_id: int, *, restrict: Restrict | None = None
    ) -> StoredResource:
        key = "res_type = ? AND res_id = ? AND version = ?"
        with self._read_cursor() as cur:
            rows = self._select(
                cur, *_restricted(key, (resource_type, id, version_id), restrict, "resources")
            )
            if not rows:
                cols = _ROW_SELECT.format(content=self.ops.content_select)
                where, params = _restricted(
                    key, (resource_type, id, version_id), restrict, "resource_history"
                )
                cur.execute(
                    _sql(self.ops, f"SELECT {cols} FROM resource_history WHERE {where}"), params
                )
                rows = list(cur.fetchall())
        if not rows:
            raise FhirError(
                Category.NOT_FOUND, f"{resource_type}/{id} has no version {version_id}"
            )
        stored = _stored(self.ops, rows[0])
        if stored.deleted:
            raise FhirError(
                Category.GONE, f"version {version_id} of {resource_type}/{id} is a delete"
            )
        return stored

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: int | None = None,
        at: int | None = None,
        count: int = 20,
        offset: int = 0,
        restrict: Restrict | None = None,
    ) -> HistoryPage:
        where, params = [], []
        if resource_type is not None:
            where.append("res_type = ?")
            params.append(resource_type)
        if id is not None:
            where.append("res_id = ?")
            params.append(id)
        cond = " AND ".join(where) or "1 = 1"
        cols = _ROW_SELECT.format(content=self.ops.content_select)
        cur_cond, cur_params = _restricted(cond, params, restrict, "resources")
        old_cond, old_params = _restricted(cond, params, restrict, "resource_history")
        union = (
            f"SELECT {cols} FROM resources WHERE {cur_cond} "
            f"UNION ALL SELECT {cols} FROM resource_history WHERE {old_cond}"
        )
        union_params = [*cur_params, *old_params]
        if at is not None:
            # The version of each resource that was current at `at`.
            union = (
                f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY res_type, "
                f"res_id ORDER BY version DESC) AS rn FROM ({union}) v WHERE last_updated <= ?) "
                "w WHERE rn = 1"
            )
            union_params = [*union_params, at]
        filt, filt_params = "", []
        if since is not None:
            filt, filt_params = "WHERE last_updated >= ?", [since]
        with self._read_cursor() as cur:
            if id is not None:
                # under a restriction an invisible resource is as unknown as a missing one
                known, known_params = _restricted(
                    "res_type = ? AND res_id = ?", (resource_type, id), restrict, "resources"
                )
                cur.execute(
                    _sql(self.ops, f"SELECT 1 FROM resources WHERE {known}"), known_params
                )
                if cur.fetchone() is None:
                    raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
            cur.execute(
                _sql(self.ops, f"SELECT COUNT(*) FROM ({union}) h {filt}"),
                [*union_params, *filt_params],
            )
            total = int(cur.fetchone()[0])
            cur.execute(
                _sql(self.ops, f"SELECT * FROM ({union}) h {filt} ORDER BY last_updated DESC, "
                     "res_type, res_id, version DESC LIMIT ? OFFSET ?"),
                [*union_params, *filt_params, count, offset],
            )
            rows = cur.fetchall()
        entries = [_stored(self.ops, r) for r in rows]
        return HistoryPage(entries, total, has_next=offset + len(entries) < total)

    # -- search --------------------------------------------------------------
    def _load(self, cur: Any, rids: Sequence[int]) -> list[StoredResource]:
        if not rids:
            return []
        by_rid: dict[int, StoredResource] = {}
        for start in range(0, len(rids), 500):
            chunk = list(rids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            for row in self._select(cur, f"rid IN ({marks})", chunk):
                by_rid[int(row[0])] = _stored(self.ops, row)
        return [by_rid[r] for r in rids if r in by_rid]

    def _rids(self, cur: Any, sql_params: tuple[str, list[Any]]) -> list[int]:
        sql, params = sql_params
        cur.execute(sql, params)
        return [int(r[0]) for r in cur.fetchall()]

    def _search(
        self, cur: Any, query: SearchQuery, restrict: Restrict | None = None
    ) -> SearchPage:
        d = self.dialect
        total = None
        if query.count == 0 or query.summary == "count":
            if query.total != "none" or query.summary == "count":
                total = self._count(cur, query, restrict)
            return SearchPage([], [], total, has_next=False)
        page_sql, page_params = search_sql.search_page_sql(query, d, restrict=restrict)
        loaded: list[StoredResource] | None = None
        if not query.sort:
            # Without _sort a page is in rid order (search_page_sql's contract), so the rows
            # themselves come back in the same round trip, ordered by rid here; a sorted page
            # is read as rids first, then loaded.
            cols = _ROW_SELECT.format(content=self.ops.content_select)
            cur.execute(
                f"SELECT {cols} FROM resources WHERE rid IN ({page_sql}) ORDER BY rid",
                page_params,
            )
            rows = cur.fetchall()
            rids = [int(r[0]) for r in rows]
            loaded = [_stored(self.ops, r) for r in rows[: query.count]]
        else:
            rids = self._rids(cur, (page_sql, page_params))
        has_next = len(rids) > query.count
        rids = rids[: query.count]
        if query.total != "none":
            # The page query already fetched one row past the page: when it came back short
            # (or empty past the end) the total is known exactly without a COUNT, which is
            # the costly half of most selective searches. A page that came back short
            # right after the offset means nothing lies past it.
            if not has_next and (rids or query.offset == 0):
                total = query.offset + len(rids)
            else:
                total = self._count(cur, query, restrict)
        included = self._includes(cur, query, rids, restrict)
        matches = loaded if loaded is not None else self._load(cur, rids)
        return SearchPage(matches, self._load(cur, included), total, has_next)

    def _search_many(
        self, cur: Any, queries: Sequence[SearchQuery], later: Sequence[tuple[str, Any]] = ()
    ) -> list[SearchPage]:
        """``_search`` of each query, after the deferred statements ``later``. The queries one
        statement answers (see ``_one_statement``) go together where the engine sends
        statements together."""
        out: list[SearchPage | None] = [None] * len(queries)
        single = [i for i, q in enumerate(queries) if _one_statement(q)]
        if self.ops.defers and single:
            cols = _ROW_SELECT.format(content=self.ops.content_select)
            # Many `identifier=system|code` criteria of one type (a feed's conditional
            # creates) are one statement, not one each: the per-statement work of the driver
            # and the server was most of what a batch of device readings cost.
            pairs: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
            for i in single:
                pair = search_sql.token_pair(queries[i])
                if pair is not None:
                    pairs.setdefault(pair[:2], []).append((i, pair[2], pair[3]))
            grouped = {key: members for key, members in pairs.items() if len(members) > 1}
            in_groups = {i for members in grouped.values() for i, _s, _c in members}
            statements: list[tuple[str, Any]] = []
            plain = [i for i in single if i not in in_groups]
            for i in plain:
                page_sql, page_params = search_sql.search_page_sql(queries[i], self.dialect)
                statements.append((
                    f"SELECT {cols} FROM resources WHERE rid IN ({page_sql}) ORDER BY rid",
                    page_params,
                ))
            for (rtype, param), members in grouped.items():
                statements.append((
                    search_sql.token_pairs_sql(rtype, param, cols),
                    (orjson.dumps([[sy, co] for _i, sy, co in members]).decode(),),
                ))
            results = self.ops.run_searches(cur, later, statements)
            found: dict[int, list[tuple[Any, ...]]] = dict(zip(plain, results, strict=False))
            for members, rows in zip(grouped.values(), results[len(plain):], strict=True):
                by_pair: dict[int, list[tuple[Any, ...]]] = {}
                for row in rows:
                    by_pair.setdefault(int(row[0]), []).append(row[1:])
                for n, (i, _sy, _co) in enumerate(members, start=1):
                    found[i] = by_pair.get(n, [])
            for i, rows in found.items():
                count = queries[i].count
                out[i] = SearchPage([_stored(self.ops, r) for r in rows[:count]], [], None,
                                    has_next=len(rows) > count)
        else:
            self.ops.run_pipelined(cur, later)
        return [page if page is not None else self._search(cur, queries[i])
                for i, page in enumerate(out)]

    def _count(self, cur: Any, query: SearchQuery, restrict: Restrict | None = None) -> int:
        if query.total == "estimate" and query.summary != "count":
            return self._estimate(cur, query, restrict)
        sql, params = search_sql.search_count_sql(query, self.dialect, restrict=restrict)
        cur.execute(sql, params)
        return int(cur.fetchone()[0])

    def _estimate(self, cur: Any, query: SearchQuery, restrict: Restrict | None) -> int:
        """``_total=estimate`` (the HTTP default): exact up to ``TOTAL_EXACT_UP_TO`` matches
        past the page — a count that stops there — and beyond that, on PostgreSQL, the
        planner's estimate (never below what was counted; SQLite counts exactly). Counting
        every match of a code present in millions of rows is the tail of a search that reads
        only its first page."""
        limit = query.offset + query.count + TOTAL_EXACT_UP_TO
        sql, params = search_sql.search_count_sql(
            query, self.dialect, restrict=restrict, limit=limit
        )
        cur.execute(sql, params)
        counted = int(cur.fetchone()[0])
        if counted < limit:
            return counted
        if self.dialect != "postgresql":
            # SQLite keeps no row estimates a count could use; its databases are small.
            sql, params = search_sql.search_count_sql(query, self.dialect, restrict=restrict)
            cur.execute(sql, params)
            return int(cur.fetchone()[0])
        sql, params = search_sql.search_estimate_sql(query, self.dialect, restrict=restrict)
        cur.execute(sql, params)
        plan = cur.fetchone()[0]
        if isinstance(plan, str | bytes):
            plan = orjson.loads(plan)
        return max(counted, int(plan[0]["Plan"]["Plan Rows"]))

    def _includes(
        self, cur: Any, query: SearchQuery, rids: list[int], restrict: Restrict | None = None
    ) -> list[int]:
        if not rids or not (query.include or query.revinclude):
            return []
        seen = set(rids)
        found: list[int] = []
        frontier = list(rids)
        first = True
        # :iterate includes run again over what the previous round added, to a fixed point.
        while frontier:
            inc = query.include if first else [i for i in query.include if i.iterate]
            rev = query.revinclude if first else [i for i in query.revinclude if i.iterate]
            new: list[int] = []
            if inc:
                new += self._rids(
                    cur, search_sql.include_sql(inc, frontier, self.dialect, restrict=restrict)
                )
            if rev:
                new += self._rids(
                    cur, search_sql.revinclude_sql(rev, frontier, self.dialect, restrict=restrict)
                )
            frontier = [r for r in dict.fromkeys(new) if r not in seen]
            seen.update(frontier)
            found += frontier
            first = False
            if len(found) > 10_000:
                break
        return found

    def search(self, query: SearchQuery, *, restrict: Restrict | None = None) -> SearchPage:
        with self._read_cursor() as cur:
            return self._search(cur, query, restrict)

    def everything(
        self,
        patient_id: str,
        *,
        since: int | None = None,
        types: list[str] | None = None,
        count: int = 100,
        offset: int = 0,
        linked: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> SearchPage:
        self.read("Patient", patient_id, restrict=restrict)  # NOT_FOUND / GONE as for read
        ids = [patient_id, *linked] if linked else patient_id
        with self._read_cursor() as cur:
            rids = self._rids(
                cur,
                search_sql.everything_sql(
                    ids, since_us=since, types=types, count=count + 1, offset=offset,
                    dialect=self.dialect, restrict=restrict,
                ),
            )
            has_next = len(rids) > count
            rids = rids[:count]
            referenced = [
                r for r in self._rids(
                    cur, search_sql.everything_referenced_sql(
                        rids, dialect=self.dialect, restrict=restrict
                    )
                ) if r not in set(rids)
            ] if rids else []
            if types:
                allowed = set(types)
                extra = [s for s in self._load(cur, referenced) if s.resource_type in allowed]
            else:
                extra = self._load(cur, referenced)
            return SearchPage(self._load(cur, rids), extra, None, has_next)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        text = _component_sql(self.ops.ph, sql)
        with self._read_cursor() as cur:
            cur.execute(text, tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def lookup_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``query`` for a statement of the same shape at every call that looks things up
        by key (a request's authentication): an engine may plan it once (PostgreSQL)."""
        return self.query(sql, params)

    def access_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read-only ``SELECT`` over the FHIR index tables for access control
        (:func:`huitong.access.sql.compile_groups` reads a request's patient sets with it);
        ``?`` placeholders. Not for components: they keep to their own tables (``query``)."""
        if not sql.lstrip().upper().startswith("SELECT "):
            raise ValueError("access_query runs a single SELECT")
        with self._read_cursor() as cur:
            cur.execute(_sql(self.ops, sql), tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def counts_by_type(self) -> dict[str, int]:
        with self._read_cursor() as cur:
            cur.execute(
                _sql(self.ops, "SELECT res_type, COUNT(*) FROM resources WHERE deleted = ? "
                     "GROUP BY res_type ORDER BY res_type"),
                (False,),
            )
            return {t: int(n) for t, n in cur.fetchall()}
