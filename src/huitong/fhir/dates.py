"""FHIR date, dateTime and instant values as ranges of microseconds since the Unix epoch.

A FHIR date is a range whose width is the precision written
(https://hl7.org/fhir/R4/search.html#date): ``2020`` is the whole year,
``2020-03-04T10:00:00+08:00`` one second. :func:`parse_date_range` returns the inclusive
bounds, the form the search index stores and the search parser compares against.
Formats: https://hl7.org/fhir/R4/datatypes.html#dateTime and #instant.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

__all__ = ["format_instant", "parse_date_range"]

_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

# The FHIR dateTime grammar, plus minute precision (``T10:00``) and a missing zone, which
# search values may use (https://hl7.org/fhir/R4/search.html#date). Fields are checked
# numerically below.
_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _month_length(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def parse_date_range(text: str) -> tuple[int, int]:
    """Parse a FHIR date/dateTime/instant into inclusive ``(lo, hi)`` epoch microseconds.

    Accepts ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, and ``YYYY-MM-DDThh:mm[:ss[.f+]]`` with
    an optional zone (``Z`` or ``±hh:mm``, at most 14:00); without a zone, UTC. The range
    spans the precision written: ``2020-02`` -> 2020-02-01T00:00:00.000000Z ..
    2020-02-29T23:59:59.999999Z; fractions beyond microseconds are truncated.

    Raises ValueError for anything else (``2020-13``, ``2021-02-29``, ``0000``, a zone on a
    bare date, surrounding spaces).
    """
    m = _DATE_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a FHIR date/dateTime: {text!r}")
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, zone = m.groups()
    year = int(year_s)
    if year == 0:
        raise ValueError(f"year 0000 is not a FHIR date: {text!r}")
    if month_s is None:
        lo = _days_from_civil(year, 1, 1) * _DAY
        return lo, _days_from_civil(year + 1, 1, 1) * _DAY - 1
    month = int(month_s)
    if not 1 <= month <= 12:
        raise ValueError(f"month out of range in {text!r}")
    if day_s is None:
        lo = _days_from_civil(year, month, 1) * _DAY
        return lo, lo + _month_length(year, month) * _DAY - 1
    day = int(day_s)
    if not 1 <= day <= _month_length(year, month):
        raise ValueError(f"day out of range in {text!r}")
    lo = _days_from_civil(year, month, day) * _DAY
    if hour_s is None:
        return lo, lo + _DAY - 1
    hour, minute = int(hour_s), int(minute_s)
    if hour > 23 or minute > 59:
        raise ValueError(f"time out of range in {text!r}")
    lo += hour * _HOUR + minute * _MINUTE
    width = _MINUTE
    if second_s is not None:
        second = int(second_s)
        if second > 60:  # 60 is a leap second, which the FHIR grammar allows
            raise ValueError(f"seconds out of range in {text!r}")
        lo += second * _SECOND
        width = _SECOND
        if fraction is not None:
            digits = fraction[:6]
            scale = 10 ** (6 - len(digits))
            lo += int(digits) * scale
            width = scale
    if zone is not None and zone != "Z":
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_minutes > 59 or zone_hours > 14 or (zone_hours == 14 and zone_minutes):
            raise ValueError(f"time zone out of range in {text!r}")
        offset = zone_hours * _HOUR + zone_minutes * _MINUTE
        lo += -offset if zone[0] == "+" else offset
    return lo, lo + width - 1


def format_instant(us: int) -> str:
    """Render epoch microseconds as a FHIR ``instant`` in UTC, always with six fractional
    digits: ``2024-01-02T03:04:05.123456+00:00``.

    Raises OverflowError outside years 1..9999.
    """
    # Every written resource is stamped with one and answered with it again; within a second
    # only the fraction changes, so the calendar part is worked out once per second.
    return f"{_instant_second(us // 1_000_000)}.{us % 1_000_000:06d}+00:00"


@lru_cache(maxsize=1024)
def _instant_second(seconds: int) -> str:
    t = _EPOCH + timedelta(seconds=seconds)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
