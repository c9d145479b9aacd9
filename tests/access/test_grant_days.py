"""A day a patient picks for a grant is a day in the region (China Standard Time), whatever
the hour in UTC: a grant made late in the evening UTC (early morning in China) for "today"
is in force at once, and one ending "today" lasts until that day's end there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from huitong.access.consents import build_grant
from huitong.fhir.dates import parse_date_range


def _us(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1_000_000)


@pytest.mark.parametrize("now", [
    "2026-11-22T15:59:59+00:00",  # 23:59:59 in China
    "2026-11-22T16:00:00+00:00",  # midnight in China: the next day there
    "2026-11-22T17:30:00+00:00",
    "2026-11-23T01:00:00+00:00",
])
def test_a_grant_from_today_is_in_force_at_once(now: str) -> None:
    at = _us(now)
    (consent,) = build_grant("p1", grant_id="g", now=at, actor="Organization/o1")
    start = consent["provision"]["period"]["start"]
    assert parse_date_range(start)[0] <= at
    # ...and it starts on the region's day, not before it
    assert at - parse_date_range(start)[0] < 24 * 3600 * 1_000_000


def test_chosen_days_are_whole_days_in_the_region() -> None:
    at = _us("2026-11-22T17:30:00+00:00")  # 2026-11-23 01:30 in China
    (consent,) = build_grant("p1", grant_id="g", now=at, start="2026-11-23",
                             end="2026-11-23")
    period = consent["provision"]["period"]
    assert period == {"start": "2026-11-23T00:00:00+08:00", "end": "2026-11-23T23:59:59+08:00"}
    assert parse_date_range(period["start"])[0] == _us("2026-11-22T16:00:00+00:00")
    assert parse_date_range(period["end"])[1] == _us("2026-11-23T16:00:00+00:00") - 1
    # a dateTime given by an API client is kept as it is
    (exact,) = build_grant("p1", grant_id="g", now=at, start="2026-11-23T08:00:00Z")
    assert exact["provision"]["period"]["start"] == "2026-11-23T08:00:00Z"
