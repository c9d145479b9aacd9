"""Fixtures for the terminology tests: code systems loaded from the fixture files in
``data/`` (small extracts in the published layouts), value sets and concept maps."""

from __future__ import annotations

from typing import Any

import pytest
from term_data import (
    DATA,
    FIXED_MICROS,
    LOCAL_LAB,
    concept_maps,
    demo_code_system,
    value_sets,
)

from huitong.terminology import InMemoryTerminologySource, Terminology
from huitong.terminology.loaders import (
    load_atc,
    load_icd10_cn_clinical,
    load_local_code_list,
    load_loinc,
)


@pytest.fixture(scope="session")
def loaded() -> dict[str, dict[str, Any]]:
    return {
        "icd10cn": load_icd10_cn_clinical(DATA / "icd10_cn_clinical.csv", version="2.0"),
        "loinc": load_loinc(DATA / "Loinc.csv", version="2.77",
                            variants=[(DATA / "zhCN5LinguisticVariant.csv", "zh-CN")]),
        "atc": load_atc(DATA / "atc_ddd.csv", version="2025"),
        "local": load_local_code_list(DATA / "local_codes.csv", url=LOCAL_LAB, version="1",
                                      name="HospitalALab", publisher="Hospital A"),
    }


@pytest.fixture()
def source(loaded: dict[str, dict[str, Any]]) -> InMemoryTerminologySource:
    return InMemoryTerminologySource(
        [demo_code_system(), *loaded.values(), *value_sets(), *concept_maps()]
    )


@pytest.fixture()
def terms(source: InMemoryTerminologySource) -> Terminology:
    return Terminology(source, clock=lambda: FIXED_MICROS, new_id=lambda: "expansion-1")
