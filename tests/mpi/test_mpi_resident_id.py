"""GB 11643 resident ID parsing in the MPI: normalisation, 15-digit upgrade, permits, errors."""

from __future__ import annotations

from datetime import date

import pytest

from huitong.mpi.resident_id import (
    ResidentIdError,
    is_valid,
    make_resident_id,
    normalize_resident_id,
    parse_resident_id,
)

STANDARD_EXAMPLE = "11010519491231002X"


def test_standard_example_parses_to_its_parts() -> None:
    rid = parse_resident_id(STANDARD_EXAMPLE)
    assert rid.number == STANDARD_EXAMPLE
    assert rid.area_code == "110105"
    assert rid.birth_date == date(1949, 12, 31)
    assert rid.sex == "female"
    assert rid.kind == "resident"
    assert not rid.upgraded_from_15
    assert not rid.is_residence_permit


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "110105 19491231 002X",
        "110105-19491231-002X",
        "\u3000110105194912310 02X ",
    ],
)
def test_typing_variants_normalise_to_the_canonical_number(typed: str) -> None:
    assert normalize_resident_id(typed) == STANDARD_EXAMPLE
    assert parse_resident_id(typed).number == STANDARD_EXAMPLE


def test_fifteen_digit_number_is_upgraded_and_flagged() -> None:
    rid = parse_resident_id("110105491231002")
    assert rid.number == STANDARD_EXAMPLE
    assert rid.upgraded_from_15
    assert rid.birth_date == date(1949, 12, 31)


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [("81", "hk-permit"), ("82", "macao-permit"), ("83", "taiwan-permit")],
)
def test_residence_permit_prefixes_are_accepted_and_flagged(prefix: str, kind: str) -> None:
    number = make_resident_id(f"{prefix}0000", date(1990, 5, 17), 123)
    rid = parse_resident_id(number)
    assert rid.kind == kind
    assert rid.is_residence_permit
    assert rid.sex == "male"


def test_foreign_permanent_residence_card_is_recognised() -> None:
    rid = parse_resident_id(make_resident_id("931100", date(1985, 2, 1), 2))
    assert rid.kind == "foreign-permanent"
    assert not rid.is_residence_permit


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("11010519491231002A", "characters"),
        ("ABCDEFGHIJKLMNOPQR", "characters"),
        ("1101051949123100", "length"),
        ("11010549123100X", "length"),
        ("110105194912310021", "check-digit"),
        ("110105194902300021", "date"),
        ("110105491331002", "date"),
        ("010105194912310029", "area"),
        ("810000491231002", "area"),
    ],
)
def test_errors_carry_a_reason(value: str, reason: str) -> None:
    with pytest.raises(ResidentIdError) as info:
        parse_resident_id(value)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_error_messages_are_bilingual_and_never_repeat_the_number() -> None:
    with pytest.raises(ResidentIdError) as info:
        parse_resident_id("110105194912310021")
    err = info.value
    assert "check" in err.message_en
    assert "校验" in err.message_zh
    assert "110105" not in err.message_en + err.message_zh + str(err)


def test_every_single_digit_typo_is_caught_by_the_check_character() -> None:
    # MOD 11-2 detects all single-character substitutions: the property the ID comparator's
    # "one-digit typo" level relies on to tell a typo from a different person.
    for pos in range(17):
        for digit in "0123456789":
            if digit == STANDARD_EXAMPLE[pos]:
                continue
            typo = STANDARD_EXAMPLE[:pos] + digit + STANDARD_EXAMPLE[pos + 1 :]
            assert not is_valid(typo)
