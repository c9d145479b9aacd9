"""$validate-code on CodeSystems and ValueSets.

https://hl7.org/fhir/R4/codesystem-operation-validate-code.html and
https://hl7.org/fhir/R4/valueset-operation-validate-code.html
"""

from __future__ import annotations

import pytest
from term_data import DEMO
from term_helpers import param

from huitong.fhir.errors import Category, FhirError

CVD = "http://example.org/vs/cvd"


def test_code_system_form_valid_and_unknown(terms):
    ok = terms.validate_code({"url": DEMO, "code": "HTN"})
    assert param(ok, "result") is True and param(ok, "display") == "Hypertension"
    assert param(ok, "message") is None
    bad = terms.validate_code({"url": DEMO, "code": "NOPE"})
    assert param(bad, "result") is False and "NOPE" in param(bad, "message")


def test_display_checked_against_all_designations(terms):
    assert param(terms.validate_code({"url": DEMO, "code": "HTN", "display": "高血压"}),
                 "result") is True
    assert param(terms.validate_code({"url": DEMO, "code": "HTN", "display": "hypertension"}),
                 "result") is True
    wrong = terms.validate_code({"url": DEMO, "code": "HTN", "display": "Diabetes"})
    assert param(wrong, "result") is False
    assert "Hypertension" in param(wrong, "message")


def test_display_language_changes_returned_display(terms):
    out = terms.validate_code({"url": DEMO, "code": "MI", "displayLanguage": "zh-CN"})
    assert param(out, "display") == "心肌梗死"


def test_abstract_and_inactive(terms):
    assert param(terms.validate_code({"url": DEMO, "code": "GRP"}), "result") is False
    assert param(terms.validate_code({"url": DEMO, "code": "GRP", "abstract": "true"}),
                 "result") is True
    old = terms.validate_code({"url": DEMO, "code": "OLD"})
    assert param(old, "result") is True and "inactive" in param(old, "message")


def test_coding_and_codeable_concept_forms(terms):
    assert param(terms.validate_code({"url": DEMO, "coding": {"system": DEMO, "code": "DM"}}),
                 "result") is True
    mismatch = terms.validate_code({"url": DEMO, "coding": {"system": "http://x", "code": "DM"}})
    assert param(mismatch, "result") is False
    cc = {"coding": [{"system": DEMO, "code": "NOPE"}, {"system": DEMO, "code": "DM2"}]}
    assert param(terms.validate_code({"url": DEMO, "codeableConcept": cc}), "result") is True
    none_ok = {"coding": [{"system": DEMO, "code": "NOPE"}, {"system": DEMO, "code": "NADA"}]}
    out = terms.validate_code({"url": DEMO, "codeableConcept": none_ok})
    assert param(out, "result") is False and "NADA" in param(out, "message")


def test_inline_code_system_parameter(terms):
    cs = {"resourceType": "CodeSystem", "url": "http://inline", "content": "complete",
          "concept": [{"code": "a", "display": "A"}]}
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "codeSystem", "resource": cs}, {"name": "code", "valueCode": "a"}]}
    assert param(terms.validate_code(body), "result") is True


@pytest.mark.parametrize(("code", "expected"), [
    ("CVD", True), ("HTN3", True), ("MI", True), ("DM", False), ("NOPE", False),
])
def test_value_set_form_filter_membership(terms, code, expected):
    out = terms.validate_code_in_value_set({"url": CVD, "system": DEMO, "code": code})
    assert param(out, "result") is expected


def test_value_set_include_of_value_set_with_exclude(terms):
    url = "http://example.org/vs/cvd-no-mi"
    assert param(terms.validate_code_in_value_set({"url": url, "system": DEMO, "code": "HTN"}),
                 "result") is True
    out = terms.validate_code_in_value_set({"url": url, "system": DEMO, "code": "MI"})
    assert param(out, "result") is False and "not in value set" in param(out, "message")


def test_value_set_listed_codes_and_unknown_system(terms):
    url = "http://example.org/vs/listed"
    out = terms.validate_code_in_value_set({"url": url, "system": DEMO, "code": "DM2",
                                            "display": "T2DM"})
    assert param(out, "result") is True  # the ValueSet's own display is accepted
    listed = terms.validate_code_in_value_set(
        {"url": url, "coding": {"system": "http://unknown.example/cs", "code": "X1"}})
    assert param(listed, "result") is True and param(listed, "display") == "Something listed"
    unlisted = terms.validate_code_in_value_set(
        {"url": url, "system": "http://unknown.example/cs", "code": "X2"})
    assert param(unlisted, "result") is False


def test_value_set_errors(terms):
    with pytest.raises(FhirError) as exc:
        terms.validate_code_in_value_set({"url": "http://none", "system": DEMO, "code": "X"})
    assert exc.value.category is Category.NOT_FOUND
    with pytest.raises(FhirError) as exc:
        terms.validate_code_in_value_set({"url": CVD, "code": "HTN"})
    assert exc.value.category is Category.INVALID  # no system
    with pytest.raises(FhirError) as exc:
        terms.validate_code_in_value_set({"url": CVD, "system": DEMO, "code": "HTN",
                                          "coding": {"system": DEMO, "code": "HTN"}})
    assert exc.value.category is Category.INVALID
    with pytest.raises(FhirError) as exc:
        terms.validate_code_in_value_set(
            {"url": "http://example.org/vs/loop-a", "system": DEMO, "code": "HTN"})
    assert exc.value.category is Category.INVALID


def test_loaded_chinese_edition_membership(terms):
    out = terms.validate_code_in_value_set({
        "url": "http://example.org/vs/icd-cn",
        "system": "http://huitong.example/fhir/CodeSystem/icd-10-cn-clinical",
        "code": "i10.x00x002", "display": "原发性高血压"})  # caseSensitive false; synonym
    assert param(out, "result") is True and param(out, "display") == "高血压"
