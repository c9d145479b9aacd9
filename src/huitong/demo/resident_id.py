"""Citizen identification numbers of the People's Republic of China (GB 11643-1999).

An 18-character resident ID number is laid out as::

    AAAAAA YYYYMMDD SSS C
    area   birth    seq check

* ``AAAAAA`` — the administrative division code (GB/T 2260) of the place of first registration;
* ``YYYYMMDD`` — date of birth;
* ``SSS`` — sequence number among people of that area and birth date; **odd for men, even
  for women**;
* ``C`` — ISO 7064 MOD 11-2 check character over the first 17 digits, ``X`` standing for 10.

Numbers issued before 1999 had 15 digits (``AAAAAA YYMMDD SSS``, no century, no check
character); :func:`upgrade_15_to_18` converts them the way the public-security registry did.

Every function here is pure. Malformed *input arguments* raise :class:`ValueError`;
:func:`is_valid` never raises, it answers ``False``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

__all__ = [
    "birth_date_of",
    "check_digit",
    "is_valid",
    "make_resident_id",
    "sex_of",
    "upgrade_15_to_18",
]

# ISO 7064 MOD 11-2: weight of position i (1-based from the right, check at i=1) is 2**(i-1)
# mod 11; for the 17 data digits, left to right, that gives this table.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Check character indexed by (weighted sum mod 11).
_CHECK_CHARS = "10X98765432"


def check_digit(first17: str) -> str:
    """The MOD 11-2 check character (``0``-``9`` or ``X``) for the first 17 digits.

    Raises ``ValueError`` unless ``first17`` is exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(ch) * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def is_valid(number: str) -> bool:
    """Whether ``number`` is a well-formed 18-character resident ID number.

    Checks the shape (17 digits then a digit or upper-case ``X``), that the first digit of
    the area code is not ``0``, that ``YYYYMMDD`` is a real calendar date, and the check
    character. It cannot check that the area code is assigned: GB/T 2260 changes yearly and
    Huitong's demo region deliberately uses an unassigned province code. A lower-case ``x``
    is rejected: callers normalise input before asking.
    """
    if len(number) != 18 or not _is_ascii_digits(number[:17]):
        return False
    if number[0] == "0" or _parse_date(number[6:14]) is None:
        return False
    return check_digit(number[:17]) == number[17]


def make_resident_id(area: str, birth: date, seq: int) -> str:
    """Assemble an 18-character resident ID number.

    ``area`` is a 6-digit division code, ``seq`` the 3-digit sequence number (0-999);
    choose an odd ``seq`` for a man and an even one for a woman. Raises ``ValueError`` on a
    malformed area code or a sequence number out of range.
    """
    if len(area) != 6 or not _is_ascii_digits(area) or area[0] == "0":
        raise ValueError(f"area code must be 6 digits not starting with 0, got {area!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"sequence number must be 0-999, got {seq}")
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


def upgrade_15_to_18(old: str) -> str:
    """Convert a first-generation 15-digit number to its 18-character form.

    Inserts the century ``19`` before the 2-digit birth year and appends the check
    character. The century is always ``19``: 15-digit numbers were issued from 1984 to
    1999, and the conversion rule used by the registry assumes the 1900s. Raises
    ``ValueError`` unless ``old`` is 15 digits with a real ``YYMMDD`` date.
    """
    if len(old) != 15 or not _is_ascii_digits(old):
        raise ValueError(f"expected a 15-digit resident ID number, got {old!r}")
    first17 = f"{old[:6]}19{old[6:]}"
    if _parse_date(first17[6:14]) is None:
        raise ValueError(f"{old!r} does not encode a real birth date")
    return first17 + check_digit(first17)


def sex_of(number: str) -> Literal["male", "female"]:
    """The sex encoded by the parity of the sequence number (odd = male).

    Works for both 18- and 15-character numbers (the sequence is the last 3 digits of
    the 15-digit form). Raises ``ValueError`` on any other length.
    """
    if len(number) == 18:
        seq = number[14:17]
    elif len(number) == 15:
        seq = number[12:15]
    else:
        raise ValueError(f"expected 15 or 18 characters, got {number!r}")
    if not _is_ascii_digits(seq):
        raise ValueError(f"sequence number is not numeric in {number!r}")
    return "male" if int(seq) % 2 == 1 else "female"


def birth_date_of(number: str) -> date:
    """The birth date encoded in an 18- or 15-character number (15: century 19).

    Raises ``ValueError`` when the length is wrong or the date is not a real date.
    """
    if len(number) == 18:
        digits = number[6:14]
    elif len(number) == 15:
        digits = "19" + number[6:12]
    else:
        raise ValueError(f"expected 15 or 18 characters, got {number!r}")
    parsed = _parse_date(digits)
    if parsed is None:
        raise ValueError(f"{number!r} does not encode a real birth date")
    return parsed


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() accepts full-width and other Unicode digits, which are not valid here.
    return text.isascii() and text.isdigit()


def _parse_date(yyyymmdd: str) -> date | None:
    if len(yyyymmdd) != 8 or not _is_ascii_digits(yyyymmdd):
        return None
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return None
