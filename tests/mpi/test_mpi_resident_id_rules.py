"""GB 11643-1999 resident ID numbers: check character, validation, upgrade, sex and birth date."""

from __future__ import annotations

from datetime import date

import pytest

from huitong.mpi.resident_id import (
    birth_date_of,
    check_digit,
    is_valid,
    make_resident_id,
    sex_of,
    upgrade_15_to_18,
)

# The worked example of the standard's annex: a woman born 1949-12-31 in 北京市朝阳区.
STANDARD_EXAMPLE = "11010519491231002X"


def test_check_digit_of_the_standard_example_is_x() -> None:
    assert check_digit(STANDARD_EXAMPLE[:17]) == "X"


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("11010519491231002", "X"),
        ("44030419900101001", "1"),  # weighted sum ≡ 0 (mod 11) → "1"
        ("11010120000101002", "9"),  # sum 47 ≡ 3 → "9"
        ("39010219690331411", "9"),  # sum 289 ≡ 3
    ],
)
def test_check_digit_vectors(first17: str, expected: str) -> None:
    assert check_digit(first17) == expected


@pytest.mark.parametrize("bad", ["", "1101051949123100", "110105194912310021", "1101051949123100A"])
def test_check_digit_rejects_anything_but_17_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_digit(bad)


def test_standard_example_is_valid() -> None:
    assert is_valid(STANDARD_EXAMPLE)


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # check should be X
        "110105194912310020",
        "11010519491231002x",  # lower-case x is not the canonical form
        "110105194912310029",
        "440304199001010012",  # check should be 1
        "11010519491231002",  # 17 characters
        "11010519491231002XX",  # 19 characters
        "110105194902300026",  # 30 February
        "010105194912310023",  # area code cannot start with 0
        "１１０１０５１９４９１２３１００２X",  # full-width digits
    ],
)
def test_invalid_numbers_are_rejected(number: str) -> None:
    assert not is_valid(number)


def test_upgrade_of_the_standard_example() -> None:
    assert upgrade_15_to_18("110105491231002") == STANDARD_EXAMPLE


@pytest.mark.parametrize(
    "bad", ["11010549123100", "1101054912310021", "110105491331002", "11010549123100a"]
)
def test_upgrade_rejects_malformed_numbers(bad: str) -> None:
    with pytest.raises(ValueError):
        upgrade_15_to_18(bad)


def test_make_resident_id_round_trips_birth_date_and_sex() -> None:
    for seq, sex in ((1, "male"), (2, "female"), (999, "male"), (0, "female")):
        number = make_resident_id("390102", date(1969, 3, 31), seq)
        assert is_valid(number)
        assert number.startswith("39010219690331")
        assert sex_of(number) == sex
        assert birth_date_of(number) == date(1969, 3, 31)


def test_make_resident_id_then_dropping_century_and_check_upgrades_back() -> None:
    number = make_resident_id("390121", date(1952, 2, 29), 437)
    old = number[:6] + number[8:17]
    assert len(old) == 15
    assert upgrade_15_to_18(old) == number


@pytest.mark.parametrize(
    ("area", "seq"), [("39010", 1), ("0390102", 1), ("090102", 1), ("390102", 1000), ("390102", -1)]
)
def test_make_resident_id_rejects_bad_arguments(area: str, seq: int) -> None:
    with pytest.raises(ValueError):
        make_resident_id(area, date(2000, 1, 1), seq)


def test_sex_and_birth_from_a_15_digit_number() -> None:
    assert sex_of("110105491231002") == "female"
    assert sex_of("110105491231003") == "male"
    assert birth_date_of("110105491231002") == date(1949, 12, 31)
    assert sex_of(STANDARD_EXAMPLE) == "female"


def test_sex_and_birth_reject_other_lengths() -> None:
    with pytest.raises(ValueError):
        sex_of("1234")
    with pytest.raises(ValueError):
        birth_date_of("1101051949123")
