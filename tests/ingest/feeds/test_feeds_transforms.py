"""Value transforms: numbers, booleans, dates in ISO and Chinese forms, date-times with offsets."""

from __future__ import annotations

import pytest

from huitong.ingest.feeds.problems import Reason
from huitong.ingest.feeds.transforms import (
    TransformError,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_integer,
    parse_offset,
)

CST = parse_offset("+08:00")


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024年3月5日", "2024-03-05"),
    ("２０２４年３月５日", "2024-03-05"),
    ("2024-03-05", "2024-03-05"),
    ("2024/3/5", "2024-03-05"),
    ("2024.03.05", "2024-03-05"),
    ("20240305", "2024-03-05"),
    ("2024年3月", "2024-03"),
    ("1990", "1990"),
])
def test_dates(raw: str, expected: str) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2024-02-30", "2023-02-29", "tomorrow", "", "2024年13月1日"])
def test_impossible_dates_are_rejected(raw: str) -> None:
    with pytest.raises(TransformError) as caught:
        parse_date(raw)
    assert caught.value.reason is Reason.BAD_DATE and caught.value.zh


def test_custom_formats_only() -> None:
    assert parse_date("05/03/2024", ["%d/%m/%Y"]) == "2024-03-05"
    with pytest.raises(TransformError):
        parse_date("2024-03-05", ["%d/%m/%Y"])


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024-03-05 08:30", "2024-03-05T08:30:00+08:00"),
    ("2024年3月5日 8:30", "2024-03-05T08:30:00+08:00"),
    ("2024年3月5日8时30分", "2024-03-05T08:30:00+08:00"),
    ("2024-03-05T08:30:00Z", "2024-03-05T08:30:00+00:00"),
    ("2024-03-05T08:30:00.250-05:00", "2024-03-05T08:30:00.250-05:00"),
    ("20240305083000", "2024-03-05T08:30:00+08:00"),
    ("2024-03-05", "2024-03-05"),
])
def test_datetimes(raw: str, expected: str) -> None:
    assert parse_datetime(raw, CST) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("12", 12), ("-3.5", -3.5), ("1,234.5", 1234.5), ("１２.５", 12.5), (7, 7), (2.5, 2.5),
])
def test_decimals(raw: object, expected: float) -> None:
    assert parse_decimal(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    # ASCII text skips the NFKC pass but is still trimmed; other text is still folded
    (" 12\t", 12), ("\t-3.5 ", -3.5), (" 1,234 ", 1234), ("\u3000１２\u3000", 12),
    ("１,２３４.５", 1234.5), ("\u00a012.5", 12.5),
])
def test_decimals_trimmed_and_folded(raw: str, expected: float) -> None:
    assert parse_decimal(raw) == expected
    assert type(parse_decimal(raw)) is type(expected)


def test_dates_trimmed_and_folded() -> None:
    assert parse_date(" 2024-03-05 ") == "2024-03-05"
    assert parse_date("２０２４／３／５") == "2024-03-05"
    assert parse_datetime(" 2024-03-05 08:30 ", CST) == "2024-03-05T08:30:00+08:00"


@pytest.mark.parametrize("raw", ["abc", "1,2", "nan", "inf", "", True])
def test_bad_decimals(raw: object) -> None:
    with pytest.raises(TransformError) as caught:
        parse_decimal(raw)
    assert caught.value.reason is Reason.BAD_NUMBER


def test_integers_and_booleans() -> None:
    assert parse_integer("42") == 42 and parse_integer("3.0") == 3
    with pytest.raises(TransformError):
        parse_integer("3.5")
    with pytest.raises(TransformError):
        parse_integer(str(2**31))
    assert parse_boolean("是") is True and parse_boolean("N") is False
    with pytest.raises(TransformError):
        parse_boolean("maybe")


def test_offsets() -> None:
    assert parse_offset("-05:30").utcoffset(None).total_seconds() == -(5 * 3600 + 1800)  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        parse_offset("CST")
