"""How FHIR datatypes read on a page: concepts, names, dates, quantities, references.

Pure functions over resource dicts (https://hl7.org/fhir/R4/datatypes.html); the templates
use them as filters. Times are shown in China Standard Time (UTC+8, no daylight saving),
the region's clock; a FHIR date-time keeps the offset it was written with.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "CST",
    "age_on",
    "concept_text",
    "format_instant_us",
    "format_when",
    "human_name",
    "parse_when",
    "quantity_text",
    "reference_parts",
]

CST = timezone(timedelta(hours=8), "CST")
_DATE_ONLY = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def concept_text(concept: Any, lang: str = "zh-CN") -> str:
    """A CodeableConcept (or Coding) for people: Chinese pages prefer the concept's own
    ``text`` (sources here write it in Chinese), English pages a coding's ``display``."""
    if not isinstance(concept, dict):
        return ""
    codings = [c for c in concept.get("coding", []) if isinstance(c, dict)]
    if "code" in concept and "coding" not in concept:  # a bare Coding
        codings = [concept]
    displays = [c["display"] for c in codings if c.get("display")]
    text = concept.get("text")
    ordered = [text, *displays] if lang != "en" else [*displays, text]
    for candidate in ordered:
        if candidate:
            return str(candidate)
    codes = [c["code"] for c in codings if c.get("code")]
    return str(codes[0]) if codes else ""


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def human_name(names: Any) -> str:
    """The official (else first) HumanName: ``text`` if given, else family and given names
    in the order the script uses (张伟 / Wei Zhang)."""
    if not isinstance(names, list) or not names:
        return ""
    chosen = next((n for n in names if isinstance(n, dict) and n.get("use") == "official"),
                  names[0])
    if not isinstance(chosen, dict):
        return ""
    if chosen.get("text"):
        return str(chosen["text"])
    family = str(chosen.get("family") or "")
    given = [str(g) for g in chosen.get("given", []) if g]
    if _has_cjk(family + "".join(given)):
        return family + "".join(given)
    return " ".join([*given, family]).strip()


def parse_when(value: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (a date or partial date is its
    first moment in CST); None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if _DATE_ONLY.fullmatch(value):
            parts = [int(p) for p in value.split("-")] + [1, 1]
            return datetime(parts[0], parts[1], parts[2], tzinfo=CST)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CST)


def format_when(value: Any, *, with_time: bool = True) -> str:
    """``2024-05-01 08:25`` in the value's own offset (CST for dates); partial dates stay
    partial (``2024-05``); '' when absent, the raw text when unparseable."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    if not isinstance(value, str) or not value:
        return ""
    if _DATE_ONLY.fullmatch(value):
        return value
    parsed = parse_when(value)
    if parsed is None:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def format_instant_us(micros: int | None) -> str:
    """Huitong's own timestamps (µs since the epoch, UTC) in CST, to the second."""
    if micros is None:
        return ""
    moment = datetime.fromtimestamp(micros / 1_000_000, UTC).astimezone(CST)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def quantity_text(quantity: Any) -> str:
    """``6.48 mmol/L`` (with its comparator, e.g. ``<0.1 mg/L``)."""
    if not isinstance(quantity, dict) or "value" not in quantity:
        return ""
    value = quantity["value"]
    try:
        number = Decimal(str(value)).normalize()
        shown = f"{number:f}"
    except (InvalidOperation, ValueError):
        shown = str(value)
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{quantity.get('comparator', '')}{shown} {unit}".strip()


def reference_parts(reference: Any) -> tuple[str, str] | None:
    """``("Organization", "abc")`` for a relative literal reference, else None."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str):
        return None
    if "://" in reference:
        return None  # absolute: another server's resource
    parts = reference.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 2 and parts[0][:1].isupper() and parts[1]:
        return parts[0], parts[1]
    return None


def age_on(birth_date: Any, today: date) -> int | None:
    """Completed years on ``today``; None without a full birth date."""
    born = parse_when(birth_date)
    if born is None or not (isinstance(birth_date, str) and len(birth_date) >= 10):
        return None
    years = today.year - born.year
    if (today.month, today.day) < (born.month, born.day):
        years -= 1
    return years
