"""Fixtures shared by every test: one test body, run on SQLite and on PostgreSQL.

PostgreSQL is required: if the server at ``HUITONG_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) cannot be reached, the PostgreSQL runs
FAIL. Set ``HUITONG_TEST_POSTGRES=skip`` to skip them on a machine without one; CI never does.
Each pytest worker gets its own scratch database, dropped at the end; tables are emptied
between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from huitong.store import Repository, open_repository

ADMIN_URL = os.environ.get(
    "HUITONG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ENGINES = ["sqlite", "postgresql"]
# Every table but the migration record is emptied between tests (components add tables).
_EMPTY_ALL = """
DO $$ DECLARE t text; BEGIN
  SELECT string_agg(quote_ident(tablename), ', ') INTO t FROM pg_tables
   WHERE schemaname = current_schema() AND tablename <> 'schema_migrations';
  IF t IS NOT NULL THEN EXECUTE 'TRUNCATE ' || t || ' RESTART IDENTITY'; END IF;
END $$;
"""


def _postgres_skipped() -> bool:
    return os.environ.get("HUITONG_TEST_POSTGRES", "").lower() == "skip"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test process, migrated to the latest schema."""
    if _postgres_skipped():
        pytest.skip("PostgreSQL runs skipped by HUITONG_TEST_POSTGRES=skip")
    name = f"huitong_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(
            f"PostgreSQL is required for the test suite but is unreachable at {ADMIN_URL}: "
            f"{exc}. Start it, or set HUITONG_TEST_POSTGRES=skip to skip those runs locally."
        )
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    open_repository(url).close()  # apply migrations once
    yield url
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty, migrated database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'huitong.db'}"
    url: str = request.getfixturevalue("postgres_url")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_EMPTY_ALL)
    return url


@pytest.fixture
def repo(engine_url: str) -> Iterator[Repository]:
    """An empty repository on each engine."""
    r = open_repository(engine_url)
    yield r
    r.close()


@pytest.fixture
def pg_repo(postgres_url: str) -> Iterator[Repository]:
    """An empty repository on PostgreSQL alone (what only that engine does)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(_EMPTY_ALL)
    r = open_repository(postgres_url)
    yield r
    r.close()
