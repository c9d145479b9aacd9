"""Fixtures for the web pages: one small demo region and a few HL7 v2 messages in a SQLite
repository, served by the real application (FHIR API, ingest API and the pages)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_world import (
    SyncClient,
    WebWorld,
    build_world,
)

from huitong.store import open_repository


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    """The demo world on SQLite, shared by the page tests (they must not change it; tests
    that write use ``fresh_world``)."""
    path: Path = tmp_path_factory.mktemp("web") / "huitong.db"
    repo = open_repository(f"sqlite:///{path}")
    yield build_world(repo)
    repo.close()


@pytest.fixture
def fresh_world(tmp_path: Path) -> Iterator[WebWorld]:
    repo = open_repository(f"sqlite:///{tmp_path / 'huitong.db'}")
    yield build_world(repo, residents=2)
    repo.close()


@pytest.fixture
def web(world: WebWorld) -> Iterator[SyncClient]:
    client = SyncClient(world.app)
    yield client
    client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so a browser fixture can screenshot a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
