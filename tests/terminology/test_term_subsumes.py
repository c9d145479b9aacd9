"""$subsumes — https://hl7.org/fhir/R4/codesystem-operation-subsumes.html."""

from __future__ import annotations

import pytest
from term_data import DEMO
from term_helpers import param

from huitong.fhir.errors import Category, FhirError
from huitong.terminology.loaders import ICD10_CN_URL


@pytest.mark.parametrize(("a", "b", "outcome"), [
    ("CVD", "HTN1", "subsumes"),
    ("HTN3", "CVD", "subsumed-by"),
    ("HTN", "htn", "equivalent"),
    ("MI", "HTN", "not-subsumed"),
    ("KD", "DKD", "subsumes"),  # via the second parent property
    ("DM", "DKD", "subsumes"),
])
def test_outcomes(terms, a, b, outcome):
    out = terms.subsumes({"system": DEMO, "codeA": a, "codeB": b})
    assert param(out, "outcome") == outcome


def test_codings_form_and_loaded_hierarchy(terms):
    out = terms.subsumes({"codingA": {"system": ICD10_CN_URL, "code": "E11"},
                          "codingB": {"system": ICD10_CN_URL, "code": "E11.200x002"}})
    assert param(out, "outcome") == "subsumes"


def test_errors(terms):
    with pytest.raises(FhirError) as exc:
        terms.subsumes({"system": DEMO, "codeA": "CVD", "codeB": "NOPE"})
    assert exc.value.category is Category.INVALID
    assert exc.value.issues[0].code == "code-invalid"
    with pytest.raises(FhirError) as exc:
        terms.subsumes({"codingA": {"system": DEMO, "code": "CVD"},
                        "codingB": {"system": "http://other", "code": "X"}})
    assert exc.value.category is Category.INVALID
    with pytest.raises(FhirError):
        terms.subsumes({"system": DEMO, "codeA": "CVD"})
