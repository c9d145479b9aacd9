"""Each terminology package exports exactly its public surface, and every name exists."""

from __future__ import annotations

import importlib

import pytest

import huitong.terminology

PACKAGES = ["huitong.terminology", "huitong.terminology.loaders",
            "huitong.terminology.units", "huitong.terminology.mapping"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name):
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


def test_top_level_surface():
    assert set(huitong.terminology.__all__) == {
        "OPERATION_DEFINITIONS", "STANDARD_SYSTEMS", "CodeSystemIndex", "Concept",
        "InMemoryTerminologySource", "MapSet", "Terminology", "TerminologySource",
        "TranslationResult", "build_index", "pinyin_keys", "translate_resource"}
    ops = {(name, rtype) for name, rtype, _, _ in huitong.terminology.OPERATION_DEFINITIONS}
    assert ops == {("lookup", "CodeSystem"), ("validate-code", "CodeSystem"),
                   ("subsumes", "CodeSystem"), ("expand", "ValueSet"),
                   ("validate-code", "ValueSet"), ("translate", "ConceptMap")}
