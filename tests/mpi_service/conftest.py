"""The identity service installed on each engine's empty repository (``repo``), golden
records numbered g0, g1, …; a module with its own ``mpi`` fixture overrides this one."""

from __future__ import annotations

import itertools

import pytest

from huitong.mpi.service import IdentityService
from huitong.store import Repository


@pytest.fixture
def mpi(repo: Repository) -> IdentityService:
    ids = (f"g{i}" for i in itertools.count())
    service = IdentityService(repo, clock=repo.clock, new_id=lambda: next(ids))
    service.install()
    return service
