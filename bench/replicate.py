"""Build a K-times database from a loaded one, in SQL, for the ten-times-the-load searches.

    python bench/replicate.py --source perf_1x --target hs_10x [--copies 10] [--force]
        [--references] [--admin postgresql://postgres@127.0.0.1:5432/postgres]

Loading 1.9 million resources over HTTP takes more than twenty minutes on the 2-core
benchmark machine (``bench/ingest.py --copies 10``) and needs the server and its whole
write pipeline; this builds the same shape in SQL from a database that already holds the
617 Synthea bundles, with no server:

1. ``CREATE DATABASE target TEMPLATE source`` (copy 0 is the source itself, untouched);
2. for each copy k = 1..K-1, ``INSERT … SELECT`` of every row of ``resources``,
   ``resource_history`` and the seven ``idx_*`` tables with a fresh rid
   (``rid + k·M``, M a round number above the source's largest rid, so copies follow one
   another in rid order as consecutive loads would) and every id rewritten consistently
   with the suffix ``-r{k}``: ``res_id``, ``target_id`` of reference rows, ``patient_key``,
   and the content's top-level ``id``. Every reference row of a copy therefore points into
   the same copy, as in a load of fresh bundles; values (names, codes, dates, identifiers)
   are the source's, repeated. The references *inside the JSON content* are rewritten only
   with ``--references`` (every literal ``"reference": "Type/id"``, by a regular expression
   over the text: about five times the cost of copying the rows). Searches, includes and
   ``$everything`` find resources through the index rows alone and return the content as
   stored, so the measured requests read and send the same amount either way; only a client
   following a returned reference of a copy would land in copy 0;
3. the secondary indexes of those tables are dropped before the copy and rebuilt after it
   (faster than maintaining them row by row), the rid sequence is moved past the last rid,
   and the database is ``VACUUM ANALYZE``d (what autovacuum would do after a bulk load).

Not replicated: the component tables (identity, quality findings, audit log, terminology).
Searches, reads, includes and ``$everything`` read only the resource and index tables, so
the measured requests see the K-times data; a server writing into the target would see
identity and audit state of the source only. Identifiers inside a copy are the source's, so
identifier searches return K resources. PostgreSQL only.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import psycopg

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLES = (
    "resources",
    "resource_history",
    "idx_string",
    "idx_token",
    "idx_reference",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_uri",
)
# jsonb's text form writes a key and its value as `"reference": "…"`; rewriting the
# literal Type/id references there keeps the content consistent with the index rows.
# Contained (`#x`), absolute and versioned references are left as they are.
_REFERENCE = r'("reference": "[A-Za-z]+/[A-Za-z0-9.-]+)"'


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def create_copy(admin: str, source: str, target: str, *, force: bool, wait_s: float) -> None:
    """``CREATE DATABASE target TEMPLATE source``, retried while someone is connected to the
    source (PostgreSQL refuses a template that is in use)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone()
        if exists:
            if not force:
                raise SystemExit(f"database {target} exists; pass --force to rebuild it")
            conn.execute(f'DROP DATABASE "{target}" WITH (FORCE)')
        deadline = time.monotonic() + wait_s
        while True:
            try:
                conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def _expression(column: str, k: int, step: int, references: bool) -> str:
    """The value of ``column`` in copy ``k``."""
    suffix = f"'-r{k}'"
    if column == "rid":
        return f"rid + {k * step}"
    if column in ("res_id", "target_id", "patient_key"):
        return f"{column} || {suffix}"
    if column == "content":
        content = (
            f"regexp_replace(content::text, '{_REFERENCE}', '\\1-r{k}\"', 'g')::jsonb"
            if references
            else "content"
        )
        return f"jsonb_set({content}, '{{id}}', to_jsonb(res_id || {suffix}))"
    return column


def _secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes on the copied tables that back no constraint."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = 'public' AND t.relname = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
        "ORDER BY t.relname, i.relname",
        (list(TABLES),),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def replicate(url: str, copies: int, *, references: bool = False) -> dict[str, int]:
    """Add copies 1..copies-1 to the database at ``url``; returns the row count per table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        top = int(conn.execute("SELECT COALESCE(MAX(rid), 0) FROM resources").fetchone()[0])  # type: ignore[index]
        hist = conn.execute("SELECT COALESCE(MAX(rid), 0) FROM resource_history").fetchone()
        top = max(top, int(hist[0]))  # type: ignore[index]
        step = 10 ** max(6, math.ceil(math.log10(top + 1)))
        indexes = _secondary_indexes(conn)
        _log(f"largest rid {top:,}; copy k gets rid + k·{step:,}; {len(indexes)} indexes rebuilt")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for table in TABLES:
            cols = _columns(conn, table)
            for k in range(1, copies):
                exprs = ", ".join(_expression(c, k, step, references) for c in cols)
                t0 = time.perf_counter()
                cur = conn.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) SELECT {exprs} FROM {table} "
                    f"WHERE rid < %s",
                    (step,),
                )
                _log(f"{table} copy {k}: {cur.rowcount:,} rows, {time.perf_counter() - t0:.1f} s")
        for name, definition in indexes:
            t0 = time.perf_counter()
            conn.execute(definition)
            _log(f"index {name}: {time.perf_counter() - t0:.1f} s")
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('resources', 'rid'), "
            "(SELECT MAX(rid) FROM resources))"
        )
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        _log(f"VACUUM ANALYZE: {time.perf_counter() - t0:.1f} s")
        counts = {}
        for table in TABLES:
            counts[table] = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--source", default="perf_1x", help="database to copy (not modified)")
    ap.add_argument("--target", default="hs_10x")
    ap.add_argument("--copies", type=int, default=10, help="K: the target holds K copies")
    ap.add_argument("--admin", default=DEFAULT_ADMIN, help="URL of a maintenance database")
    ap.add_argument("--force", action="store_true", help="drop the target first if it exists")
    ap.add_argument("--wait", type=float, default=600, help="seconds to wait for the source")
    ap.add_argument(
        "--references", action="store_true",
        help="also rewrite the references inside the JSON content (slower)",
    )
    args = ap.parse_args()
    if args.copies < 1:
        sys.exit("--copies must be at least 1")
    t0 = time.perf_counter()
    create_copy(args.admin, args.source, args.target, force=args.force, wait_s=args.wait)
    _log(f"{args.target} created from {args.source}")
    url = args.admin.rsplit("/", 1)[0] + f"/{args.target}"
    counts = replicate(url, args.copies, references=args.references)
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        pretty = size.fetchone()[0]  # type: ignore[index]
    for table, n in counts.items():
        print(f"{table:18} {n:>12,}")
    _log(f"done in {time.perf_counter() - t0:.0f} s; {args.target} is {pretty}")


if __name__ == "__main__":
    main()
