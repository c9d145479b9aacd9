"""The production engine: PostgreSQL with JSONB content.

A psycopg 3 connection pool; writes are buffered and flushed with ``COPY``, reads and updates
lock the current row (``FOR UPDATE``) so concurrent writers to one resource serialise.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.pq import ExecStatus
from psycopg_pool import ConnectionPool

from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.store._base import (
    INDEX_TABLES,
    RESOURCE_COLUMNS,
    BaseRepository,
    EngineOps,
    _check_component_sql,
)
from huitong.store.migrate import pending
from huitong.store.pg_reads import AsyncReads

_TUPLES_OK = ExecStatus.TUPLES_OK

__all__ = ["PostgresRepository"]


# Up to this many rows a flush sends one INSERT per table in one pipeline; more go by COPY.
_PIPELINE_ROWS = 20000
# The column types of the FHIR tables; any other column is text.
_COLUMN_TYPES: dict[str | tuple[str, str], str] = {
    "rid": "bigint", "version": "integer", "last_updated": "bigint", "deleted": "boolean",
    "grp": "integer", "content": "jsonb",
    ("idx_date", "lo"): "bigint", ("idx_date", "hi"): "bigint",
    **{(t, c): "double precision" for t in ("idx_number", "idx_quantity")
       for c in ("value", "lo", "hi")},
}


@lru_cache(maxsize=64)
def _json_insert(table: str, columns: tuple[str, ...]) -> str:
    """``INSERT`` of rows sent as one JSON array of arrays (see ``bulk_insert_many``)."""
    exprs = []
    for i, col in enumerate(columns):
        kind = _COLUMN_TYPES.get((table, col)) or _COLUMN_TYPES.get(col, "text")
        if kind == "text":
            exprs.append(f"r->>{i}")
        elif kind == "jsonb":
            exprs.append(f"(r->{i})::jsonb")  # the resource itself, embedded as JSON
        elif kind == "double precision" and col in ("lo", "hi"):
            # JSON has no infinities: an open bound travels as null (only bounds are open)
            bound = "-Infinity" if col == "lo" else "Infinity"
            exprs.append(f"COALESCE((r->>{i})::double precision, '{bound}')")
        else:
            exprs.append(f"(r->>{i})::{kind}")
    # jsonb, not json: a json value is text, re-read from its start by every ->> of every
    # row (21 us of server CPU a row in a scratch table); jsonb is parsed once and each field
    # is then a lookup (12.5 us; COPY 9). The content column was going to be jsonb anyway.
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} "
            "FROM jsonb_array_elements(%s::jsonb) AS t(r)")


def _json_rows(columns: Sequence[str], rows: list[tuple]) -> str:
    if "content" in columns:
        at = columns.index("content")
        rows = [(*row[:at], orjson.Fragment(row[at]), *row[at + 1:]) for row in rows]
    return orjson.dumps(rows).decode()  # text: psycopg would send bytes as bytea


_REPLACE_CURRENT = (
    "WITH h AS (INSERT INTO resource_history ({cols}) SELECT {cols} FROM resources "
    "WHERE rid = %(rid)s)"
    + "".join(f", d_{name} AS (DELETE FROM idx_{name} WHERE rid = %(rid)s)"
              for name in INDEX_TABLES)
    + " UPDATE resources SET version = %(version)s, last_updated = %(last_updated)s, "
    "deleted = %(deleted)s, method = %(method)s, patient_key = %(patient_key)s, "
    "content = %(content)s WHERE rid = %(rid)s"
).format(cols=", ".join(RESOURCE_COLUMNS))


class PostgresOps(EngineOps):
    dialect = "postgresql"
    ph = "%s"
    content_select = "content::text"
    defers = True

    def run_pipelined(
        self, cur: Any, later: Sequence[tuple[str, Any]], sql: str | None = None,
        params: Any = (),
    ) -> None:
        # One pipeline, one round trip: the deferred statements on a cursor of their own
        # (their answers are not wanted), then ``sql`` on ``cur``. Leaving the pipeline
        # syncs; the first failure among them is raised there.
        if not later:
            if sql is not None:
                cur.execute(sql, params)
            return
        conn = cur.connection
        with conn.pipeline():
            side = conn.cursor()
            for text, values in later:
                side.execute(text, values)
            if sql is not None:
                cur.execute(sql, params)

    def run_searches(
        self, cur: Any, later: Sequence[tuple[str, Any]], statements: Sequence[tuple[str, Any]]
    ) -> list[list[tuple[Any, ...]]]:
        conn = cur.connection
        with conn.pipeline():
            side = conn.cursor()
            for text, values in later:
                side.execute(text, values)
            cursors = []
            for text, values in statements:
                c = conn.cursor()
                c.execute(text, values)
                cursors.append(c)
        return [list(c.fetchall()) if self.returns_rows(c) else [] for c in cursors]

    def returns_rows(self, cur: Any) -> bool:
        # Asked of the result itself: psycopg's ``description`` builds a Column object per
        # column on every call, a measurable cost on the many small statements of a message.
        res = cur.pgresult
        return res is not None and (res.nfields > 0 or res.status == _TUPLES_OK)

    def lock_keys(self, cur: Any, keys: Sequence[str]) -> None:
        # Transaction-scoped advisory locks on 64-bit hashes of the keys: concurrent writers
        # of the same key queue here, and the second then sees the first one's commit.
        # Hashed here, not in SQL: a key may hold any text, NUL included. Taken in ascending
        # hash order (the array's order, which unnest keeps), so no two transactions can
        # each hold a lock the other waits for.
        hashes = sorted(
            int.from_bytes(
                hashlib.blake2b(k.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                "big", signed=True,
            )
            for k in keys
        )
        if len(hashes) == 1:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (hashes[0],))
        else:
            cur.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) WITH ORDINALITY "
                "AS t(k, n) ORDER BY n",
                (hashes,),
            )

    def allocate_rids(self, cur: Any, n: int, after: int) -> list[int]:
        # The sequence never hands out a value twice, so `after` needs no special care.
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('resources', 'rid')) "
            "FROM generate_series(1, %s)",
            (n,),
        )
        return [int(r[0]) for r in cur.fetchall()]

    def replace_current(self, cur: Any, rid: int, values: tuple[Any, ...]) -> None:
        # One statement, one round trip instead of nine: data-modifying CTEs and the main
        # UPDATE all run on the statement's snapshot, so the history copy reads the version
        # being replaced. (Transactions defer it: replace_current_statement.)
        cur.execute(*self.replace_current_statement(rid, values))

    def replace_current_statement(self, rid: int, values: tuple[Any, ...]) -> tuple[str, Any]:
        version, last_updated, deleted, method, patient_key, content = values
        return _REPLACE_CURRENT, {
            "rid": rid, "version": version, "last_updated": last_updated, "deleted": deleted,
            "method": method, "patient_key": patient_key, "content": content,
        }

    def bulk_insert_many(
        self, cur: Any, batches: Sequence[tuple[str, Sequence[str], list[tuple]]],
        later: Sequence[tuple[str, Any]] = (),
    ) -> None:
        # Up to a few thousand rows (a message's or a feed batch's resources): one multi-row
        # INSERT per table, sent in one pipeline with the deferred statements, one round trip
        # for all. COPY pays two round trips per table, and a statement per row (executemany)
        # pays the driver's and the server's per-statement work a hundred times a message;
        # COPY wins only once there are many rows to stream.
        if sum(len(rows) for _t, _c, rows in batches) > _PIPELINE_ROWS:
            self.run_pipelined(cur, later)
            for table, columns, rows in batches:
                self.bulk_insert(cur, table, columns, rows)
            return
        with cur.connection.pipeline():
            if later:
                side = cur.connection.cursor()
                for text, values in later:
                    side.execute(text, values)
            for table, columns, rows in batches:
                # One statement per table whatever the row count, its rows as one JSON
                # parameter (orjson writes it in C; the server reads it in C). The text stays
                # the same, so the server plans it once per connection; the driver neither
                # scans a placeholder per value (multi-row VALUES) nor quotes every array
                # element in Python (unnest of arrays), each of which cost more than COPY.
                cur.execute(_json_insert(table, tuple(columns)), (_json_rows(columns, rows),))

    def bulk_insert(self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def lock_current(self) -> str:
        return " FOR UPDATE"

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.UniqueViolation)

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.OperationalError)


class PostgresRepository(BaseRepository):
    """A repository in a PostgreSQL database (``postgresql://user@host:port/db``)."""

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        upgrade: bool = True,
        clock: Clock | None = None,
        new_id: IdFactory | None = None,
        local_base: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        super().__init__(clock=clock, new_id=new_id, local_base=local_base)
        self.ops = PostgresOps()
        self._url = url
        self._async_reads: AsyncReads | None = None
        self._generic_pool: ConnectionPool | None = None
        self._generic_lock = threading.Lock()
        self._pool = ConnectionPool(
            # Waiting for a connection is bounded: when the database is away a caller gets
            # UNAVAILABLE in seconds (an HL7 sender its AE) rather than hanging on the pool.
            url, min_size=min_size, max_size=max_size, open=False, timeout=5,
            kwargs={
                # Reads run statement by statement (one round trip each): under READ
                # COMMITTED a BEGIN/COMMIT around them adds two round trips and no
                # consistency, since every statement takes its own snapshot either way.
                # Writes open their transaction explicitly (conn.transaction()).
                "autocommit": True,
                "application_name": "huitong",
                # JIT compilation costs tens of milliseconds on the first run of a costly
                # plan, which is exactly the p95 tail of searches; plans here are short.
                # Prepared statements (psycopg prepares after 5 runs) must not fall back to
                # a generic plan: index values are skewed (one LOINC code in 30% of rows,
                # another in 0.01%), so each execution is planned for its own parameters.
                "options": "-c jit=off -c plan_cache_mode=force_custom_plan",
            },
        )
        try:
            self._pool.open(wait=True, timeout=30)
        except psycopg.Error as exc:
            raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc
        self.applied_migrations: list[int] = []
        if upgrade:
            self.applied_migrations = self.upgrade()
        elif self.pending_migrations():
            raise FhirError(
                Category.UNAVAILABLE,
                "database schema is out of date: run `huitong db upgrade` / "
                "数据库结构版本过旧：请运行 `huitong db upgrade`",
            )

    def _applied(self, conn: psycopg.Connection) -> set[int]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        return {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}

    def pending_migrations(self) -> list[int]:
        with self._pool.connection() as conn:
            return [m.version for m in pending("postgresql", self._applied(conn))]

    def upgrade(self) -> list[int]:
        done = []
        with self._pool.connection() as conn:
            # One upgrader at a time across processes.
            conn.execute("SELECT pg_advisory_lock(4811)")
            try:
                for m in pending("postgresql", self._applied(conn)):
                    with conn.transaction():
                        conn.execute(m.sql)  # type: ignore[arg-type]
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (m.version, m.name),
                        )
                    done.append(m.version)
            finally:
                conn.execute("SELECT pg_advisory_unlock(4811)")
                conn.commit()
        return done

    @contextmanager
    def _write_cursor(self) -> Iterator[Any]:
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.OperationalError as exc:
            raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc

    @contextmanager
    def _read_cursor(self) -> Iterator[Any]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except psycopg.OperationalError as exc:
            raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc

    def _generic(self) -> ConnectionPool:
        """A few connections whose prepared statements run on a generic plan (opened on first
        use): for the statements that have the same shape for every request and look
        things up by key, which the main pool would plan afresh at every execution."""
        with self._generic_lock:
            if self._generic_pool is None:
                pool = ConnectionPool(
                    self._url, min_size=1, max_size=4, open=False, timeout=5,
                    kwargs={"autocommit": True, "application_name": "huitong",
                            "options": "-c jit=off -c plan_cache_mode=force_generic_plan"},
                )
                try:
                    pool.open(wait=True, timeout=30)
                except psycopg.Error as exc:
                    raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc
                self._generic_pool = pool
            return self._generic_pool

    def _generic_select(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._generic().connection() as conn:
                cur = conn.execute(sql.replace("?", "%s"), tuple(params), prepare=True)
                return [tuple(row) for row in cur.fetchall()]
        except psycopg.OperationalError as exc:
            raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc

    def access_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """As the base class, planned once per connection: the statement (a request's
        patient sets, see access/sql.py) has the same shape for every request of a role, its
        lookups are all by id, and planning its dozen subqueries costs ~10 ms — twenty times
        running them. So this one statement is prepared and runs on a generic plan (the
        connections of ``_generic``), while searches keep the per-value plans the main pool
        is set to (skewed index values)."""
        if not sql.lstrip().upper().startswith("SELECT "):
            raise ValueError("access_query runs a single SELECT")
        return self._generic_select(sql, params)

    def lookup_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """As ``query``, on a generic plan (see ``_generic``): a request's authentication
        statement (token, share-code grants, break-glass, access-facts check) took 0.55 ms
        planned afresh each time and 0.27 ms planned once — the whole difference between a
        clinician's request and a system client's."""
        _check_component_sql(sql)
        return self._generic_select(sql, params)

    def async_reads(self) -> AsyncReads:
        """Reads by id on the event loop (the server's fast path, store/pg_reads.py): a few
        connections of their own, opened on first use."""
        if self._async_reads is None:
            self._async_reads = AsyncReads(self._url)
        return self._async_reads

    def close(self) -> None:
        if self._async_reads is not None:
            self._async_reads.close()
        if self._generic_pool is not None:
            self._generic_pool.close()
        self._pool.close()
