"""The FHIR server the mapped Bundles are posted to: ``create_app`` over a SQLite repository
in a temporary directory (the mapping is engine-neutral; the store's own tests cover
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from v2map_helpers import FhirClient

from huitong.config import Settings
from huitong.server import create_app
from huitong.store.engines import open_engine


@pytest.fixture
def fhir(tmp_path: Path) -> Iterator[FhirClient]:
    repo = open_engine("sqlite:///" + str(tmp_path / "db.sqlite"))
    # Mapping correctness, not the region's data-quality policy (tested in tests/quality_service).
    settings = Settings.from_env({}, database_url="unused", auth="off", quality="off",
                                 base_url="http://hie.test/fhir")
    client = FhirClient(create_app(repo, settings, clock=lambda: 1_700_000_000_000_000))
    yield client
    client.close()
    repo.close()
