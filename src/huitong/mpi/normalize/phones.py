"""Telephone numbers of mainland China (ITU-T E.164 country code 86).

Mobile numbers are 11 digits starting ``1[3-9]``; landlines are a trunk ``0``, an area code
(3 digits for 010 and 02x, else 4) and a 7-8 digit subscriber number. The country prefix
(``+86``, ``0086``, ``86``), spaces, dashes, brackets and full-width digits are removed.
Numbers that fit neither shape are kept as ``other`` (digits only) so they can still agree
exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from huitong.mpi.normalize.text import fold_width

__all__ = ["Phone", "parse_phone"]

_MOBILE = re.compile(r"1[3-9]\d{9}")
_EXTENSION = re.compile(r"(转|ext\.?|x|#).*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Phone:
    """A normalised number: ``number`` is digits only, landlines with their trunk ``0``."""

    number: str
    kind: Literal["mobile", "landline", "local", "other"]
    area_code: str = ""

    @property
    def subscriber(self) -> str:
        """The number without its area code (what people dial locally)."""
        return self.number[len(self.area_code) :] if self.area_code else self.number


def parse_phone(value: str) -> Phone | None:
    """Normalise a number as typed; ``None`` when fewer than 7 digits remain."""
    text = _EXTENSION.sub("", fold_width(value))
    international = text.lstrip().startswith("+")
    digits = "".join(ch for ch in text if ch.isdigit())
    had_country_code = True
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and (international or len(digits) in (12, 13)):
        digits = digits[2:]
    else:
        had_country_code = False
    if len(digits) < 7:
        return None
    if _MOBILE.fullmatch(digits):
        return Phone(digits, "mobile")
    if had_country_code and not digits.startswith("0") and len(digits) in (9, 10, 11):
        digits = "0" + digits  # after +86 the area code is written without its trunk 0
    if digits.startswith("0"):
        area_len = 3 if digits.startswith(("010", "02")) else 4
        subscriber = digits[area_len:]
        if 7 <= len(subscriber) <= 8:
            return Phone(digits, "landline", digits[:area_len])
    if len(digits) in (7, 8) and digits[0] not in "01":
        return Phone(digits, "local")
    return Phone(digits, "other")
