"""$translate — https://hl7.org/fhir/R4/conceptmap-operation-translate.html."""

from __future__ import annotations

import pytest
from term_data import DEMO, LOCAL_DX, LOCAL_LAB
from term_helpers import param, params

from huitong.fhir.errors import Category, FhirError

LAB_MAP = "http://example.org/cm/lab-to-loinc"


def test_forward_match(terms):
    out = terms.translate({"url": LAB_MAP, "system": LOCAL_LAB, "code": "LAB-GLU"})
    assert param(out, "result") is True
    assert params(out, "match") == [{
        "equivalence": "equivalent",
        "concept": {"system": "http://loinc.org", "code": "2345-7",
                    "display": "Glucose [Mass/volume] in Serum or Plasma"},
        "source": LAB_MAP}]
    assert " / " in param(out, "message")


def test_unmatched_and_unknown_code(terms):
    out = terms.translate({"url": LAB_MAP, "system": LOCAL_LAB, "code": "LAB-NONE"})
    assert param(out, "result") is False
    assert params(out, "match") == [{"equivalence": "unmatched", "source": LAB_MAP}]
    none = terms.translate({"url": LAB_MAP, "system": LOCAL_LAB, "code": "LAB-XYZ"})
    assert param(none, "result") is False and params(none, "match") == []


def test_reverse_swaps_direction(terms):
    out = terms.translate({"system": "http://loinc.org", "code": "2160-0", "reverse": "true"})
    assert params(out, "match") == [{
        "equivalence": "narrower", "concept": {"system": LOCAL_LAB, "code": "LAB-CR"},
        "source": LAB_MAP}]


def test_dependency_required_for_dependent_target(terms):
    base = {"url": LAB_MAP, "system": LOCAL_LAB, "code": "LAB-DEP"}
    assert param(terms.translate(base), "result") is False
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": LAB_MAP},
        {"name": "coding", "valueCoding": {"system": LOCAL_LAB, "code": "LAB-DEP"}},
        {"name": "dependency", "part": [
            {"name": "element", "valueUri": "http://example.org/specimen"},
            {"name": "concept", "valueCodeableConcept": {"coding": [{"code": "BLD"}]}}]}]}
    assert param(terms.translate(body), "result") is True


def test_target_system_filter_and_scope_selection(terms):
    found = terms.translate({"system": LOCAL_LAB, "code": "LAB-GLU",
                             "targetsystem": "http://snomed.info/sct"})
    assert param(found, "result") is False
    scoped = terms.translate({"source": "http://example.org/vs/local-lab",
                              "target": "http://loinc.org/vs", "system": LOCAL_LAB,
                              "code": "LAB-GLU"})
    assert param(scoped, "result") is True


def test_unmapped_modes(terms):
    other = terms.translate({"url": "http://example.org/cm/dx", "system": LOCAL_DX,
                             "code": "tnb"})  # other-map → found in the fallback map
    assert params(other, "match")[0]["concept"]["code"] == "DM"
    fixed = terms.translate({"url": "http://example.org/cm/dx", "system": LOCAL_DX,
                             "code": "zzz"})  # other-map → fallback's fixed code
    assert params(fixed, "match")[0] == {
        "equivalence": "inexact", "concept": {"system": DEMO, "code": "GRP",
                                              "display": "Grouping only"},
        "source": "http://example.org/cm/dx-fallback"}
    provided = terms.translate({"url": "http://example.org/cm/provided",
                                "system": "http://example.org/cs/same", "code": "HTN"})
    assert params(provided, "match")[0]["equivalence"] == "equal"
    assert params(provided, "match")[0]["concept"] == {"system": DEMO, "code": "HTN"}


def test_codeable_concept_and_errors(terms):
    cc = {"coding": [{"system": LOCAL_LAB, "code": "LAB-XYZ"},
                     {"system": LOCAL_LAB, "code": "LAB-GLU"}]}
    out = terms.translate({"url": LAB_MAP, "codeableConcept": cc})
    assert param(out, "result") is True and len(params(out, "match")) == 1
    with pytest.raises(FhirError) as exc:
        terms.translate({"url": "http://nope", "system": LOCAL_LAB, "code": "X"})
    assert exc.value.category is Category.NOT_FOUND
    with pytest.raises(FhirError) as exc:
        terms.translate({"url": LAB_MAP})
    assert exc.value.category is Category.INVALID
