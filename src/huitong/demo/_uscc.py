"""Unified social credit codes (统一社会信用代码, GB 32100-2015) for the demo institutions.

Layout: registration authority (1) + organisation type (1) + area code (6) + organisation
code (9, GB 11714 with its own check digit) + check character (1). Generating codes with
correct check characters lets later data-quality rules validate them like real ones.
"""

from __future__ import annotations

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 symbols: no I, O, S, V, Z
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Registration authority + type: "11" government body (机关), "12" public institution (事业单位).
GOVERNMENT_BODY = "11"
PUBLIC_INSTITUTION = "12"


def organisation_code(body8: str) -> str:
    """GB 11714 organisation code: 8 digits plus the MOD 11 check character."""
    total = sum(int(ch) * w for ch, w in zip(body8, _ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def make_uscc(kind: str, area: str, body8: str) -> str:
    """A full 18-character code, e.g. ``make_uscc(PUBLIC_INSTITUTION, "390102", "48501234")``."""
    first17 = kind + area + organisation_code(body8)
    return first17 + uscc_check_char(first17)
