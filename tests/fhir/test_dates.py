"""FHIR date/dateTime/instant ranges (huitong.fhir.dates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huitong.fhir.dates import format_instant, parse_date_range

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(text: str) -> int:
    """Reference value from the standard library (full-precision; no zone means UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("2020", "2020-01-01T00:00:00", "2020-12-31T23:59:59.999999"),
        ("2020-02", "2020-02-01T00:00:00", "2020-02-29T23:59:59.999999"),
        ("2021-02", "2021-02-01T00:00:00", "2021-02-28T23:59:59.999999"),
        ("1900-02", "1900-02-01T00:00:00", "1900-02-28T23:59:59.999999"),
        ("2000-02-29", "2000-02-29T00:00:00", "2000-02-29T23:59:59.999999"),
        ("2020-12", "2020-12-01T00:00:00", "2020-12-31T23:59:59.999999"),
        ("2024-01-02T03:04", "2024-01-02T03:04:00", "2024-01-02T03:04:59.999999"),
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05", "2024-01-02T03:04:05.999999"),
        ("2024-01-02T03:04:05", "2024-01-02T03:04:05", "2024-01-02T03:04:05.999999"),
        ("2024-01-02T08:04:05+05:00", "2024-01-02T03:04:05", "2024-01-02T03:04:05.999999"),
        ("2024-01-01T20:00:00-08:00", "2024-01-02T04:00:00", "2024-01-02T04:00:00.999999"),
        ("2024-01-02T03:04:05.1Z", "2024-01-02T03:04:05.100000", "2024-01-02T03:04:05.199999"),
        ("2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.123000", "2024-01-02T03:04:05.123999"),
        ("2024-01-02T03:04:05.123456Z", "2024-01-02T03:04:05.123456", "2024-01-02T03:04:05.123456"),
        ("2024-01-02T03:04:05.1234567Z", "2024-01-02T03:04:05.123456",
         "2024-01-02T03:04:05.123456"),
        ("2024-01-02T03:04:05+14:00", "2024-01-01T13:04:05", "2024-01-01T13:04:05.999999"),
        ("1969-12-31", "1969-12-31T00:00:00", "1969-12-31T23:59:59.999999"),
        ("0001-01-01", "0001-01-01T00:00:00", "0001-01-01T23:59:59.999999"),
        ("9999", "9999-01-01T00:00:00", "9999-12-31T23:59:59.999999"),
    ],
)  # fmt: skip
def test_precision_widening(text: str, lo: str, hi: str) -> None:
    assert parse_date_range(text) == (_us(lo), _us(hi))


def test_leap_second_is_accepted() -> None:
    lo, hi = parse_date_range("2016-12-31T23:59:60Z")
    assert lo == _us("2017-01-01T00:00:00") and hi - lo == 999_999


@pytest.mark.parametrize(
    "text",
    [
        "",
        "20",
        "0000",
        "2020-13",
        "2020-00",
        "2020-1",
        "2020-01-1",
        "2021-02-29",
        "2020-04-31",
        "2020-01-00",
        "2020-01-01T",
        "2020-01-01T10",
        "2020-01-01T24:00:00Z",
        "2020-01-01T10:60:00Z",
        "2020-01-01T10:00:61Z",
        "2020-01-01T10:00:00.Z",
        "2020-01-01T10:00:00+15:00",
        "2020-01-01T10:00:00+14:30",
        "2020-01-01T10:00:00+05:60",
        "2020-01-01T10:00:00+0500",
        "2020-01-01Z",
        "2020-01-01 10:00:00",
        " 2020",
        "2020 ",
        "2020-01-01T10:00:00z",
        "２０２０",
        "2020-01-01T10:00:00Z\n",
        "today",
    ],
)
def test_malformed_values_raise(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date_range(text)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_full_precision_matches_the_standard_library(moment: datetime) -> None:
    text = moment.isoformat(timespec="microseconds") + "+00:00"
    lo, hi = parse_date_range(text)
    assert lo == hi == _us(text)
    assert format_instant(lo) == text


@given(st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999))
def test_format_instant_round_trips(us: int) -> None:
    text = format_instant(us)
    assert len(text) == 32 and text.endswith("+00:00")
    assert parse_date_range(text) == (us, us)


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00.000000+00:00"),
        (1_704_164_645_123_456, "2024-01-02T03:04:05.123456+00:00"),
        (-1, "1969-12-31T23:59:59.999999+00:00"),
    ],
)
def test_format_instant(us: int, text: str) -> None:
    assert format_instant(us) == text
