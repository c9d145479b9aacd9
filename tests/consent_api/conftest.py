"""Fixtures of the consent API tests: the seeded region (opt-in) and its accounts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from consent_world import World

from huitong.access import Role
from huitong.store.repository import Repository


@pytest.fixture
def world(repo: Repository) -> Iterator[World]:
    w = World(repo)
    for name, role, kw in [
        ("clin-a", Role.CLINICIAN, {"org": "org-a", "practitioner": "pr-a"}),
        ("clin-b", Role.CLINICIAN, {"org": "org-b", "practitioner": "pr-b"}),
        ("pat-pa1", Role.PATIENT, {"patient_ids": ("pa1",)}),
        ("pat-pb1", Role.PATIENT, {"patient_ids": ("pb1",)}),
        ("admin", Role.PLATFORM_ADMIN, {}),
        ("auditor", Role.AUDITOR, {}),
    ]:
        w.account(name, role, **kw)
    yield w
    w.close()
