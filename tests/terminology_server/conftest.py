"""Terminology operations through the real app (``create_app`` over the ``repo`` fixture
from ``tests/conftest.py``: SQLite and PostgreSQL), with fixture code systems loaded by the
loaders from ``tests/terminology/data`` and stored by ``save_terminology_resource``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from term_server_helpers import (
    DATA,
    LOCAL_LAB,
    NOW,
    Client,
    concept_map,
    demo_code_system,
    value_sets,
)

from huitong.config import Settings
from huitong.server import create_app
from huitong.store import Repository
from huitong.terminology.loaders import load_icd10_cn_clinical, load_local_code_list, load_loinc
from huitong.terminology.persist import save_terminology_resource


@pytest.fixture(scope="session")
def loaded() -> list[dict[str, Any]]:
    return [
        load_icd10_cn_clinical(DATA / "icd10_cn_clinical.csv", version="2.0"),
        load_loinc(DATA / "Loinc.csv", version="2.77",
                   variants=[(DATA / "zhCN5LinguisticVariant.csv", "zh-CN")]),
        load_local_code_list(DATA / "local_codes.csv", url=LOCAL_LAB, version="1",
                             name="HospitalALab", publisher="Hospital A"),
    ]


@pytest.fixture
def stored(repo: Repository, loaded: list[dict[str, Any]]) -> dict[str, str]:
    """Every fixture resource stored; ``{url: id}``."""
    ids = {}
    for resource in [*loaded, demo_code_system(), *value_sets(), concept_map()]:
        ids[resource["url"]] = save_terminology_resource(repo, resource).stored.id
    return ids


@pytest.fixture
def client(repo: Repository, stored: dict[str, str]) -> Iterator[Client]:
    settings = Settings.from_env({}, database_url="unused", auth="off", mpi="off")
    c = Client(create_app(repo, settings, clock=lambda: NOW))
    yield c
    c.close()
