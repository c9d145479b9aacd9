"""The real FHIR server over a fresh SQLite repository for the DICOM tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_test_client import FhirServer
from huitong.config import Settings
from huitong.server import create_app
from huitong.store import open_repository


@pytest.fixture
def fhir(tmp_path: Path) -> Iterator[FhirServer]:
    repo = open_repository(f"sqlite:///{tmp_path / 'dicom.db'}")
    # auth off: these tests are about conversion, not access control; the identity service
    # stays on, as in production (it adds golden Patient records of its own)
    settings = Settings.from_env({}, database_url="unused", auth="off",
                                 base_url="http://hie.test/fhir")
    server = FhirServer(create_app(repo, settings))
    yield server
    server.close()
    repo.close()
