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

Residence permits for residents of Hong Kong, Macao and Taiwan (港澳台居民居住证, issued
since 2018) use the same layout with area prefix ``81``, ``82`` or ``83``; the 2023
foreign permanent-residence card (外国人永久居留身份证) uses it with leading ``9``.
:func:`parse_resident_id` accepts those and says which :data:`Kind` it saw.

Every function here is pure. Malformed *input arguments* raise :class:`ValueError`;
:func:`is_valid` never raises, it answers ``False``; :func:`parse_resident_id` raises
:class:`ResidentIdError` (a ``ValueError``) with a machine ``reason`` and messages in English
and Chinese that never repeat the number itself (it is personal data).

Spec: GB 11643-1999 公民身份号码; check character ISO 7064:1983 MOD 11-2.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = [
    "Kind",
    "Reason",
    "ResidentId",
    "ResidentIdError",
    "birth_date_of",
    "check_digit",
    "is_valid",
    "make_resident_id",
    "normalize_resident_id",
    "parse_resident_id",
    "sex_of",
    "upgrade_15_to_18",
]

Kind = Literal["resident", "hk-permit", "macao-permit", "taiwan-permit", "foreign-permanent"]
Reason = Literal["empty", "characters", "length", "area", "date", "check-digit"]

_PERMIT_KINDS: dict[str, Kind] = {
    "81": "hk-permit",
    "82": "macao-permit",
    "83": "taiwan-permit",
}

_MESSAGES: dict[str, tuple[str, str]] = {
    "empty": ("The resident ID number is empty.", "身份证号码为空。"),
    "characters": (
        "The resident ID number may contain only digits and a final X.",
        "身份证号码只能由数字组成，最后一位可以是 X。",
    ),
    "length": (
        "A resident ID number has 18 characters (or 15 digits for old cards).",
        "身份证号码应为 18 位（旧证为 15 位数字）。",
    ),
    "area": (
        "The area code of the resident ID number is not possible.",
        "身份证号码的地址码不可能存在。",
    ),
    "date": (
        "The resident ID number does not encode a real birth date.",
        "身份证号码中的出生日期不是有效日期。",
    ),
    "check-digit": (
        "The check character of the resident ID number is wrong (typing error?).",
        "身份证号码校验位不正确（可能录入有误）。",
    ),
}


class ResidentIdError(ValueError):
    """A resident ID number that cannot be parsed; ``reason`` says why, in one word.

    The messages are safe to show and log: they never contain the number.
    """

    def __init__(self, reason: Reason) -> None:
        self.reason: Reason = reason
        self.message_en, self.message_zh = _MESSAGES[reason]
        super().__init__(self.message_en)


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A parsed, valid resident ID number.

    ``number`` is the canonical 18-character form (upper-case ``X``), also when the input
    was a 15-digit number (``upgraded_from_15``). ``kind`` tells a mainland resident ID
    from a residence permit or a foreign permanent-residence card.
    """

    number: str
    area_code: str
    birth_date: date
    sex: Literal["male", "female"]
    upgraded_from_15: bool
    kind: Kind

    @property
    def is_residence_permit(self) -> bool:
        """Whether this is a Hong Kong / Macao / Taiwan residence permit (81/82/83)."""
        return self.kind in ("hk-permit", "macao-permit", "taiwan-permit")

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


def normalize_resident_id(value: str) -> str:
    """Canonical spelling of what a person typed: no spaces or dashes, ASCII, upper ``X``.

    Full-width digits and letters (``１１０１…Ｘ``) become ASCII through NFKC; nothing is
    validated here, so the result may still be malformed.
    """
    text = unicodedata.normalize("NFKC", value)
    return "".join(ch for ch in text if not ch.isspace() and ch not in "-_.").upper()


def parse_resident_id(value: str) -> ResidentId:
    """Parse and validate a resident ID number as a person or a feed wrote it.

    Accepts full-width characters, embedded spaces or dashes and a lower-case ``x``
    (:func:`normalize_resident_id`). A 15-digit number is upgraded to 18 characters
    (:func:`upgrade_15_to_18`); residence-permit prefixes ``81``/``82``/``83`` and the
    foreign permanent-residence prefix ``9`` are accepted and reported in ``kind``.
    Raises :class:`ResidentIdError` with ``reason`` ``empty``, ``characters``, ``length``,
    ``area``, ``date`` or ``check-digit``.
    """
    number = normalize_resident_id(value)
    if not number:
        raise ResidentIdError("empty")
    body = number[:-1] if number.endswith("X") else number
    if not _is_ascii_digits(body):
        raise ResidentIdError("characters")
    if number.endswith("X") and len(number) != 18:
        raise ResidentIdError("length")
    upgraded = False
    if len(number) == 15:
        # Residence permits and the new foreigner cards never had a 15-digit form.
        if number[0] in "089":
            raise ResidentIdError("area")
        if _parse_date("19" + number[6:12]) is None:
            raise ResidentIdError("date")
        number = upgrade_15_to_18(number)
        upgraded = True
    elif len(number) != 18:
        raise ResidentIdError("length")
    if number[0] == "0":
        raise ResidentIdError("area")
    born = _parse_date(number[6:14])
    if born is None:
        raise ResidentIdError("date")
    if check_digit(number[:17]) != number[17]:
        raise ResidentIdError("check-digit")
    kind: Kind = _PERMIT_KINDS.get(number[:2], "resident")
    if number[0] == "9":
        kind = "foreign-permanent"
    return ResidentId(
        number=number,
        area_code=number[:6],
        birth_date=born,
        sex=sex_of(number),
        upgraded_from_15=upgraded,
        kind=kind,
    )


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
