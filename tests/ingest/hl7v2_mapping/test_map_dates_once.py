"""The DTM conversions parse their text once; what they return must not change: compared
with the former spelling (which re-parsed the text for every part) on valid, partial and
invalid values."""

from __future__ import annotations

import random

from huitong.ingest.hl7v2.mapping.datatypes.dates import (
    _offset,
    _parts,
    dtm_date,
    dtm_datetime,
    dtm_instant,
)


def _former_date(text: str) -> str | None:
    m = _parts(text)
    if m is None:
        return None
    out = m.group(1)
    for g in (2, 3):
        if m.group(g) is None:
            break
        out += "-" + m.group(g)
    return out


def _former_datetime(text: str, default_offset: str = "+08:00") -> str | None:
    m = _parts(text)
    if m is None:
        return None
    day = _former_date(text)
    if m.group(4) is None:
        return day
    time = f"{m.group(4)}:{m.group(5) or '00'}:{m.group(6) or '00'}"
    if m.group(7) and m.group(6):
        time += m.group(7)
    offset = _offset(m.group(8)) if m.group(8) else default_offset
    return f"{day}T{time}{offset}"


def _former_instant(text: str, default_offset: str = "+08:00") -> str | None:
    m = _parts(text)
    if m is None or m.group(5) is None:
        return None
    return _former_datetime(text, default_offset)


def _texts() -> list[str]:
    rng = random.Random(7)
    out = ["", "2020", "202003", "20200314", "2020031409", "202003140930", "20200314093015",
           "20200314093015.1234", "20200314093015+0800", "202003140930-0500", " 20200314 ",
           "20201301", "20200230", "2020031425", "20200314096", "abc", "2020031409.5"]
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([4, 6, 8, 10, 12,
                                                                             14])))
        tail = rng.choice(["", ".1", ".123", "+0800", "-0330", ".12+0100", "x"])
        out.append(digits + tail)
    return out


def test_conversions_answer_as_before() -> None:
    for text in _texts():
        assert dtm_date(text) == _former_date(text), text
        for offset in ("+08:00", "Z"):
            assert dtm_datetime(text, offset) == _former_datetime(text, offset), text
            assert dtm_instant(text, offset) == _former_instant(text, offset), text
