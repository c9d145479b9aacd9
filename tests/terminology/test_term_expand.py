"""$expand — https://hl7.org/fhir/R4/valueset-operation-expand.html."""

from __future__ import annotations

import pytest
from term_data import DEMO

from huitong.fhir.errors import Category, FhirError
from huitong.terminology import InMemoryTerminologySource, Terminology
from huitong.terminology.loaders import ICD10_CN_URL

ALL = "http://example.org/vs/all-demo"


def codes(vs):
    return [c["code"] for c in vs["expansion"].get("contains", [])]


def test_expansion_shape(terms):
    vs = terms.expand({"url": "http://example.org/vs/cvd"})
    exp = vs["expansion"]
    assert vs["resourceType"] == "ValueSet" and vs["url"] == "http://example.org/vs/cvd"
    assert exp["identifier"] == "urn:uuid:expansion-1"
    assert exp["timestamp"] == "2026-01-01T00:00:00+00:00"
    assert exp["total"] == 5 and exp["offset"] == 0
    assert codes(vs) == ["CVD", "HTN", "HTN1", "HTN3", "MI"]
    assert {"name": "version", "valueUri": f"{DEMO}|1"} in exp["parameter"]
    assert exp["contains"][0] == {"system": DEMO, "version": "1", "code": "CVD",
                                  "display": "Cardiovascular disease"}


def test_whole_system_flags_inactive_and_abstract(terms):
    contains = {c["code"]: c for c in terms.expand({"url": ALL})["expansion"]["contains"]}
    assert contains["OLD"]["inactive"] is True and contains["GRP"]["abstract"] is True
    active = codes(terms.expand({"url": ALL, "activeOnly": "true"}))
    assert "OLD" not in active and "HTN" in active


@pytest.mark.parametrize(("flt", "expected"), [
    ({"property": "concept", "op": "is-a", "value": "HTN"}, ["HTN", "HTN1", "HTN3"]),
    ({"property": "concept", "op": "descendent-of", "value": "HTN"}, ["HTN1", "HTN3"]),
    ({"property": "concept", "op": "generalizes", "value": "HTN1"}, ["CVD", "HTN", "HTN1"]),
    ({"property": "concept", "op": "is-a", "value": "NOPE"}, []),
    ({"property": "organ", "op": "=", "value": "heart"}, ["MI"]),
    ({"property": "severity", "op": "=", "value": "3"}, ["HTN3"]),
    ({"property": "parent", "op": "=", "value": "DM"}, ["DM2", "DKD"]),
    ({"property": "code", "op": "regex", "value": "HTN[0-9]"}, ["HTN1", "HTN3"]),
    ({"property": "display", "op": "regex", "value": ".*grade.*"}, ["HTN1", "HTN3"]),
    ({"property": "concept", "op": "in", "value": "MI,DM,NOPE"}, ["MI", "DM"]),
    ({"property": "organ", "op": "exists", "value": "true"}, ["HTN", "MI"]),
])
def test_filters(flt, expected):
    from term_data import demo_code_system

    vs = {"resourceType": "ValueSet", "url": "http://t", "compose": {
        "include": [{"system": DEMO, "filter": [flt]}]}}
    terms = Terminology(InMemoryTerminologySource([demo_code_system(), vs]))
    assert codes(terms.expand({"url": "http://t"})) == expected


def test_negative_filters_and_combination(terms):
    vs = {"resourceType": "ValueSet", "compose": {"include": [{"system": DEMO, "filter": [
        {"property": "concept", "op": "is-not-a", "value": "CVD"},
        {"property": "concept", "op": "not-in", "value": "OLD,GRP,KD"}]}]}}
    assert codes(terms.expand({"valueSet": vs})) == ["DM", "DM2", "DKD"]
    both = {"resourceType": "ValueSet", "compose": {"include": [{"system": DEMO, "filter": [
        {"property": "concept", "op": "is-a", "value": "CVD"},
        {"property": "organ", "op": "=", "value": "vessel"}]}]}}
    assert codes(terms.expand({"valueSet": both})) == ["HTN"]


