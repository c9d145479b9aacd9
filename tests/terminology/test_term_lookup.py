"""$lookup — https://hl7.org/fhir/R4/codesystem-operation-lookup.html."""

from __future__ import annotations

import pytest
from term_data import DEMO, demo_code_system
from term_helpers import param, params

from huitong.fhir.errors import Category, FhirError
from huitong.terminology import InMemoryTerminologySource, Terminology


def test_lookup_returns_name_version_display_designations_properties(terms):
    out = terms.lookup({"system": DEMO, "code": "HTN"})
    assert out["resourceType"] == "Parameters"
    names = [p["name"] for p in out["parameter"]]
    assert names[:3] == ["name", "version", "display"]
    assert param(out, "name") == "Demo" and param(out, "version") == "1"
    assert param(out, "display") == "Hypertension"
    assert params(out, "designation") == [{"language": "zh-CN", "value": "高血压"}]
    props = {(p["code"], p["value"]) for p in params(out, "property")}
    assert {("organ", "vessel"), ("parent", "CVD"), ("child", "HTN1"), ("child", "HTN3"),
            ("inactive", False)} <= props


def test_lookup_display_language_and_property_selection(terms):
    out = terms.lookup([("system", DEMO), ("code", "HTN1"), ("displayLanguage", "zh"),
                        ("property", "severity")])
    assert param(out, "display") == "高血压1级"
    assert params(out, "designation") == []
    assert params(out, "property") == [{"code": "severity", "value": 1}]


def test_lookup_by_coding_and_parameters_resource(terms):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": DEMO, "code": "MI"}}]}
    assert param(terms.lookup(body), "display") == "Myocardial infarction"


def test_lookup_chinese_system_from_loader(terms):
    out = terms.lookup({"system": "http://loinc.org", "code": "2345-7",
                        "displayLanguage": "zh-CN"})
    assert param(out, "display") == "血清或血浆葡萄糖质量浓度"
    assert param(out, "version") == "2.77"


@pytest.mark.parametrize(("inputs", "category"), [
    ({"system": DEMO, "code": "NOPE"}, Category.NOT_FOUND),
    ({"system": "http://nowhere.example", "code": "X"}, Category.NOT_FOUND),
    ({"system": DEMO}, Category.INVALID),
    ({"code": "HTN"}, Category.INVALID),
    ([("system", DEMO), ("code", "HTN"), ("code", "MI")], Category.INVALID),
])
def test_lookup_errors(terms, inputs, category):
    with pytest.raises(FhirError) as exc:
        terms.lookup(inputs)
    assert exc.value.category is category
    assert " / " in exc.value.message  # English / 中文


def test_versions_are_kept_and_selectable():
    v1, v2 = demo_code_system("1"), demo_code_system("2")
    v2["concept"][0]["display"] = "Diseases of the circulation"
    terms = Terminology(InMemoryTerminologySource([v1, v2]))
    assert param(terms.lookup({"system": DEMO, "code": "CVD"}), "version") == "2"
    old = terms.lookup({"system": DEMO, "code": "CVD", "version": "1"})
    assert param(old, "display") == "Cardiovascular disease"
    assert param(terms.lookup({"system": f"{DEMO}|1", "code": "CVD"}), "version") == "1"


def test_instance_level_lookup_uses_given_resource(terms):
    cs = demo_code_system("local")
    assert param(terms.lookup({"code": "DM"}, code_system=cs), "version") == "local"
