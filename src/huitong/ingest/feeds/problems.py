"""Row- and field-level problems a converter reports instead of failing the whole input.

A converter keeps every good record and reports each bad one as a :class:`Problem`: where it
is (record number, physical line, JSON Pointer — https://www.rfc-editor.org/rfc/rfc6901 — and
the column or field), why (a :class:`Reason` from a closed set, so operators and the message
store can count and filter them) and a message in English and Simplified Chinese. Problems
never carry the offending value when it could be personal health information; they name the
column and the rule that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = ["Problem", "Reason"]


class Reason(StrEnum):
    """Why a record, field or file could not be used (closed set)."""

    BAD_ENCODING = "bad-encoding"  # bytes not valid in the declared or detected encoding
    BAD_RECORD = "bad-record"  # wrong number of columns, unparseable CSV/JSON record
    NOT_AN_OBJECT = "not-an-object"  # a JSON record that is not an object
    MISSING_VALUE = "missing-value"  # a required column, field or element is empty
    BAD_DATE = "bad-date"  # matches none of the date formats, or not a real date
    BAD_NUMBER = "bad-number"  # not a number, or not an integer where one is needed
    BAD_BOOLEAN = "bad-boolean"
    UNMAPPED_CODE = "unmapped-code"  # not in the mapping's translation table
    BAD_UNIT = "bad-unit"  # a unit we cannot express in UCUM
    INVALID_RESOURCE = "invalid-resource"  # the produced resource fails FHIR validation
    DUPLICATE = "duplicate"  # the same identity twice in one batch (the later one is used)
    UNKNOWN_MEASUREMENT = "unknown-measurement"  # a device measurement type we do not map
    IMPLAUSIBLE_VALUE = "implausible-value"  # outside the physiological plausibility range
    NOT_DICOM = "not-dicom"  # a file that pydicom cannot read as DICOM
    MISSING_UID = "missing-uid"  # a DICOM file without Study/Series/SOP Instance UID


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem. ``row`` is the 1-based record number (CSV data row, JSON array element,
    NDJSON line, device reading); ``line`` the 1-based physical line where the record starts,
    when the source has lines; ``pointer`` a JSON Pointer into a JSON record or payload;
    ``field`` the column name, JSON field or FHIR element concerned; ``source`` a file name
    when a batch reads several files (DICOM). ``severity`` ``warning`` means the record was
    still used."""

    reason: Reason
    en: str
    zh: str
    row: int | None = None
    line: int | None = None
    pointer: str | None = None
    field: str | None = None
    source: str | None = None
    severity: Literal["error", "warning"] = "error"

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready data (``None`` members left out)."""
        out: dict[str, Any] = {"reason": self.reason.value, "severity": self.severity}
        for name in ("row", "line", "pointer", "field", "source"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["en"], out["zh"] = self.en, self.zh
        return out