def test_unsupported_filter_and_bad_regex(terms):
    for flt, category in (({"property": "concept", "op": "child-of", "value": "X"},
                           Category.NOT_SUPPORTED),
                          ({"property": "code", "op": "regex", "value": "("},
                           Category.INVALID)):
        vs = {"resourceType": "ValueSet", "compose": {"include": [
            {"system": DEMO, "filter": [flt]}]}}
        with pytest.raises(FhirError) as exc:
            terms.expand({"valueSet": vs})
        assert exc.value.category is category


@pytest.mark.parametrize("text", ["高血压", "gaoxueya", "gxy", "hypertension", "Hypertens"])
def test_text_filter_chinese_pinyin_english(terms, text):
    vs = terms.expand({"url": ALL, "filter": text})
    assert codes(vs)[0] == "HTN"
    assert set(codes(vs)) == {"HTN", "HTN1", "HTN3"}
    assert vs["expansion"]["total"] == 3
    assert {"name": "filter", "valueString": text} in vs["expansion"]["parameter"]


def test_text_filter_on_loaded_chinese_edition(terms):
    vs = {"resourceType": "ValueSet", "compose": {"include": [{"system": ICD10_CN_URL}]}}
    found = codes(terms.expand({"valueSet": vs, "filter": "tnb"}))
    assert "E11.900" in found and "I10.x00x002" not in found
    assert codes(terms.expand({"valueSet": vs, "filter": "DKD"})) == ["E11.200x002"]


def test_paging_with_total(terms):
    first = terms.expand({"url": ALL, "count": "3"})
    second = terms.expand({"url": ALL, "offset": "3", "count": "3"})
    everything = codes(terms.expand({"url": ALL}))
    assert first["expansion"]["total"] == second["expansion"]["total"] == len(everything)
    assert codes(first) + codes(second) == everything[:6]
    assert second["expansion"]["offset"] == 3
    empty = terms.expand({"url": ALL, "count": 0})
    assert empty["expansion"]["total"] == len(everything) and "contains" not in empty["expansion"]


def test_display_language_and_designations(terms):
    vs = terms.expand({"url": "http://example.org/vs/cvd", "displayLanguage": "zh",
                       "includeDesignations": "true", "count": 1})
    item = vs["expansion"]["contains"][0]
    assert item["display"] == "心血管疾病"
    assert item["designation"] == [{"language": "zh-CN", "value": "心血管疾病"}]
    only_en = terms.expand({"url": "http://example.org/vs/cvd", "designation": "en",
                            "count": 1})
    assert "designation" not in only_en["expansion"]["contains"][0]


def test_listed_concepts_keep_value_set_display_and_order(terms):
    vs = terms.expand({"url": "http://example.org/vs/listed"})
    assert [(c["code"], c.get("display")) for c in vs["expansion"]["contains"]] == [
        ("DM2", "T2DM"), ("HTN", "Hypertension"), ("X1", "Something listed")]


def test_include_value_set_minus_exclude(terms):
    assert codes(terms.expand({"url": "http://example.org/vs/cvd-no-mi"})) == [
        "CVD", "HTN", "HTN1", "HTN3"]


def test_limits_and_errors(source):
    small = Terminology(source, max_expansion=3)
    with pytest.raises(FhirError) as exc:
        small.expand({"url": ALL})
    assert exc.value.category is Category.TOO_LARGE
    assert len(small.expand({"url": ALL, "count": 3})["expansion"]["contains"]) == 3
    with pytest.raises(FhirError) as exc:
        small.expand({"url": "http://example.org/vs/loop-a"})
    assert exc.value.category is Category.INVALID
    with pytest.raises(FhirError) as exc:
        small.expand({"url": ALL, "count": "-1"})
    assert exc.value.category is Category.INVALID
    with pytest.raises(FhirError) as exc:
        small.expand({})
    assert exc.value.category is Category.INVALID


def test_system_version_pins_unversioned_include():
    from term_data import demo_code_system

    v1, v2 = demo_code_system("1"), demo_code_system("2")
    v2["concept"].append({"code": "NEW", "display": "Only in version 2"})
    vs = {"resourceType": "ValueSet", "url": "http://v", "compose": {
        "include": [{"system": DEMO}]}}
    terms = Terminology(InMemoryTerminologySource([v1, v2, vs]))
    assert "NEW" in codes(terms.expand({"url": "http://v"}))
    pinned = terms.expand({"url": "http://v", "system-version": f"{DEMO}|1"})
    assert "NEW" not in codes(pinned)
