"""The compiled CodeSystem index: hierarchy, flags, designations, text search."""

from __future__ import annotations

from term_data import demo_code_system

from huitong.terminology import build_index
from huitong.terminology.pinyin import pinyin_keys


def test_nesting_and_parent_properties_both_make_edges():
    index = build_index(demo_code_system())
    assert index.parents_of("HTN1") == ("HTN",)
    assert set(index.parents_of("DKD")) == {"DM", "KD"}
    assert index.children_of("CVD") == ("HTN", "MI")
    assert index.descendants("CVD") == {"HTN", "HTN1", "HTN3", "MI"}
    assert index.ancestors("DKD") == {"DM", "KD"}
    assert index.subsumes("CVD", "HTN3") and not index.subsumes("HTN3", "CVD")


def test_flags_and_case_insensitive_codes():
    index = build_index(demo_code_system())
    assert index.get("OLD").inactive and not index.get("HTN").inactive
    assert index.get("GRP").abstract
    assert index.get("htn").code == "HTN"  # caseSensitive false
    cs = demo_code_system()
    cs["caseSensitive"] = True
    assert build_index(cs).get("htn") is None


def test_display_language_prefers_designation():
    index = build_index(demo_code_system())
    htn = index.get("HTN")
    assert index.display_for(htn, "zh") == "高血压"
    assert index.display_for(htn, "zh-CN") == "高血压"
    assert index.display_for(htn, "en") == "Hypertension"
    assert index.display_for(htn, "fr") == "Hypertension"


def test_pinyin_keys():
    assert pinyin_keys("高血压") == ("gaoxueya", "gxy")
    assert pinyin_keys("重症肺炎")[0] == "zhongzhengfeiyan"  # heteronym read in its word
    assert pinyin_keys("Hypertension") is None


def test_search_chinese_pinyin_initials_and_english_find_the_same_concept():
    index = build_index(demo_code_system())
    for text in ("高血压", "gaoxueya", "gxy", "GXY", "hypertension", "gao xue ya"):
        found = index.search(text)
        assert found[0] == "HTN", text
        assert "HTN1" in found and "MI" not in found


def test_search_ranks_exact_then_prefix_then_contains():
    index = build_index(demo_code_system())
    assert index.search("糖尿病") == ["DM", "DKD", "DM2"]
    ranks = index.match("糖尿病")
    assert ranks["DM"] == 0 and ranks["DKD"] == 1 and ranks["DM2"] == 2
    assert index.search("no such thing") == []
