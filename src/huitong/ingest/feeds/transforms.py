"""Value transforms a mapping applies to a source value before it becomes a FHIR element:
numbers, booleans, dates and date-times (including Chinese forms such as ``2024年3月5日`` and
full-width digits), and UCUM quantities.

Each function takes the raw value (a CSV cell is a string; a JSON value may already be a
number or boolean) and returns the FHIR JSON value, or raises :class:`TransformError` with a
:class:`~huitong.ingest.feeds.problems.Reason` and bilingual message that do not repeat the
value (it may be personal health information).

FHIR primitive formats: https://hl7.org/fhir/R4/datatypes.html#primitive.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from huitong.ingest.feeds.problems import Reason

__all__ = [
    "DEFAULT_DATETIME_FORMATS",
    "DEFAULT_DATE_FORMATS",
    "TransformError",
    "parse_boolean",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "parse_integer",
    "parse_offset",
    "quantity",
]

UCUM = "http://unitsofmeasure.org"

DEFAULT_DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日", "%Y-%m", "%Y年%m月", "%Y年",
    "%Y",
)
DEFAULT_DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日%H时%M分%S秒",
    "%Y年%m月%d日%H时%M分", "%Y年%m月%d日%H:%M", "%Y%m%d%H%M%S", "%Y%m%d%H%M",
    *DEFAULT_DATE_FORMATS,
)
_TRUE = frozenset({"true", "t", "yes", "y", "1", "是", "真", "有", "阳性"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "否", "假", "无", "阴性"})
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


class TransformError(ValueError):
    """A value the transform cannot accept."""

    def __init__(self, reason: Reason, en: str, zh: str) -> None:
        super().__init__(en)
        self.reason, self.en, self.zh = reason, en, zh


def _normal(raw: object) -> str:
    # NFKC folds full-width digits, letters and punctuation (２０２４／３／５) to ASCII. ASCII
    # text is already in NFKC (every ASCII character is its own normal form), and it is most
    # of what a feed holds: skip the normalisation pass for it.
    text = raw if isinstance(raw, str) else str(raw)
    if text.isascii():
        return text.strip()
    return unicodedata.normalize("NFKC", text).strip()


def parse_decimal(raw: object) -> int | float:
    """A FHIR decimal: ``12``, ``-3.5``, ``1,234.5`` (thousands grouped), ``１２.５``."""
    if isinstance(raw, bool):
        raise TransformError(Reason.BAD_NUMBER, "not a number", "不是数字")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if math.isfinite(raw):
            return raw
        raise TransformError(Reason.BAD_NUMBER, "not a finite number", "不是有限数值")
    text = _normal(raw)
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    try:
        if _INTEGER.fullmatch(text):
            return int(text)
        value = float(text)
    except ValueError:
        raise TransformError(Reason.BAD_NUMBER, "not a number", "不是数字") from None
    if not math.isfinite(value) or text.lower().lstrip("+-") in ("inf", "nan", "infinity"):
        raise TransformError(Reason.BAD_NUMBER, "not a finite number", "不是有限数值")
    return value


def parse_integer(raw: object) -> int:
    """A FHIR integer (32-bit signed)."""
    value = parse_decimal(raw)
    if isinstance(value, float):
        if not value.is_integer():
            raise TransformError(Reason.BAD_NUMBER, "not a whole number", "不是整数")
        value = int(value)
    if not -(2**31) <= value < 2**31:
        raise TransformError(Reason.BAD_NUMBER, "integer out of range", "整数超出范围")
    return value


def parse_boolean(raw: object) -> bool:
    """``true``/``false``, ``yes``/``no``, ``1``/``0``, ``是``/``否``."""
    if isinstance(raw, bool):
        return raw
    text = _normal(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformError(Reason.BAD_BOOLEAN, "not a yes/no value", "不是是/否值")


def parse_offset(text: str) -> timezone:
    """A UTC offset written ``+08:00``."""
    m = _OFFSET.fullmatch(text)
    if m is None:
        raise ValueError(f"not a UTC offset like +08:00: {text!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


def _precision(fmt: str) -> int:
    # 0 year, 1 month, 2 day, 3 time: what the format actually says about the value
    if "%H" in fmt:
        return 3
    return 2 if "%d" in fmt else 1 if "%m" in fmt else 0


def _format(parsed: datetime, precision: int) -> str:
    if precision == 0:
        return f"{parsed.year:04d}"
    if precision == 1:
        return f"{parsed.year:04d}-{parsed.month:02d}"
    return f"{parsed.year:04d}-{parsed.month:02d}-{parsed.day:02d}"


_FAST = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})",
         "%H": r"(?P<H>\d{1,2})", "%M": r"(?P<M>\d{1,2})", "%S": r"(?P<S>\d{1,2})"}


@lru_cache(maxsize=256)
def _fast_pattern(fmt: str) -> re.Pattern[str] | None:
    """``fmt`` as a regex when it uses only %Y %m %d %H %M %S (each at most once): ten times
    faster than ``strptime`` for the formats feeds actually use; others go to strptime."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i:i + 2]
            if directive not in _FAST or directive in seen:
                return None
            seen.add(directive)
            out.append(_FAST[directive])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("".join(out))


def _strptime(text: str, formats: Sequence[str]) -> tuple[datetime, int]:
    for fmt in formats:
        pattern = _fast_pattern(fmt)
        if pattern is None:
            try:
                return datetime.strptime(text, fmt), _precision(fmt)
            except ValueError:
                continue
        m = pattern.fullmatch(text)
        if m is None:
            continue
        g = m.groupdict()
        try:
            return datetime(int(g["Y"]), int(g.get("m") or 1), int(g.get("d") or 1),
                            int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0)
                            ), _precision(fmt)
        except ValueError:
            continue
    raise TransformError(
        Reason.BAD_DATE, "not a date in any of the expected formats", "日期不符合任何预期格式"
    )


def parse_date(raw: object, formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> str:
    """A FHIR date (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, as precise as the format)."""
    text = _normal(raw)
    parsed, precision = _strptime(text, formats)
    if parsed.year < 1:
        raise TransformError(Reason.BAD_DATE, "year out of range", "年份超出范围")
    return _format(parsed, min(precision, 2))


def parse_datetime(
    raw: object, tz: timezone, formats: Sequence[str] = DEFAULT_DATETIME_FORMATS
) -> str:
    """A FHIR dateTime. ISO 8601 input is read directly; otherwise ``formats`` are tried in
    order. A time without an offset is taken to be in ``tz`` (FHIR requires the offset when
    a time is given); a date alone stays a date."""
    text = _normal(raw)
    parsed: datetime | None = None
    precision = 3
    if "T" in text:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    if parsed is None:
        parsed, precision = _strptime(text, formats)
    if precision < 3:
        return _format(parsed, precision)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.isoformat(timespec="milliseconds" if parsed.microsecond else "seconds")


def quantity(value: int | float, unit: str, code: str | None = None) -> dict[str, Any]:
    """A UCUM Quantity (https://hl7.org/fhir/R4/datatypes.html#Quantity)."""
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}
