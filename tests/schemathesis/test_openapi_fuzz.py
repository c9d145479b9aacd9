"""Schemathesis against the server's own OpenAPI description (``/fhir/openapi.json``).

Every operation the document describes is called, in-process through the ASGI app, with
requests generated from its schema (valid and invalid ones: schemathesis negative mode
mutates path, query, headers and bodies). The property is the issue's: no input yields a
5xx, and every 4xx carries an OperationOutcome. Bounded examples per operation keep the
run short; the database is the real one on each engine, seeded with a Patient so that
reads, compartments and ``$everything`` reach the stored-data paths too.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, settings

import schemathesis
from huitong.config import Settings
from huitong.server import create_app
from huitong.store import open_repository

BASE = "http://hie.test/fhir"
# Examples per operation and engine (~66 operations): enough to walk every parameter's
# shape, short enough for the whole folder to stay near a minute on two cores.
EXAMPLES = 4
# tests/conftest.py's emptying statement (a module-scoped app cannot use its per-test
# engine_url fixture, and "conftest" is ambiguous to import once several folders run)
_EMPTY_ALL = """
DO $$ DECLARE t text; BEGIN
  SELECT string_agg(quote_ident(tablename), ', ') INTO t FROM pg_tables
   WHERE schemaname = current_schema() AND tablename <> 'schema_migrations';
  IF t IS NOT NULL THEN EXECUTE 'TRUNCATE ' || t || ' RESTART IDENTITY'; END IF;
END $$;
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    # One app per engine for the whole module: building the app and emptying the database
    # per operation would cost more than the requests themselves.
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'huitong.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_EMPTY_ALL)
    repo = open_repository(url)
    app = create_app(
        repo,
        Settings.from_env(
            {},
            database_url="unused",
            mpi="off",
            quality="off",
            auth="off",
            audit="off",
            base_url=BASE,
            max_body_bytes=200_000,
        ),
        clock=lambda: 1_700_000_000_000_000,
    )
    with repo.transaction() as tx:
        tx.create({"resourceType": "Patient", "name": [{"family": "王"}]}, id="p1")
        tx.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "bp"},
                "subject": {"reference": "Patient/p1"},
            },
            id="o1",
        )
    yield schemathesis.openapi.from_asgi("/fhir/openapi.json", app)
    repo.close()


schema = schemathesis.pytest.from_fixture("api_schema")


def _is_outcome(body: bytes) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(doc, dict)
        and doc.get("resourceType") == "OperationOutcome"
        and bool(doc.get("issue"))
    )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_no_server_error_and_outcomes(case: schemathesis.Case) -> None:
    response = case.call()
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    if 400 <= response.status_code < 500:
        assert _is_outcome(response.content), (
            f"{where}: {response.status_code} without an OperationOutcome: {response.text[:300]}"
        )
