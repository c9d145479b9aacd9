"""Engine fixtures for the search compiler tests: one test body, run on SQLite and PostgreSQL.

The databases are built straight from the migration files and filled with hand-written
``resources`` and index rows, so the SQL builders are tested without the store engines.
PostgreSQL is required: if it is unreachable the PostgreSQL runs FAIL, unless
``HUITONG_TEST_POSTGRES=skip``. Each test module gets its own scratch database, dropped at
the end.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from huitong.store.search_sql import Dialect

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "huitong" / "store" / "migrations"
ADMIN_URL = os.environ.get(
    "HUITONG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_INDEX_COLUMNS = {
    "string": ("norm", "exact"),
    "token": ("system", "code", "text"),
    "reference": ("target_type", "target_id", "url"),
    "date": ("lo", "hi"),
    "number": ("value", "lo", "hi"),
    "quantity": ("system", "code", "unit", "value", "lo", "hi"),
    "uri": ("value",),
}


class SearchDb:
    """A migrated database on one engine, with helpers to add rows and run ``(sql, params)``."""

    def __init__(self, dialect: Dialect, conn: Any) -> None:
        self.dialect = dialect
        self.conn = conn
        self._next_rid = 1
        self.names: dict[int, str] = {}

    def _mark(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def add(
        self,
        res_type: str,
        res_id: str,
        *,
        deleted: bool = False,
        updated: int = 0,
        patient_key: str | None = None,
        **rows: Sequence[tuple[Any, ...]],
    ) -> int:
        """Insert a current resource and its index rows (``string=[(param, grp, norm, exact)]``
        ... in the shapes of :mod:`huitong.fhir.index_model`); returns its rid. A deleted
        resource gets no index rows, as in the store: deleting removes them."""
        rid = self._next_rid
        self._next_rid += 1
        self.names[rid] = res_id
        self.conn.execute(
            self._mark(
                "INSERT INTO resources (rid, res_type, res_id, version, last_updated, deleted, "
                "method, patient_key, content) VALUES (?, ?, ?, 1, ?, ?, 'POST', ?, ?)"
            ),
            (
                rid,
                res_type,
                res_id,
                updated or rid * 1_000_000,
                deleted if self.dialect == "postgresql" else int(deleted),
                patient_key,
                f'{{"resourceType": "{res_type}", "id": "{res_id}"}}',
            ),
        )
        for kind, entries in ({} if deleted else rows).items():
            columns = _INDEX_COLUMNS[kind]
            marks = ", ".join("?" * (5 + len(columns)))
            sql = (
                f"INSERT INTO idx_{kind} (rid, res_type, patient_key, param, grp, "
                f"{', '.join(columns)}) VALUES ({marks})"
            )
            for row in entries:
                assert len(row) == 2 + len(columns), (kind, row)
                self.conn.execute(self._mark(sql), (rid, res_type, patient_key, *row))
        return rid

    def rids(self, sql_params: tuple[str, list[Any]]) -> list[int]:
        sql, params = sql_params
        cur = self.conn.execute(sql, params)
        return [int(row[0]) for row in cur.fetchall()]

    def ids(self, sql_params: tuple[str, list[Any]]) -> list[str]:
        """The res_ids the statement selects, in its order."""
        return [self.names[rid] for rid in self.rids(sql_params)]

    def scalar(self, sql_params: tuple[str, list[Any]]) -> Any:
        sql, params = sql_params
        return self.conn.execute(sql, params).fetchone()[0]


def _migration(dialect: str) -> str:
    """The whole schema: every shipped migration of ``dialect``, in order."""
    files = sorted((MIGRATIONS / dialect).glob("[0-9][0-9][0-9][0-9]_*.sql"))
    # each file is a script of its own (the runner applies them one by one): a last
    # statement without its semicolon must not swallow the next file's first
    return ";\n".join(f.read_text(encoding="utf-8") for f in files)


@pytest.fixture(scope="module")
def scratch_postgres() -> Iterator[psycopg.Connection[Any]]:
    """A connection to a new, migrated PostgreSQL database, dropped after the module."""
    if os.environ.get("HUITONG_TEST_POSTGRES", "").lower() == "skip":
        pytest.skip("PostgreSQL runs skipped by HUITONG_TEST_POSTGRES=skip")
    name = f"huitong_search_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required but unreachable at {ADMIN_URL}: {exc}. "
            "Start it, or set HUITONG_TEST_POSTGRES=skip to skip those runs."
        )
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute(_migration("postgresql"))  # type: ignore[arg-type,unused-ignore]
        yield conn
    finally:
        conn.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_search_db(dialect: Dialect, request: pytest.FixtureRequest) -> SearchDb:
    """An empty migrated database on ``dialect`` (PostgreSQL: the module's scratch database)."""
    if dialect == "sqlite":
        conn = sqlite3.connect(":memory:")
        conn.executescript(_migration("sqlite"))
        return SearchDb("sqlite", conn)
    pg = request.getfixturevalue("scratch_postgres")
    return SearchDb("postgresql", pg)
