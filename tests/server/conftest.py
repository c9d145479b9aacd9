"""The FHIR API under test: ``create_app`` over the real repository (SQLite and PostgreSQL,
from the ``repo`` fixture in ``tests/conftest.py``), driven through httpx's ASGI transport
(:class:`server_helpers.Client`). The base URL is fixed, so Location headers and links can
be compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_helpers import BASE, MAX_BODY, NOW, Client

from huitong.config import Settings
from huitong.server import create_app
from huitong.store import Repository


@pytest.fixture
def settings() -> Settings:
    # The FHIR repository on its own (the identity service's golden records are tested in
    # tests/mpi_service and tests/ingest).
    return Settings.from_env(
        {}, database_url="unused", mpi="off", quality="off", auth="off", audit="off", base_url=BASE, max_body_bytes=MAX_BODY,
        default_page_size=10, max_page_size=50,
    )


@pytest.fixture
def client(repo: Repository, settings: Settings) -> Iterator[Client]:
    c = Client(create_app(repo, settings, clock=lambda: NOW))
    yield c
    c.close()


