"""Name normalisation and name comparison levels."""

from __future__ import annotations

import pytest

from huitong.mpi.compare.names import name_part_level
from huitong.mpi.normalize.names import near_homophone, parse_name, split_han_name


@pytest.mark.parametrize(
    ("name", "family_pinyin"),
    [
        ("单田芳", "shan"),
        ("曾国藩", "zeng"),
        ("解缙", "xie"),
        ("区志坚", "ou"),
        ("仇英", "qiu"),
        ("朴树", "piao"),
        ("查良镛", "zha"),
        ("盖叫天", "ge"),
        ("尉迟恭", "yuchi"),
        ("万俟卨", "moqi"),
        ("张伟", "zhang"),
    ],
)
def test_surname_readings_override_everyday_readings(name: str, family_pinyin: str) -> None:
    parsed = parse_name(text=name)
    assert parsed is not None
    assert parsed.family_pinyin == family_pinyin


@pytest.mark.parametrize(
    ("full", "family", "given"),
    [
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马光", "司马", "光"),
        ("诸葛亮", "诸葛", "亮"),
        ("上官婉儿", "上官", "婉儿"),
        ("张伟", "张", "伟"),
        ("欧阳", "欧", "阳"),  # two characters: never a bare compound surname
    ],
)
def test_compound_surnames_split_after_two_characters(full: str, family: str, given: str) -> None:
    assert split_han_name(full) == (family, given)


def test_traditional_and_full_width_fold_to_simplified() -> None:
    a = parse_name(text="張　偉")
    b = parse_name(text="张伟")
    assert a == b


def test_fhir_parts_win_over_text() -> None:
    name = parse_name(text="ignored", family="歐陽", given=("娜", "娜"))
    assert name is not None
    assert (name.family, name.given, name.script) == ("欧阳", "娜娜", "han")


@pytest.mark.parametrize("text", ["ZHANG Wei", "Zhang, Wei", "zhang wei", "Wei ZHANG"])
def test_latin_names_in_either_order_find_the_family_name(text: str) -> None:
    name = parse_name(text=text)
    assert name is not None
    assert (name.family_pinyin, name.given_pinyin) == ("zhang", "wei")


def test_latin_order_that_was_guessed_is_flagged() -> None:
    stated = parse_name(text="Zhang, Wei")
    guessed = parse_name(text="Xiaoming Li")
    assert stated is not None and stated.order_known
    assert guessed is not None and not guessed.order_known
    assert guessed.family_pinyin == "li"  # "li" is a common surname, "xiaoming" is not


def test_near_homophone_merges_southern_confusions() -> None:
    assert near_homophone("zhang") == near_homophone("zan")
    assert near_homophone("chen") == near_homophone("ceng")
    assert near_homophone("liu") == near_homophone("niu")
    assert near_homophone("shi") == near_homophone("si")
    assert near_homophone("wang") != near_homophone("wei")


def _level(a: str, b: str) -> str:
    na, nb = parse_name(text=a), parse_name(text=b)
    assert na is not None and nb is not None
    from huitong.mpi.compare.names import NAME_LEVELS

    same_script = na.script == nb.script
    level = name_part_level(
        na.full if same_script else "", na.pinyin, nb.full if same_script else "", nb.pinyin
    )
    assert level is not None
    return NAME_LEVELS[level]


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("张伟", "张伟", "exact"),
        ("张伟", "章伟", "homophone"),
        ("张伟", "ZHANG Wei", "homophone"),
        ("刘洋", "牛洋", "near-homophone"),
        ("陈思", "岑思", "near-homophone"),
        ("王小明", "王晓鸣", "homophone"),
        ("李建国", "李建华", "fuzzy"),
        ("张伟", "李娜", "different"),
    ],
)
def test_name_levels(a: str, b: str, level: str) -> None:
    assert _level(a, b) == level
