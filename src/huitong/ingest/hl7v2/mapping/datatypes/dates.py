"""DTM / TS / DT → FHIR ``date``, ``dateTime``, ``instant``, keeping the sender's precision.

v2 ``YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]``; FHIR requires a timezone once a time is given
(https://hl7.org/fhir/R4/datatypes.html#dateTime), so a time without one takes the
context's default UTC offset. A TS (v2.3–2.5) is a DTM in component 1; a trailing degree of
precision (``^D``) is ignored. Values that are not dates give ``None``: the caller warns.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["dtm_date", "dtm_datetime", "dtm_instant"]

_DTM = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$"
)


def _parts(text: str) -> re.Match[str] | None:
    m = _DTM.match(text.strip())
    if m is None:
        return None
    y, mo, d, hh, mi, ss = (m.group(i) for i in range(1, 7))
    try:
        date(int(y), int(mo or 1), int(d or 1))
    except ValueError:
        return None
    if (hh and int(hh) > 23) or (mi and int(mi) > 59) or (ss and int(ss) > 59):
        return None
    if (mo is None and d) or (hh and not d):
        return None
    return m


def _offset(text: str) -> str:
    return f"{text[:3]}:{text[3:]}"


def _day(m: re.Match[str]) -> str:
    out = m.group(1)
    for g in (2, 3):
        if m.group(g) is None:
            break
        out += "-" + m.group(g)
    return out


def _datetime(m: re.Match[str], default_offset: str) -> str:
    day = _day(m)
    if m.group(4) is None:
        return day
    time = f"{m.group(4)}:{m.group(5) or '00'}:{m.group(6) or '00'}"
    if m.group(7) and m.group(6):
        time += m.group(7)
    offset = _offset(m.group(8)) if m.group(8) else default_offset
    return f"{day}T{time}{offset}"


# Each function parses its text once (a message has dozens of timestamps; dtm_instant used
# to parse the same text three times, dtm_datetime twice).
def dtm_date(text: str) -> str | None:
    """The date part, at the precision given (``2020``, ``2020-03``, ``2020-03-14``)."""
    m = _parts(text)
    return None if m is None else _day(m)


def dtm_datetime(text: str, default_offset: str = "+08:00") -> str | None:
    """A FHIR ``dateTime``: the date at its precision, or date and time with an offset
    (the value's own, else ``default_offset``); minutes and seconds missing read as 00."""
    m = _parts(text)
    return None if m is None else _datetime(m, default_offset)


def dtm_instant(text: str, default_offset: str = "+08:00") -> str | None:
    """A FHIR ``instant`` (needs at least a time to the minute), else ``None``."""
    m = _parts(text)
    if m is None or m.group(5) is None:
        return None
    return _datetime(m, default_offset)
