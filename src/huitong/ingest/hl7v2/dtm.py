"""The HL7 v2 DTM / TS date-time: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``.

Spec: HL7 v2.8 chapter 2A, DTM (https://hl7-definition.caristix.com/v2/HL7v2.8/DataTypes/DTM).
Only what the header needs lives here: reading MSH-7 and writing an ACK's MSH-7.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["format_dtm", "parse_dtm"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DTM = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?"
)


def parse_dtm(value: str) -> datetime | None:
    """The moment a DTM names, or ``None`` when it is empty or malformed.

    Missing parts take their lowest value (``2021`` → 1 January 2021 00:00); a value
    without an offset is returned naive, because HL7 then means the sender's local time.
    """
    match = _DTM.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz = None
    if offset:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 23 or minutes > 59:
            return None
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "0").ljust(6, "0")[:6]), tzinfo=tz,
        )
    except ValueError:
        return None


def format_dtm(micros: int) -> str:
    """A clock reading (microseconds since the epoch, UTC) as ``YYYYMMDDHHMMSS.SSSS+0000``."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y%m%d%H%M%S") + f".{moment.microsecond // 100:04d}+0000"
